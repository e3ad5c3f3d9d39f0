"""The as-run log: every item that went on air (a broadcast, a sound, each track of a
playlist), with when its first audio actually left onair.

The audio operations hand each item to `AsRun.record` once it has ended, however it ended
(completed, cut by `max_duration`, cancelled, credits ran out, failed, or skipped by its
late-start policy). Watchers (the metrics' first-audio histogram, the event stream) get it at
once; the log keeps it in the store until the retention removes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from onair.store.schema import new_id

log = logging.getLogger("onair.asrun")

Kind = Literal["broadcast", "sound", "track"]
EndReason = Literal["completed", "max_duration", "cancelled", "credits", "failed", "skipped"]
"""How an item ended: all of it aired; cut by the run's `max_duration`; its run was cancelled
(or its node shut down); the credits ran out (the last track a user's run could pay for); it
failed (`error` says why); or its late-start policy skipped it (nothing aired)."""


@dataclass(frozen=True)
class Aired:
    """One item of the as-run log. Instants are aware UTC.

    `planned_at` is when its first audio was planned to leave onair: a sound's run's due
    instant; a track's, the run's due instant plus the planned lengths of the tracks before it
    (less the offset a late run joined at); a broadcast's, `start_before` ahead of the show's
    start, when its ffmpeg is planned to start sending. `first_audio_at` is the instant the
    first packet left (`onair.ffmpeg.Progress`), None when nothing aired. `offset` is the
    seconds of the audio skipped at its start (joined at). `subject` says what it was: for a
    broadcast `{event_id, show_id, instance_start}` (the instance's start as naive wall time
    in the event's zone), for a sound `{sound_id}`, for a track `{playlist_id, position,
    sound_id}`.
    """

    run_id: UUID
    task_id: UUID
    operation: str
    kind: Kind
    name: str
    owner: str | None
    output: str
    planned_at: datetime
    first_audio_at: datetime | None
    seconds_aired: float
    offset: float
    end: EndReason
    ended_at: datetime
    error: str | None = None
    subject: Mapping[str, Any] = field(default_factory=dict)
    id: UUID = field(default_factory=new_id)

    @property
    def lateness(self) -> float | None:
        """Seconds from the planned instant to the first audio (negative: early)."""
        if self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.planned_at).total_seconds()

    def as_json(self) -> dict[str, Any]:
        lateness = self.lateness
        return {
            "id": str(self.id),
            "run_id": str(self.run_id),
            "task_id": str(self.task_id),
            "operation": self.operation,
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
            "output": self.output,
            "planned_at": self.planned_at.isoformat(),
            "first_audio_at": _iso(self.first_audio_at),
            "lateness_seconds": None if lateness is None else round(lateness, 4),
            "seconds_aired": round(self.seconds_aired, 3),
            "offset_seconds": round(self.offset, 3),
            "end": self.end,
            "error": self.error,
            "ended_at": self.ended_at.isoformat(),
            "subject": dict(self.subject),
        }


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


Watcher = Callable[[Aired], None]


class AsRun:
    """Where the audio operations report what went on air; watchers hear each item as it is
    recorded. A watcher must not block; one that raises is logged and the others still hear."""

    def __init__(self) -> None:
        self._watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher` with every item recorded from now on; returns the way to stop."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    async def record(self, items: list[Aired]) -> None:
        """Announce `items` to the watchers."""
        for item in items:
            for watcher in list(self._watchers):
                try:
                    watcher(item)
                except Exception:
                    log.exception("an as-run watcher failed on %s", item.id)

"""The as-run log: every item that went on air (a broadcast, a sound, each track of a
playlist), with when its first audio actually left onair.

The audio operations hand each item to `AsRun.record` once it has ended, however it ended
(completed, cut by `max_duration`, cancelled, credits ran out, failed, or skipped by its
late-start policy). The log writes it to the store (kept until the retention removes it), then
announces it: to its watchers (the metrics' first-audio histogram) and as an `aired` event on
the engine's events (the event stream; other nodes hear it too, on PostgreSQL). It is read by
time range, station-wide or one owner's, as JSON or as CSV (`COLUMNS`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from onair.engine.events import Event, Events
from onair.errors import InvalidInput, Problem
from onair.store import asrun as queries
from onair.store.database import Store
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

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "operation": self.operation,
            "kind": self.kind,
            "name": self.name[:256],
            "owner": self.owner,
            "output": self.output,
            "planned_at": self.planned_at,
            "first_audio_at": self.first_audio_at,
            "lateness": self.lateness,
            "seconds_aired": self.seconds_aired,
            "offset_seconds": self.offset,
            "end_reason": self.end,
            "error": self.error,
            "ended_at": self.ended_at,
            "subject": dict(self.subject),
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> Aired:
        return cls(
            run_id=row["run_id"],
            task_id=row["task_id"],
            operation=row["operation"],
            kind=row["kind"],
            name=row["name"],
            owner=row["owner"],
            output=row["output"],
            planned_at=row["planned_at"],
            first_audio_at=row["first_audio_at"],
            seconds_aired=row["seconds_aired"],
            offset=row["offset_seconds"],
            end=row["end_reason"],
            ended_at=row["ended_at"],
            error=row["error"],
            subject=row["subject"] or {},
            id=row["id"],
        )

    def event(self, node: str) -> Event:
        return Event(
            "aired",
            self.task_id,
            self.operation,
            self.ended_at,
            node,
            run_id=self.run_id,
            due=self.planned_at,
            lateness=self.lateness,
            error=self.error,
            owner=self.owner,
            data=self.as_json(),
        )


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


COLUMNS = (
    "planned_at",
    "first_audio_at",
    "lateness_seconds",
    "seconds_aired",
    "offset_seconds",
    "end",
    "error",
    "kind",
    "name",
    "operation",
    "output",
    "owner",
    "task_id",
    "run_id",
    "ended_at",
    "subject",
    "id",
)
"""The columns of the CSV export, in order (docs/operations.md, "The as-run log"). Instants are
ISO 8601 UTC; empty cells are None; `subject` is its JSON."""

MAX_EXPORT = 100_000
"""Most items one request reads (a busy playlist station airs about 500 a day)."""


def to_csv(items: Iterable[Aired]) -> str:
    """`items` as CSV with a header row of `COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in items:
        data = item.as_json()
        data["subject"] = json.dumps(data["subject"], separators=(",", ":"), sort_keys=True)
        writer.writerow(["" if data[c] is None else data[c] for c in COLUMNS])
    return out.getvalue()


class InvalidRange(InvalidInput):
    def __init__(self, since: datetime, until: datetime) -> None:
        super().__init__(f"`to` ({until.isoformat()}) must be after `from` ({since.isoformat()}).")
        self.problems = (Problem(str(self), "to"),)


Watcher = Callable[[Aired], None]


class AsRun:
    """The as-run log of a node: `record` keeps items and announces them; `page` and `export`
    read them back. Without a store (tests of an operation alone) it only announces.

    A watcher must not block; one that raises is logged and the others still hear.
    """

    def __init__(
        self, store: Store | None = None, events: Events | None = None, node: str = ""
    ) -> None:
        self.store = store
        self.events = events
        self.node = node
        self._watchers: list[Watcher] = []

    def watch(self, watcher: Watcher) -> Callable[[], None]:
        """Call `watcher` with every item recorded from now on; returns the way to stop."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher)

    async def record(self, items: list[Aired]) -> None:
        """Keep `items` (in one transaction), then announce them. A store that refuses them is
        logged: what aired has aired, and the run's own end must still be recorded."""
        if not items:
            return
        if self.store is not None:
            try:
                async with self.store.begin() as conn:
                    await queries.insert_items(conn, [item.row() for item in items])
            except Exception:
                log.exception("the as-run log could not keep %d item(s)", len(items))
        for item in items:
            for watcher in list(self._watchers):
                try:
                    watcher(item)
                except Exception:
                    log.exception("an as-run watcher failed on %s", item.id)
        if self.events is not None:
            events = [item.event(self.node) for item in items]
            for event in events:
                self.events.publish(event)
            if self.store is not None and self.store.signals:
                try:
                    await self.store.send([f"event {event.payload()}" for event in events])
                except Exception:
                    log.exception("sending %d aired event(s) to other nodes failed", len(events))

    async def page(
        self,
        since: datetime,
        until: datetime,
        owner: str | None = None,
        *,
        limit: int = MAX_EXPORT,
        offset: int = 0,
    ) -> tuple[list[Aired], int]:
        """The items planned in [`since`, `until`) (aware), of `owner` (None: everyone's), in
        planned order, and how many there are in all.

        Raises:
            InvalidRange: `until` is not after `since`.
        """
        if until <= since:
            raise InvalidRange(since, until)
        assert self.store is not None
        async with self.store.begin() as conn:
            rows, total = await queries.list_items(
                conn, since, until, owner, limit=min(limit, MAX_EXPORT), offset=offset
            )
        return [Aired.from_row(row) for row in rows], total

    async def expire(self, before: datetime, batch: int = 500) -> int:
        """Retention: delete the items that ended before `before`, in batches; how many."""
        if self.store is None:
            return 0
        deleted = 0
        while True:
            async with self.store.begin() as conn:
                gone = await queries.prune_items(conn, before, batch)
            deleted += gone
            if gone < batch:
                return deleted

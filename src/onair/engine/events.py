"""What happens to tasks and runs, as a stream of events for whoever watches (metrics, the
`/events` stream, logs).

Events are published on the node where the change happened, after it was committed. On
PostgreSQL the same event is also sent to the other nodes through the store's notifications,
where it is published again with `remote` set, so every node's watchers see every change. A
watcher says whether it wants those (`Events.subscribe`): a node whose watchers want none (the
metrics and the webhooks count their own node's runs; the event stream wants them only while it
is followed) drops what the others send unread: at 2,000 runs a second, parsing them was a
fifth of the work of a node that ran few of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

log = logging.getLogger("onair.events")

KINDS = (
    "created",
    "started",
    "completed",
    "failed",
    "cancelled",
    "missed",
    "interrupted",
    "aired",
    "readiness",
    "paused",
    "resumed",
    "changed",
)
"""`paused`, `resumed`: a task was paused or resumed (`onair.engine.pausing`), `note` saying who
and why; `changed`: one occurrence was skipped or moved (`onair.engine.calendar`), `note`
saying which. `aired`: an item of a run went on air and ended (`onair.audio.asrun`); its
`data` is the as-run item, its `due` the item's planned instant and its `lateness` its first
audio's.
`readiness`: a broadcast was checked before air (`onair.operations.readiness`); `data` is the
check's verdict."""


@dataclass(frozen=True)
class Event:
    """One change. `kind` is one of `KINDS`; run events carry the run's id, due instant and
    lateness (seconds from due to start). `owner` is the task's (None: a system task), so that
    watchers show each caller only the events of tasks it may see."""

    kind: str
    task_id: UUID
    operation: str
    at: datetime
    node: str
    run_id: UUID | None = None
    due: datetime | None = None
    lateness: float | None = None
    error: str | None = None
    owner: str | None = None
    note: str | None = None
    """Who paused a task and why (`paused` events)."""
    data: Mapping[str, Any] | None = None
    """What else the event carries (an `aired` event: its as-run item); left out of the JSON
    when None."""
    remote: bool = field(default=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "task_id": str(self.task_id),
            "operation": self.operation,
            "at": self.at.isoformat(),
            "node": self.node,
            "run_id": str(self.run_id) if self.run_id else None,
            "due": self.due.isoformat() if self.due else None,
            "lateness": self.lateness,
            "error": self.error,
            "owner": self.owner,
            "note": self.note,
            **({} if self.data is None else {"data": dict(self.data)}),
        }

    def payload(self) -> str:
        """The event as sent to other nodes (errors cut so it fits in a notification). The
        sender's node comes first (`sent_by`). orjson writes the ids and instants as `as_json`
        does, in a tenth of the time (a node sends two of these per run); what it does not
        know, such as the UUIDs of asyncpg's rows, it writes as `str` does."""
        extra = None if self.data is None else dict(self.data)
        if extra and isinstance(extra.get("error"), str):
            extra["error"] = _cut(extra["error"])
        data = {
            "node": self.node,
            "kind": self.kind,
            "task_id": self.task_id,
            "operation": self.operation,
            "at": self.at,
            "run_id": self.run_id,
            "due": self.due,
            "lateness": self.lateness,
            "error": None if self.error is None else _cut(self.error),
            "owner": self.owner,
            "note": self.note,
            **({} if extra is None else {"data": extra}),
        }
        return orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    @staticmethod
    def sent_by(node: str) -> str:
        """How the payload of an event of `node` begins: a node hears its own notifications
        too, and tells its own events (two in three, where one node runs most) by this
        prefix without parsing them."""
        return '{"node":' + orjson.dumps(node).decode() + ","

    @classmethod
    def from_payload(cls, payload: str) -> Event:
        data = orjson.loads(payload)
        for key in ("task_id", "run_id"):
            data[key] = UUID(data[key]) if data[key] else None
        for key in ("at", "due"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        return cls(**data, remote=True)


def _cut(error: str) -> str:
    return error if len(error) <= 2000 else error[:2000] + "…"


Subscriber = Callable[[Event], None]
Timer = Callable[[str, float], None]
Remote = bool | Callable[[], bool]
"""Whether a subscriber wants other nodes' events: always, never, or when a function says so."""


def _wants(remote: Remote) -> bool:
    return remote if isinstance(remote, bool) else remote()


class Events:
    """Fan-out to in-process subscribers. A subscriber must not block; one that raises is
    logged and the others still get the event."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[Subscriber, Remote]] = []
        self._timers: list[Timer] = []

    def subscribe(self, subscriber: Subscriber, remote: Remote = True) -> Callable[[], None]:
        """Call `subscriber` with every event from now on, other nodes' ones too as `remote`
        says (a function: asked as each arrives); returns the way to stop."""
        entry = (subscriber, remote)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry)

    def remote_wanted(self) -> bool:
        """Whether any subscriber wants other nodes' events now."""
        return any(_wants(remote) for _, remote in self._subscribers)

    def publish(self, event: Event) -> None:
        for subscriber, remote in list(self._subscribers):
            if event.remote and not _wants(remote):
                continue
            try:
                subscriber(event)
            except Exception:
                log.exception("an event subscriber failed on %s", event.kind)

    def on_timing(self, timer: Timer) -> None:
        """Call `timer(name, seconds)` for the engine's own timings (`claim`, `record`)."""
        self._timers.append(timer)

    def timing(self, name: str, seconds: float) -> None:
        for timer in self._timers:
            timer(name, seconds)

"""Who gets other nodes' events: a subscriber says whether it wants them, and the event stream
wants them while it is read and for its history after."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from onair.api.eventlog import EventLog
from onair.config import EventsSettings
from onair.engine.events import Event, Events


def event(remote: bool, error: str | None = None) -> Event:
    at = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    return Event(
        "failed", uuid4(), "test", at, "node-é", run_id=uuid4(), due=at, error=error, remote=remote
    )


def test_remote_events_reach_only_the_subscribers_that_want_them() -> None:
    events = Events()
    wanted = False
    always: list[Event] = []
    never: list[Event] = []
    sometimes: list[Event] = []
    events.subscribe(never.append, remote=False)
    assert not events.remote_wanted()
    events.subscribe(sometimes.append, remote=lambda: wanted)
    assert not events.remote_wanted()
    stop = events.subscribe(always.append)
    assert events.remote_wanted()

    local, first, second = event(False), event(True), event(True)
    events.publish(local)
    events.publish(first)
    wanted = True
    events.publish(second)
    assert always == [local, first, second]
    assert never == [local]
    assert sometimes == [local, second]

    stop()
    wanted = False
    assert not events.remote_wanted()


def test_a_payload_comes_back_as_the_event_it_was_and_starts_with_its_sender() -> None:
    sent = event(False, error="x" * 3000)
    payload = sent.payload()
    assert payload.startswith(Event.sent_by(sent.node))
    heard = Event.from_payload(payload)
    assert heard.remote
    assert heard.error == "x" * 2000 + "…"
    assert heard.as_json() == {**sent.as_json(), "error": heard.error}


@dataclass
class Engine:
    events: Events = field(default_factory=Events)


def test_the_stream_wants_other_nodes_events_while_read_and_for_its_history() -> None:
    engine = Engine()
    history = timedelta(seconds=0.2)
    log = EventLog(engine, EventsSettings(history=history))  # type: ignore[arg-type]
    assert not engine.events.remote_wanted()
    engine.events.publish(event(True))
    assert log.last == 0

    with log.reading():
        assert engine.events.remote_wanted()
        engine.events.publish(event(True))
        assert log.last == 1
    assert engine.events.remote_wanted()  # a reader that comes back gets what it missed
    engine.events.publish(event(True))
    assert log.last == 2

    time.sleep(history.total_seconds() + 0.1)
    assert not engine.events.remote_wanted()
    engine.events.publish(event(True))
    engine.events.publish(event(False))
    assert log.last == 3


def test_ids_as_the_driver_returns_them_travel_too() -> None:
    import asyncpg.pgproto.pgproto as pgproto

    task_id = uuid4()
    sent = Event("created", pgproto.UUID(str(task_id)), "test", datetime.now(UTC), "a")
    assert Event.from_payload(sent.payload()).task_id == task_id

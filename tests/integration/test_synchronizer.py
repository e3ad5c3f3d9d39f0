"""The synchronizer against the fake emishows over HTTP, on both databases: what a cycle asks,
adds and cancels, what it does when emishows fails, the lock between nodes, and
`GET /synchronizer` of a real server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from onair.api.metrics import Metrics
from onair.broadcast.clients import Emilounge, Emirecords, Emishows, Emistream
from onair.broadcast.synchronizer import LOCK, Cycle, Synchronizer
from onair.config import StreamSettings, SynchronizerSettings
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status, Task
from onair.engine.registry import Registry
from onair.operations.stream import Stream
from onair.operations.test import Test
from onair.store.database import Store
from tests.conftest import Server
from tests.fakes import FakeEvent, Fault, Neighbours, served_neighbours

FAST = (0.01, 0.02, 0.04)
LEAD = timedelta(minutes=15)
WHERE = '{"or":[{"type":"replay"},{"type":"prerecorded"}]}'


@pytest.fixture
def fakes() -> Iterator[Neighbours]:
    with served_neighbours() as neighbours:
        yield neighbours


@pytest.fixture
async def emishows(fakes: Neighbours) -> AsyncIterator[Emishows]:
    async with Emishows(fakes.settings("emishows"), retry_delays=FAST) as client:
        yield client


@pytest.fixture
async def synchronizer(
    store: Store, emishows: Emishows, fakes: Neighbours, tmp_path: Path
) -> AsyncIterator[Synchronizer]:
    """A synchronizer on an engine that is not started: its stream tasks stay pending."""
    async with (
        Emirecords(fakes.settings("emirecords")) as emirecords,
        Emilounge(fakes.settings("emilounge")) as emilounge,
        Emistream(fakes.emistream_settings()) as emistream,
    ):
        stream = Stream(
            emishows, emirecords, emilounge, emistream,
            StreamSettings(cache=tmp_path / "cache"), "127.0.0.1", fakes.emistream.srt_port,
        )  # fmt: skip
        engine = Engine(store, Registry([Test(), stream]))
        yield Synchronizer(engine, emishows, store, SynchronizerSettings(), LEAD)


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def local(instant: datetime, timezone: str = "Europe/Warsaw") -> datetime:
    return instant.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def add_event(
    fakes: Neighbours, *starts: datetime, type: str = "replay", timezone: str = "Europe/Warsaw"
) -> FakeEvent:
    """An event with one-hour instances at the UTC instants `starts`."""
    walls = [local(s, timezone) for s in starts]
    return fakes.emishows.add_event(
        walls[0], walls[0] + timedelta(hours=1), type=type, timezone=timezone,
        instances=[(w, w + timedelta(hours=1)) for w in walls],
    )  # fmt: skip


def remove_event(fakes: Neighbours, event: FakeEvent) -> None:
    with fakes.emishows.lock:
        del fakes.emishows.events[event.id]
    fakes.emishows.changed()


async def stream_tasks(engine: Engine, status: Status = Status.PENDING) -> list[Task]:
    tasks, _ = await engine.page(operation="stream", status=status, limit=1000)
    return tasks


def keys(tasks: list[Task]) -> set[tuple[str, str]]:
    return {(t.operation.parameters["id"], t.operation.parameters["start"]) for t in tasks}


def at_of(task: Task) -> str:
    return str(task.condition.parameters["datetime"])


# -- a cycle --


async def test_a_cycle_adds_a_task_per_expected_instance(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    hour = timedelta(hours=1)
    twice = add_event(fakes, t0 + 2 * hour, t0 + 20 * hour)  # two instances of one event
    lounge = add_event(fakes, t0 + 3 * hour, type="prerecorded", timezone="America/New_York")
    add_event(fakes, t0 + 4 * hour, type="live")
    add_event(fakes, t0 + 30 * hour)  # beyond the window
    add_event(fakes, t0 - hour / 2)  # started before now: overlaps, is not expected
    many = [add_event(fakes, t0 + (5 + i) * hour) for i in range(9)]  # a second schedule page

    cycle = await synchronizer.cycle(t0)

    expected = [(twice, t0 + 2 * hour, "Europe/Warsaw"), (twice, t0 + 20 * hour, "Europe/Warsaw"),
                (lounge, t0 + 3 * hour, "America/New_York")]  # fmt: skip
    expected += [(e, t0 + (5 + i) * hour, "Europe/Warsaw") for i, e in enumerate(many)]
    tasks = await stream_tasks(synchronizer.engine)
    assert keys(tasks) == {(str(e.id), local(s, tz).isoformat()) for e, s, tz in expected}
    by_key = {(t.operation.parameters["id"], t.operation.parameters["start"]): t for t in tasks}
    for event, start, timezone in expected:
        task = by_key[(str(event.id), local(start, timezone).isoformat())]
        assert task.condition == Spec(
            "at", {"datetime": (start - LEAD).replace(tzinfo=None).isoformat()}
        )
        assert dict(task.dependencies) == {}
        assert task.next_at == start - LEAD
    assert (cycle.held, cycle.expected, cycle.cancelled, cycle.error) == (True, 12, (), None)
    assert sorted(cycle.added) == sorted(t.id for t in tasks)
    assert synchronizer.last == cycle

    schedule = fakes.emishows.logged("GET", "/schedule")
    assert [r.query for r in schedule] == [
        {"start": t0.replace(tzinfo=None).isoformat(),
         "end": (t0 + timedelta(days=1)).replace(tzinfo=None).isoformat(),
         "where": WHERE, "offset": str(offset)}
        for offset in (0, 10)
    ]  # fmt: skip
    assert fakes.emishows.logged("GET", "/events") == []  # no stream task to look up yet


async def test_a_second_cycle_changes_nothing(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    first = add_event(fakes, t0 + timedelta(hours=2), t0 + timedelta(hours=5))
    second = add_event(fakes, t0 + timedelta(hours=3), type="prerecorded")
    await synchronizer.cycle(t0)
    before = await stream_tasks(synchronizer.engine)

    again = await synchronizer.cycle(t0 + timedelta(seconds=60))

    assert (again.expected, again.added, again.cancelled, again.error) == (3, (), (), None)
    assert {t.id for t in await stream_tasks(synchronizer.engine)} == {t.id for t in before}
    (events,) = fakes.emishows.logged("GET", "/events")
    assert json.loads(events.query["where"]) == {
        "id": {"in": sorted([str(first.id), str(second.id)])}
    }
    assert events.query["offset"] == "0"


async def test_watchers_see_every_cycle_and_the_metrics_count_them(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    metrics = Metrics(synchronizer.engine)
    seen: list[Cycle] = []

    def broken(cycle: Cycle) -> None:
        raise RuntimeError("a watcher that fails")

    for watcher in (seen.append, broken, metrics.cycle):
        synchronizer.watch(watcher)
    add_event(fakes, now() + timedelta(hours=2))
    first = await synchronizer.cycle(now())  # adds the task
    fakes.emishows.inject(Fault(path="/schedule", times=4, status=503))
    second = await synchronizer.cycle(now())

    assert seen == [first, second]
    assert (first.error, second.error is not None) == (None, True)
    counted = {
        s.labels["result"]: s.value
        for family in metrics.registry.collect()
        if family.name == "onair_synchronizer_cycles"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert counted == {"ok": 1.0, "failed": 1.0}


async def test_two_instances_of_one_event_with_one_task_get_exactly_one_more(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    starts = [t0 + timedelta(hours=h) for h in (2, 6, 10)]
    event = add_event(fakes, *starts)
    await synchronizer.engine.add(_stream_task(event, starts[1]))  # the middle one, by hand

    cycle = await synchronizer.cycle(t0)

    tasks = await stream_tasks(synchronizer.engine)
    assert len(tasks) == 3
    assert keys(tasks) == {(str(event.id), local(s).isoformat()) for s in starts}
    assert (len(cycle.added), cycle.cancelled) == (2, ())


def _stream_task(event: FakeEvent, start: datetime) -> NewTask:
    return NewTask(
        operation=Spec("stream", {"id": str(event.id), "start": local(start).isoformat()}),
        condition=Spec("at", {"datetime": (start - LEAD).replace(tzinfo=None).isoformat()}),
    )


async def test_a_removed_event_has_its_task_cancelled_and_a_moved_one_is_rescheduled(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    removed = add_event(fakes, t0 + timedelta(hours=2))
    moved = add_event(fakes, t0 + timedelta(hours=3))
    await synchronizer.cycle(t0)
    by_event = {t.operation.parameters["id"]: t for t in await stream_tasks(synchronizer.engine)}
    remove_event(fakes, removed)
    new_start = local(t0 + timedelta(hours=4))
    with fakes.emishows.lock:
        moved.instances = [(new_start, new_start + timedelta(hours=1))]

    cycle = await synchronizer.cycle(t0 + timedelta(minutes=1))

    assert sorted(cycle.cancelled) == sorted(
        [by_event[str(removed.id)].id, by_event[str(moved.id)].id]
    )
    (added,) = cycle.added
    assert (await synchronizer.engine.get(added)).operation.parameters == {
        "id": str(moved.id), "start": new_start.isoformat(),
    }  # fmt: skip
    for task in by_event.values():
        assert (await synchronizer.engine.get(task.id)).status == Status.CANCELLED


async def test_a_cancelled_task_is_recreated_while_its_instance_is_ahead(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    """The reference's emergent retry: a stream task that ended without broadcasting is made
    again by the next cycle, never while one is pending."""
    t0 = now()
    add_event(fakes, t0 + timedelta(hours=2))
    (first,) = (await synchronizer.cycle(t0)).added
    await synchronizer.engine.cancel(first)

    (second,) = (await synchronizer.cycle(t0 + timedelta(minutes=1))).added
    third = await synchronizer.cycle(t0 + timedelta(minutes=2))

    assert second != first
    assert (third.added, third.cancelled) == ((), ())
    assert [t.id for t in await stream_tasks(synchronizer.engine)] == [second]


async def test_an_invalid_stream_task_is_cancelled(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    orphan = await synchronizer.engine.add(_stream_task(add_event(fakes, t0), t0))
    with fakes.emishows.lock:
        fakes.emishows.events.clear()

    cycle = await synchronizer.cycle(t0)

    assert (cycle.expected, cycle.cancelled, cycle.added) == (0, (orphan.id,), ())
    assert (await synchronizer.engine.get(orphan.id)).status == Status.CANCELLED


# -- failures --


@pytest.mark.parametrize("path", ["/schedule", "/events"])
async def test_emishows_failing_changes_nothing_and_records_the_failed_cycle(
    synchronizer: Synchronizer, fakes: Neighbours, path: str
) -> None:
    t0 = now()
    kept = add_event(fakes, t0 + timedelta(hours=2))
    await synchronizer.cycle(t0)
    (task,) = await stream_tasks(synchronizer.engine)
    remove_event(fakes, kept)  # a working cycle would cancel the task...
    add_event(fakes, t0 + timedelta(hours=3))  # ...and add one
    fakes.emishows.inject(Fault(path=path, times=4, status=503))

    failed = await synchronizer.cycle(t0 + timedelta(minutes=1))

    assert failed.error == (
        f"emishows answered GET {path} with HTTP 503 after 4 attempts: Injected fault."
    )
    assert (failed.held, failed.added, failed.cancelled) == (True, (), ())
    assert synchronizer.last == failed
    assert [t.id for t in await stream_tasks(synchronizer.engine)] == [task.id]

    recovered = await synchronizer.cycle(t0 + timedelta(minutes=2))

    assert (recovered.error, recovered.cancelled, len(recovered.added)) == (None, (task.id,), 1)


async def test_emishows_unreachable_changes_nothing(
    synchronizer: Synchronizer, fakes: Neighbours
) -> None:
    t0 = now()
    add_event(fakes, t0 + timedelta(hours=2))
    await synchronizer.cycle(t0)
    async with Emishows(
        fakes.settings("emishows").model_copy(
            update={"http": fakes.settings("emishows").http.model_copy(update={"port": 9})}
        ),
        retry_delays=FAST,
    ) as dead:
        synchronizer.emishows = dead
        cycle = await synchronizer.cycle(t0 + timedelta(minutes=1))

    assert cycle.error is not None
    assert cycle.error.startswith("emishows is unreachable: GET /schedule failed 4 times")
    assert (cycle.added, cycle.cancelled, cycle.expected) == ((), (), None)
    assert len(await stream_tasks(synchronizer.engine)) == 1


async def test_emishows_away_is_logged_once_with_a_hint_and_asked_once_per_cycle(
    synchronizer: Synchronizer, fakes: Neighbours, caplog: pytest.LogCaptureFixture
) -> None:
    """A node without station neighbours: one WARNING when emishows becomes unreachable (the
    first time with the setting that turns the synchronizer off), none while it stays away,
    one request per cycle instead of four, and the first cycle after it is back synchronizes
    (and says so, once)."""
    t0 = now()
    add_event(fakes, t0 + timedelta(hours=2))
    fakes.emishows.inject(Fault(path="/schedule", times=4 + 1 + 1, status=503))
    caplog.set_level(logging.DEBUG, logger="onair")

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    def requests() -> int:
        return len(fakes.emishows.logged("GET", "/schedule"))

    first = await synchronizer.cycle(t0)
    assert requests() == 4  # the client's retries, as usual: a blip is ridden out
    (warned,) = warnings()
    assert warned == (
        "synchronizer: emishows failed, stream tasks are not synchronized until it answers "
        "(nothing is changed meanwhile; it is asked once per cycle, quietly): emishows answered "
        "GET /schedule with HTTP 503 after 4 attempts: Injected fault. A node without emishows "
        "does not need the synchronizer: ONAIR__SYNCHRONIZER__ENABLED=false turns it off."
    )
    assert first.error is not None

    for minute in (1, 2):
        away = await synchronizer.cycle(t0 + timedelta(minutes=minute))
        assert away.error == (
            "emishows answered GET /schedule with HTTP 503 after 1 attempt: Injected fault."
        )
    assert requests() == 4 + 1 + 1
    assert len(warnings()) == 1

    back = await synchronizer.cycle(t0 + timedelta(minutes=3))  # within one interval
    assert (back.error, len(back.added)) == (None, 1)
    recovered = [r for r in caplog.records if "answers again" in r.getMessage()]
    assert [r.levelno for r in recovered] == [logging.INFO]
    assert synchronizer.away is None

    # Away again: said once more, without the hint this time.
    fakes.emishows.inject(Fault(path="/schedule", times=4, status=503))
    await synchronizer.cycle(t0 + timedelta(minutes=4))
    assert len(warnings()) == 2
    assert "ENABLED=false" not in warnings()[1]


async def test_a_failed_cancel_is_recorded(synchronizer: Synchronizer, fakes: Neighbours) -> None:
    """The task finishes between the cycle's read and its cancel (here: an operator cancels it
    while emishows is slow to answer); the cycle says so and goes on."""
    t0 = now()
    gone = add_event(fakes, t0 + timedelta(hours=2))
    await synchronizer.cycle(t0)
    (task,) = await stream_tasks(synchronizer.engine)
    remove_event(fakes, gone)
    add_event(fakes, t0 + timedelta(hours=3))
    fakes.emishows.inject(Fault(path="/events", delay=1.0))

    async with asyncio.timeout(10):
        running = asyncio.create_task(synchronizer.cycle(t0 + timedelta(minutes=1)))
        await fakes.emishows.wait_for(lambda: len(fakes.emishows.logged("GET", "/events")) == 1)
        await synchronizer.engine.cancel(task.id)
        cycle = await running

    assert cycle.failures == (
        f"cancel {task.id} (emishows has no event {gone.id}): "
        f"Task {task.id} is already cancelled and cannot be cancelled.",
    )
    assert (cycle.cancelled, len(cycle.added), cycle.error) == ((), 1, None)


# -- several nodes --


async def test_only_the_node_holding_the_lock_synchronizes(
    postgresql_url: str, fakes: Neighbours, emishows: Emishows
) -> None:
    add_event(fakes, now() + timedelta(hours=2))
    async with Store(postgresql_url) as store, Store(postgresql_url) as other:
        engine = Engine(store, Registry([Test()]))
        synchronizer = Synchronizer(engine, emishows, store, SynchronizerSettings(), LEAD)
        async with other.exclusive(LOCK) as held_elsewhere:
            async with store.exclusive(LOCK) as held_here:
                assert (held_elsewhere, held_here) == (True, False)
            skipped = await synchronizer.cycle(now())
        async with other.exclusive(LOCK) as held_again:
            assert held_again  # released at the end of the block

    assert (skipped.held, skipped.expected, skipped.added, skipped.error) == (False, None, (), None)
    assert fakes.emishows.requests == []


async def test_sqlite_is_one_node_and_always_holds_the_lock(tmp_path: Path) -> None:
    async with Store(f"sqlite:///{tmp_path / 'one.db'}") as store:
        async with store.exclusive(LOCK) as first, store.exclusive(LOCK) as second:
            assert (first, second) == (True, True)


# -- over HTTP --


async def test_get_synchronizer_shows_the_last_cycle(
    start_server: Callable[..., Server], fakes: Neighbours, tmp_path: Path
) -> None:
    t0 = now()
    event = add_event(fakes, t0 + timedelta(hours=2))
    port = str(fakes.emishows.url.rsplit(":", 1)[1])
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    server = start_server(
        url,
        ONAIR__SYNCHRONIZER__ENABLED="true",
        ONAIR__SYNCHRONIZER__INTERVAL="PT1S",
        ONAIR__EMISHOWS__HTTP__HOST="127.0.0.1",
        ONAIR__EMISHOWS__HTTP__PORT=port,
        ONAIR__CREDITS__DAILY_RECHARGE="false",
        # The stream tasks alone: their readiness checks would be pending tasks too.
        ONAIR__READINESS__ENABLED="false",
    )
    async with server.client() as client, asyncio.timeout(20):
        while True:
            state = (await client.get("/synchronizer")).json()
            if state["last"] is not None and state["last"]["added"]:
                break
            await asyncio.sleep(0.1)
        tasks = (await client.get("/tasks")).json()

    last = state["last"]
    assert (state["enabled"], state["interval"], state["window"], state["lead"]) == (
        True, "PT1S", "P1D", "PT15M",
    )  # fmt: skip
    assert (last["held"], last["expected"], last["cancelled"], last["error"]) == (True, 1, [], None)
    assert last["failures"] == []
    assert tasks["pending"] == last["added"]
    started = datetime.fromisoformat(last["at"])
    assert started.microsecond < 200_000  # on a whole second: reference + k * 1 s
    assert datetime.fromisoformat(state["next"]) > started
    (task,) = tasks["pending"]
    async with server.client() as client:
        detail = (await client.get(f"/tasks/{task}")).json()
    assert detail["task"]["operation"] == {
        "type": "stream",
        "parameters": {"id": str(event.id), "start": local(t0 + timedelta(hours=2)).isoformat()},
    }
    assert fakes.emishows.logged("GET", "/schedule")[0].query["where"] == WHERE


async def test_get_synchronizer_when_disabled(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'off.db'}")  # disabled by the test default

    async with server.client() as client:
        response = await client.get("/synchronizer")

    assert response.status_code == 200
    assert response.json() == {
        "enabled": False, "interval": "PT1M", "window": "P1D", "lead": "PT15M",
        "last": None, "next": None,
    }  # fmt: skip

"""The engine's event stream: every change, in order, on the node that made it and on others."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec
from onair.engine.registry import Registry
from onair.operations.test import Test
from onair.store.database import Store


async def collect(events: list[Event], count: int, within: float = 10) -> None:
    async with asyncio.timeout(within):
        while len(events) < count:
            await asyncio.sleep(0.01)


async def test_created_started_completed_failed_cancelled(engine: Engine) -> None:
    seen: list[Event] = []
    engine.events.subscribe(seen.append)
    ok = await engine.add(NewTask(Spec("test"), Spec("now")))
    await collect(seen, 3)
    bad = await engine.add(NewTask(Spec("test", {"fail": "no signal"}), Spec("now")))
    await collect(seen, 6)
    later = datetime.now(UTC) + timedelta(hours=1)
    waiting = await engine.add(NewTask(Spec("test"), Spec("at", {"datetime": later.isoformat()})))
    await engine.cancel(waiting.id)
    await collect(seen, 8)
    assert [(e.kind, e.task_id) for e in seen] == [
        ("created", ok.id),
        ("started", ok.id),
        ("completed", ok.id),
        ("created", bad.id),
        ("started", bad.id),
        ("failed", bad.id),
        ("created", waiting.id),
        ("cancelled", waiting.id),
    ]
    started = seen[1]
    assert started.run_id == seen[2].run_id
    assert started.lateness is not None
    assert started.lateness >= 0
    assert seen[5].error == "Operation test failed: no signal."
    assert all(e.node == engine.node for e in seen)


@contextlib.asynccontextmanager
async def two_nodes(url: str) -> AsyncIterator[tuple[Engine, Engine]]:
    """Engines `a` and `b` on two stores of one PostgreSQL database."""
    settings = EngineSettings(lease="PT3S")  # type: ignore[arg-type]
    async with Store(url) as store_a, Store(url) as store_b:
        a = Engine(store_a, Registry([Test()]), settings=settings.model_copy(update={"node": "a"}))
        b = Engine(store_b, Registry([Test()]), settings=settings.model_copy(update={"node": "b"}))
        async with a, b:
            yield a, b


async def test_events_reach_the_other_nodes(postgresql_url: str) -> None:
    async with two_nodes(postgresql_url) as (a, b):
        on_b: list[Event] = []
        b.events.subscribe(on_b.append)
        task = await a.add(NewTask(Spec("test"), Spec("now")))
        async with asyncio.timeout(10):
            while not any(e.kind == "completed" for e in on_b):
                await asyncio.sleep(0.01)
        created = next(e for e in on_b if e.kind == "created")
        assert created.task_id == task.id
        assert created.node == "a"
        assert created.remote
        assert {e.kind for e in on_b} >= {"created", "started", "completed"}


async def test_a_batch_of_events_reaches_the_other_nodes_whole_and_in_order(
    postgresql_url: str,
) -> None:
    """Events are packed several to a notification (`packed`): the events of 300 tasks added at
    once fill several notifications, and every event still arrives once and in order, on the
    other node only."""
    async with two_nodes(postgresql_url) as (a, b):
        on_a: list[Event] = []
        on_b: list[Event] = []
        a.events.subscribe(lambda e: on_a.append(e) if e.kind == "created" else None)
        b.events.subscribe(lambda e: on_b.append(e) if e.kind == "created" else None)
        later = datetime.now(UTC) + timedelta(days=1)
        added = await a.add_many(
            [
                NewTask(Spec("test", {"n": i}), Spec("at", {"datetime": later.isoformat()}))
                for i in range(300)
            ]
        )
        await collect(on_b, 300)
        await asyncio.sleep(0.2)  # nothing arrives twice
        assert [e.task_id for e in on_b] == [t.id for t in added]
        assert all(e.remote and e.node == "a" for e in on_b)
        # A node hears its own notifications too, and does not publish its events again.
        assert [e.task_id for e in on_a] == [t.id for t in added]
        assert not any(e.remote for e in on_a)

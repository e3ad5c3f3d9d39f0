"""Run ends wake the other nodes only for the work they make due: a one-shot task's end sends
no `due` signal, a dependent made due by its dependency's end is announced with its instant.
Every node turning its claim loop for every batch of ends of every node was what made
PostgreSQL claims late under sustained load (docs/performance.md)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec
from onair.engine.registry import Registry
from onair.operations.test import Test
from onair.store.database import Store


async def completed(events: list[Event], count: int) -> None:
    async with asyncio.timeout(10):
        while sum(e.kind == "completed" for e in events) < count:
            await asyncio.sleep(0.01)


async def test_a_run_end_signals_only_the_work_it_made_due(postgresql_url: str) -> None:
    async with Store(postgresql_url) as store, Store(postgresql_url) as listener:
        await store.migrate()
        heard: list[str] = []
        await listener.listen(heard.append)
        engine = Engine(store, Registry([Test()]), settings=EngineSettings(node="a"))
        async with engine:
            seen: list[Event] = []
            engine.events.subscribe(seen.append)
            lone = await engine.add(NewTask(Spec("test"), Spec("now")))
            await completed(seen, 1)
            await asyncio.sleep(0.3)  # the end's notifications reach the listener
            # The add's own instant only: the end made nothing due, so it woke no node.
            assert [p for p in heard if p.startswith("due ")] == [f"due {lone.next_at.isoformat()}"]  # type: ignore[union-attr], heard

            soon = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
            first = await engine.add(NewTask(Spec("test"), Spec("at", {"datetime": soon})))
            dependent = await engine.add(
                NewTask(Spec("test"), Spec("now"), dependencies={"first": first.id})
            )
            heard.clear()
            await completed(seen, 3)
            await asyncio.sleep(0.3)
        # The first's end made the dependent due: the nodes hear of it with its instant.
        assert [p for p in heard if p.startswith("due ")] == [
            f"due {dependent.next_at.isoformat()}"  # type: ignore[union-attr]
        ], heard


async def test_the_claim_lead_covers_the_turn_itself(engine: Engine) -> None:
    """A claim turn's round trips to PostgreSQL can outlast the lookahead on a busy machine
    (25-45 ms measured against 50 ms): the lead before an instant covers the measured
    duration of a turn, twice, on top of the lookahead and the burst's cost."""
    worker = engine.worker
    assert worker is not None
    claim_loop = worker._background[0]  # its own turns would update the measured turn time
    claim_loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await claim_loop
    lookahead = engine.settings.lookahead
    earliest = datetime.now(UTC) + timedelta(seconds=1)  # nothing is due: the burst is 0
    worker._turn_time = 0.0
    async with engine.store.begin() as conn:
        assert await worker._lead_for(conn, earliest) == lookahead
    worker._turn_time = 0.3
    async with engine.store.begin() as conn:
        assert await worker._lead_for(conn, earliest) == lookahead + timedelta(seconds=0.6)
    worker._turn_time = 5.0  # never more than the longest lead
    async with engine.store.begin() as conn:
        assert await worker._lead_for(conn, earliest) == lookahead + timedelta(seconds=2)

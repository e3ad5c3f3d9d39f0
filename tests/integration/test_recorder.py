"""The recorder of run ends cannot be poisoned: a row the store refuses is retried alone and
recorded with its text made storable, and a node that cannot record at all stops heartbeating
(and claiming) until it can, so that another node recovers its runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel
from sqlalchemy import select, update

from onair.config import EngineSettings
from onair.engine.admission import ANYONE, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status
from onair.engine.policies import Policy
from onair.engine.registry import JSON, Registry, RunContext
from onair.errors import OperationError
from onair.operations.test import Test
from onair.store.database import Store
from onair.store.schema import nodes, runs, tasks

MESSAGES = {
    "nul": "bad\u0000byte",  # PostgreSQL refuses it in text; SQLite takes it
    "surrogate": "lone \ud800 surrogate",  # no UTF-8 text holds it: both refuse it
}


class _Poison(BaseModel):
    kind: Literal["nul", "surrogate"]


class Poison:
    """Fails with a message that a store may refuse to write."""

    name: ClassVar[str] = "poison"
    Parameters: ClassVar[type[BaseModel]] = _Poison
    policy: ClassVar[Policy] = Policy()
    roles: ClassVar[frozenset[Role]] = ANYONE

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        raise OperationError(MESSAGES[parameters.kind])


@pytest.fixture
async def poisoned(store: Store, engine_settings: EngineSettings) -> AsyncIterator[Engine]:
    async with Engine(store, Registry([Test(), Poison()]), settings=engine_settings) as engine:
        yield engine


def soon(seconds: float = 0.2) -> Spec:
    return Spec("at", {"datetime": (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()})


async def finished(engine: Engine, task_id: Any, within: float) -> Status:
    async with asyncio.timeout(within):
        while not (task := await engine.get(task_id)).status.finished:
            await asyncio.sleep(0.02)
    return task.status


@pytest.mark.parametrize("kind", ["nul", "surrogate"])
async def test_an_unstorable_error_holds_back_no_other_run(
    poisoned: Engine, store: Store, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await poisoned.add(NewTask(Spec("poison", {"kind": kind}), soon()))
    assert await finished(poisoned, bad.id, within=5) is Status.FAILED
    # The next task on the same node runs and is recorded within its usual time.
    good = await poisoned.add(NewTask(Spec("test", {"n": 1}), soon(0.1)))
    assert await finished(poisoned, good.id, within=2) is Status.COMPLETED
    assert (await poisoned.get(good.id)).result == {"parameters": {"n": 1}, "dependencies": {}}
    error = (await poisoned.get(bad.id)).error
    refused = kind == "surrogate" or store.url.startswith("postgresql")
    message = MESSAGES[kind]
    if refused:
        clean = message.translate({0: 0xFFFD, 0xD800: 0xFFFD})
        assert error == f"Operation poison failed: {clean}."
        warnings = [r.getMessage() for r in caplog.records if "made storable" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert f"the error was {f'Operation poison failed: {message}.'!r}" in warnings[0]
    else:
        assert error == f"Operation poison failed: {message}."


async def test_a_task_whose_rules_fail_on_its_end_fails_and_holds_back_no_other_run(
    poisoned: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A row that no text could fix: the task's stored policy no longer validates when its
    run fails, so its rules cannot tell whether to retry it. The run is recorded, the task
    fails saying why, and the node goes on."""
    task = await poisoned.add(NewTask(Spec("test", {"sleep": 0.3, "fail": "boom"}), soon(0.05)))
    async with asyncio.timeout(3):
        while (await poisoned.get(task.id)).status is not Status.RUNNING:
            await asyncio.sleep(0.02)
    async with store.begin() as conn:
        await conn.execute(
            update(tasks).where(tasks.c.id == task.id).values(policy={"overlap": "sideways"})
        )
    query = select(tasks.c.status, tasks.c.error).where(tasks.c.id == task.id)
    async with asyncio.timeout(3):
        while True:
            async with store.begin() as conn:
                row = (await conn.execute(query)).one()
            if row.status in ("failed", "completed"):
                break
            await asyncio.sleep(0.02)
    assert row.status == "failed"
    assert row.error.startswith("onair could not record a run's end: ValidationError: "), row
    assert "overlap" in row.error
    async with store.begin() as conn:
        query = select(runs.c.outcome, runs.c.error).where(runs.c.task_id == task.id)
        assert (await conn.execute(query)).all() == [("failed", "Operation test failed: boom.")]
    good = await poisoned.add(NewTask(Spec("test"), soon(0.05)))
    assert await finished(poisoned, good.id, within=2) is Status.COMPLETED
    assert any("abandoned" in r.getMessage() for r in caplog.records)


async def test_a_node_that_cannot_record_stops_heartbeating_until_it_can(
    postgresql_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Node a's store refuses its run ends (a trigger stands for a store that refuses them):
    a stops claiming and heartbeating, node b recovers a's run once a's lease expires; once a
    can write again (its end of that run is then dropped: b's record stands), it heartbeats
    and runs tasks again."""
    caplog.set_level(logging.WARNING, "onair.engine")
    lease = EngineSettings(lease="PT1S")  # type: ignore[arg-type]
    registry = Registry([Test()])
    async with Store(postgresql_url) as store_a, Store(postgresql_url) as store_b:
        async with store_a.begin() as conn:
            await conn.exec_driver_sql(
                "CREATE FUNCTION refuse_a() RETURNS trigger AS $$ BEGIN "
                "IF NEW.node = 'a' AND NEW.outcome = 'completed' THEN "
                "RAISE EXCEPTION 'node a may not record'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER refuse_a BEFORE UPDATE ON runs FOR EACH ROW "
                "EXECUTE FUNCTION refuse_a()"
            )
        settings_a = lease.model_copy(update={"node": "a"})
        settings_b = lease.model_copy(update={"node": "b"})
        async with Engine(store_a, registry, settings=settings_a) as a:
            task = await a.add(NewTask(Spec("test", {"sleep": 0.2}), soon(0.1)))
            async with asyncio.timeout(3):
                while (await a.get(task.id)).status is not Status.RUNNING:
                    await asyncio.sleep(0.02)
            async with Engine(store_b, registry, settings=settings_b) as b:
                began = asyncio.get_running_loop().time()
                assert await finished(b, task.id, within=5) is Status.FAILED
                recovered = asyncio.get_running_loop().time() - began
                error = (await b.get(task.id)).error
                assert error is not None
                assert error.startswith("Interrupted: node a stopped"), error
                assert recovered < 3.5  # the run's 0.3 s, the 1 s lease, b's heartbeats
                # Once b has recorded the run, a has nothing left that the store refuses: it
                # records (nothing), heartbeats and claims again, and its next runs complete.
                async with store_b.begin() as conn:
                    await conn.exec_driver_sql("DROP TRIGGER refuse_a ON runs")
                async with asyncio.timeout(3):
                    while True:
                        async with store_b.begin() as conn:
                            query = select(nodes.c.expires_at).where(nodes.c.name == "a")
                            expires = (await conn.execute(query)).scalar_one_or_none()
                        if expires is not None and expires > datetime.now(UTC):
                            break
                        await asyncio.sleep(0.05)
                again = await a.add(NewTask(Spec("test"), soon(0.1)))
                assert await finished(a, again.id, within=3) is Status.COMPLETED
    messages = [r.getMessage() for r in caplog.records]
    assert any("node a cannot record run ends" in m for m in messages), messages
    assert any("node a records run ends again" in m for m in messages), messages

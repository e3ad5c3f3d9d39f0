"""Pausing and resuming tasks in the engine, on both databases: a paused series runs nothing,
resumes by its policy (drop, or the latest once), keeps its pause across a restart, and neither
of two PostgreSQL nodes runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.models import NewTask, Outcome, Spec, Status
from onair.engine.registry import Registry
from onair.errors import NotPaused, TaskFinished, TaskPaused
from onair.operations.test import Test
from onair.store.database import Store
from tests.integration.helpers import LATE

STEP = timedelta(milliseconds=200)


def every(start: datetime, step: timedelta = STEP) -> Spec:
    return Spec("interval", {"every": step.total_seconds(), "start": start.isoformat()})


async def series(engine: Engine, start: datetime, policy: Mapping[str, Any] | None = None) -> UUID:
    task = await engine.add(NewTask(Spec("test"), every(start), policy=policy))
    return task.id


async def runs_of(engine: Engine, task_id: UUID) -> list[Any]:
    runs, _ = await engine.runs(task_id, limit=500)
    return sorted(runs, key=lambda run: run.due_at)


async def until_runs(engine: Engine, task_id: UUID, count: int, within: float = 5) -> list[Any]:
    async with asyncio.timeout(within):
        while len(runs := await runs_of(engine, task_id)) < count:
            await asyncio.sleep(0.02)
    return runs


async def test_a_paused_series_runs_nothing_and_drops_what_it_missed(engine: Engine) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.3)
    task_id = await series(engine, start)
    paused = await engine.pause(task_id, "admin:ola", "studio under repair")
    assert (paused.paused_by, paused.pause_note) == ("admin:ola", "studio under repair")
    assert paused.paused_at is not None
    assert paused.status is Status.PENDING
    await asyncio.sleep(0.3 + 3 * STEP.total_seconds())  # three occurrences pass
    assert await runs_of(engine, task_id) == []
    assert (await engine.get(task_id)).paused

    resumed = await engine.resume(task_id)
    at = datetime.now(UTC)
    assert not resumed.paused
    assert resumed.pause_note is None
    assert resumed.next_at is not None
    assert at - STEP < resumed.next_at <= at + STEP  # the next occurrence after the resume
    # The occurrences missed while paused are neither run nor recorded as missed.
    [first] = await until_runs(engine, task_id, 1)
    assert first.due_at == resumed.next_at
    assert first.outcome in (None, Outcome.COMPLETED)
    assert first.lateness is not None
    assert first.lateness < LATE
    assert (await engine.get(task_id)).occurrences >= 1
    await engine.cancel(task_id)


async def test_resume_latest_runs_the_missed_occurrence_once(engine: Engine) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.3)
    step = timedelta(seconds=2)
    task = await engine.add(NewTask(Spec("test"), every(start, step), policy={"resume": "latest"}))
    await engine.pause(task.id, "station", None)
    await asyncio.sleep(0.5)  # the first occurrence passes while paused
    resumed = await engine.resume(task.id)
    at = datetime.now(UTC)
    assert resumed.next_at is not None
    assert abs(resumed.next_at - at) < timedelta(seconds=0.1)
    [run] = await until_runs(engine, task.id, 1)
    assert run.due_at == resumed.next_at  # once, at the resume
    await asyncio.sleep(0.3)
    assert len(await runs_of(engine, task.id)) == 1
    # The series goes on at its own occurrences.
    assert (await engine.get(task.id)).next_at == start + step
    await engine.cancel(task.id)


async def test_a_run_in_progress_goes_on_and_nothing_follows_it(engine: Engine) -> None:
    # The next occurrence 1 s after the first: the pause, made as soon as the first run is
    # claimed, commits long before it is claimed, even on a loaded machine (with 200 ms
    # between occurrences it once did not).
    start = datetime.now(UTC) + timedelta(seconds=0.1)
    step = timedelta(seconds=1)
    task = await engine.add(
        NewTask(Spec("test", {"sleep": 0.5}), every(start, step), policy={"overlap": "allow"})
    )
    [run] = await until_runs(engine, task.id, 1)
    paused = await engine.pause(task.id, "admin", "one is enough")
    assert paused.status is Status.RUNNING
    async with asyncio.timeout(5):
        while (current := await engine.get(task.id)).status is Status.RUNNING:
            await asyncio.sleep(0.02)
    assert current.status is Status.PENDING
    assert current.paused
    assert current.last_outcome is Outcome.COMPLETED
    await asyncio.sleep(1.0)  # past the next occurrence's instant
    assert [r.id for r in await runs_of(engine, task.id)] == [run.id]
    await engine.cancel(task.id)


async def test_refusals(engine: Engine) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    task_id = await series(engine, later)
    with pytest.raises(NotPaused, match="is not paused"):
        await engine.resume(task_id)
    await engine.pause(task_id, "ola", "first")
    with pytest.raises(TaskPaused, match=r"already paused \(by ola, since "):
        await engine.pause(task_id, "ala", "second")
    assert (await engine.get(task_id)).pause_note == "first"
    await engine.cancel(task_id)
    with pytest.raises(TaskFinished, match="is already cancelled and cannot be resumed"):
        await engine.resume(task_id)
    with pytest.raises(TaskFinished, match="is already cancelled and cannot be paused"):
        await engine.pause(task_id, "ola", None)


async def test_a_paused_dependent_waits_for_its_resume(engine: Engine) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.2)
    first = await engine.add(NewTask(Spec("test"), Spec("at", {"datetime": soon.isoformat()})))
    second = await engine.add(NewTask(Spec("test"), Spec("now"), dependencies={"a": first.id}))
    await engine.pause(second.id, "ola", None)
    async with asyncio.timeout(5):
        while not (await engine.get(first.id)).status.finished:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert await runs_of(engine, second.id) == []
    await engine.resume(second.id)
    await until_runs(engine, second.id, 1)


async def test_a_pause_survives_a_restart(store: Store, engine_settings: EngineSettings) -> None:
    registry = Registry([Test()])
    start = datetime.now(UTC) + timedelta(seconds=0.2)
    async with Engine(store, registry, settings=engine_settings) as engine:
        task_id = await series(engine, start)
        await engine.pause(task_id, "ola", "holiday")
    await asyncio.sleep(0.4)
    async with Engine(store, registry, settings=engine_settings) as engine:
        await asyncio.sleep(0.4)
        task = await engine.get(task_id)
        assert (task.paused_by, task.pause_note) == ("ola", "holiday")
        assert await runs_of(engine, task_id) == []
        await engine.resume(task_id)
        await until_runs(engine, task_id, 1)
        await engine.cancel(task_id)


async def test_neither_of_two_postgresql_nodes_runs_a_paused_task(
    postgresql_url: str, engine_settings: EngineSettings
) -> None:
    registry = Registry([Test()])
    async with Store(postgresql_url) as one, Store(postgresql_url) as two:
        await one.migrate()
        async with (
            Engine(one, registry, settings=engine_settings) as a,
            Engine(two, registry, settings=engine_settings) as b,
        ):
            # Six adds and six pauses before the first instant, even on a loaded machine
            # (0.3 s ahead was once too little).
            start = datetime.now(UTC) + timedelta(seconds=1.5)
            ids = [await series(a if i % 2 else b, start) for i in range(6)]
            for i, task_id in enumerate(ids):
                await (b if i % 2 else a).pause(task_id, "ola", None)
            await asyncio.sleep(max((start - datetime.now(UTC)).total_seconds(), 0) + 0.6)
            for task_id in ids:
                assert await runs_of(a, task_id) == []
            for i, task_id in enumerate(ids):
                await (a if i % 2 else b).resume(task_id)
            for task_id in ids:
                await until_runs(b, task_id, 2)
                await a.cancel(task_id)
            nodes = {run.node for task_id in ids for run in await runs_of(a, task_id)}
            assert nodes <= {a.node, b.node}

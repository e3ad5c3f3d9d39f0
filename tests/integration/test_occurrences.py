"""Single-occurrence changes in the engine, on both databases: a skipped occurrence does not
run, a moved one runs at its new instant, the rest of the series is unchanged, previews show
both, and they survive a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status
from onair.engine.preview import remaining
from onair.engine.registry import Registry
from onair.errors import InvalidParameters, TaskFinished
from onair.operations.test import Test
from onair.store.database import Store

STEP = timedelta(milliseconds=300)


def every(start: datetime, step: timedelta = STEP, count: int | None = None) -> Spec:
    parameters: dict[str, object] = {"every": step.total_seconds(), "start": start.isoformat()}
    if count is not None:
        parameters["count"] = count
    return Spec("interval", parameters)


async def dues(engine: Engine, task_id: UUID, count: int, within: float = 6) -> list[datetime]:
    async with asyncio.timeout(within):
        while len(runs := (await engine.runs(task_id, limit=100))[0]) < count:
            await asyncio.sleep(0.02)
    return sorted(run.due_at for run in runs)


async def test_a_skipped_occurrence_does_not_run_nor_count(engine: Engine) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.4)
    task = await engine.add(NewTask(Spec("test"), every(start, count=3)))
    changed = await engine.skip(task.id, start + STEP)
    assert changed.next_at == start
    assert await dues(engine, task.id, 3) == [start, start + 2 * STEP, start + 3 * STEP]
    async with asyncio.timeout(5):
        while (current := await engine.get(task.id)).status is not Status.COMPLETED:
            await asyncio.sleep(0.02)
    assert current.runs == 3


async def test_a_moved_occurrence_runs_at_its_new_instant_once(engine: Engine) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.5)
    task = await engine.add(NewTask(Spec("test"), every(start)))
    moved = await engine.move(task.id, start, start + STEP + STEP / 3)  # past the next one
    assert moved.next_at == start + STEP
    found = await dues(engine, task.id, 3)
    assert found == [start + STEP, start + STEP + STEP / 3, start + 2 * STEP]
    runs, _ = await engine.runs(task.id)
    assert all(r.lateness is not None and r.lateness < 0.25 for r in runs if r.started_at)
    await engine.cancel(task.id)


async def test_refusals_name_the_field(engine: Engine) -> None:
    now = datetime.now(UTC)
    start = (now + timedelta(hours=1)).replace(microsecond=0)
    task = await engine.add(NewTask(Spec("test"), every(start, timedelta(hours=1))))
    cases = [
        (engine.skip(task.id, start + timedelta(minutes=5)), "at", "is not an occurrence"),
        (engine.move(task.id, start, now - timedelta(hours=1)), "to", "is not ahead"),
        (engine.move(task.id, start, start + timedelta(hours=1)), "to", "another occurrence"),
    ]
    for call, key, message in cases:
        with pytest.raises(InvalidParameters) as refused:
            await call
        [problem] = refused.value.problems
        assert problem.key == key
        assert message in problem.message
    await engine.skip(task.id, start)
    with pytest.raises(InvalidParameters, match="skipped already"):
        await engine.skip(task.id, start)
    once = await engine.add(NewTask(Spec("test"), Spec("at", {"datetime": start.isoformat()})))
    with pytest.raises(InvalidParameters, match="only an occurrence of a series"):
        await engine.skip(once.id, start)
    await engine.cancel(task.id)
    with pytest.raises(TaskFinished, match="cannot be changed"):
        await engine.skip(task.id, start + timedelta(hours=1))


async def test_changes_survive_a_restart_and_show_in_previews(store: Store) -> None:
    registry = Registry([Test()])
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    hour = timedelta(hours=1)
    async with Engine(store, registry) as engine:
        task = await engine.add(NewTask(Spec("test"), every(start, hour)))
        await engine.skip(task.id, start + hour)
        await engine.move(task.id, start + 2 * hour, start + 2 * hour + timedelta(minutes=30))
    async with Engine(store, registry) as engine:
        again = await engine.get(task.id)
        items = remaining(again, 4)
        assert [i.utc for i in items] == [
            start,
            start + 2 * hour + timedelta(minutes=30),
            start + 3 * hour,
            start + 4 * hour,
        ]
        assert items[1].note == f"moved from {(start + 2 * hour).isoformat()}"
        assert items[0].note is None
        # Moved again: from its original instant.
        await engine.move(task.id, start + 2 * hour, start + 2 * hour + timedelta(minutes=45))
        items = remaining(await engine.get(task.id), 2)
        assert items[1].utc == start + 2 * hour + timedelta(minutes=45)
        await engine.cancel(task.id)

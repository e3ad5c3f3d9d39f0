"""The engine in-process on both databases: exact starts, wake-ups instead of polls, policies."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event

from onair.engine.core import Engine
from onair.engine.models import NewTask, Outcome, Spec, Status
from onair.errors import InvalidParameters, TaskNotFound
from onair.store.database import Store
from tests.integration.helpers import LATE


def at(instant: datetime) -> Spec:
    return Spec("at", {"datetime": instant.isoformat()})


async def finished(engine: Engine, task_id: UUID, within: float = 10) -> Status:
    async with asyncio.timeout(within):
        while not (task := await engine.get(task_id)).status.finished:
            await asyncio.sleep(0.01)
    return task.status


async def test_an_earlier_task_wakes_the_engine(engine: Engine) -> None:
    now = datetime.now(UTC)
    far = await engine.add(NewTask(Spec("test"), at(now + timedelta(hours=1))))
    await asyncio.sleep(0.2)  # let the engine go to sleep until the far task
    soon = await engine.add(NewTask(Spec("test"), at(now + timedelta(seconds=0.5))))
    assert await finished(engine, soon.id, within=3) is Status.COMPLETED
    runs, _ = await engine.runs(soon.id)
    assert runs[0].lateness is not None
    assert 0 <= runs[0].lateness < LATE
    assert (await engine.get(far.id)).status is Status.PENDING


async def test_runs_start_at_their_instants_never_before(engine: Engine) -> None:
    base = datetime.now(UTC) + timedelta(seconds=0.5)
    tasks = [
        await engine.add(NewTask(Spec("test"), at(base + timedelta(milliseconds=37 * i))))
        for i in range(20)
    ]
    for task in tasks:
        assert await finished(engine, task.id) is Status.COMPLETED
    for task in tasks:
        (run,), count = await engine.runs(task.id)
        assert count == 1
        assert run.started_at is not None
        assert run.started_at >= run.due_at
        assert run.lateness is not None
        assert run.lateness < LATE


async def test_idle_engine_does_not_poll(engine: Engine, store: Store) -> None:
    await engine.add(NewTask(Spec("test"), at(datetime.now(UTC) + timedelta(hours=1))))
    await asyncio.sleep(0.2)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.sleep(2)
    finally:
        event.remove(store.sync_engine, "before_cursor_execute", count)
    # Only the heartbeat (every lease / 3 = 1 s: extend the lease, look for orphaned runs).
    assert len(statements) <= 12, statements


async def test_cancelled_pending_task_never_runs(engine: Engine) -> None:
    task = await engine.add(NewTask(Spec("test"), at(datetime.now(UTC) + timedelta(seconds=0.3))))
    cancelled = await engine.cancel(task.id)
    assert cancelled.status is Status.CANCELLED
    await asyncio.sleep(0.6)
    assert (await engine.runs(task.id))[1] == 0


async def test_failed_runs_are_retried_with_backoff(engine: Engine) -> None:
    policy = {"retry": {"attempts": 3, "backoff": "PT0.2S", "factor": 2}}
    task = await engine.add(NewTask(Spec("test", {"fail": "tape jam"}), Spec("now"), policy=policy))
    assert await finished(engine, task.id) is Status.FAILED
    runs, count = await engine.runs(task.id)
    assert count == 3
    runs = sorted(runs, key=lambda r: r.attempt)
    assert [r.outcome for r in runs] == [Outcome.FAILED] * 3
    assert [r.attempt for r in runs] == [1, 2, 3]
    gaps = [
        (b.started_at - a.finished_at).total_seconds()  # type: ignore[operator]
        for a, b in zip(runs, runs[1:], strict=False)
    ]
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4
    final = await engine.get(task.id)
    assert final.error == "Operation test failed: tape jam."


async def test_a_late_one_shot_beyond_its_grace_expires(engine: Engine, store: Store) -> None:
    """The service was down past the due instant: the run is recorded missed, the task failed."""
    due = datetime.now(UTC) + timedelta(seconds=0.2)
    policy = {"misfire_grace": "PT0.05S"}
    assert engine.worker is not None
    await engine.__aexit__(None, None, None)  # the node is down
    task = await engine.add(NewTask(Spec("test"), at(due), policy=policy))
    await asyncio.sleep(0.5)
    await engine.__aenter__()
    assert await finished(engine, task.id) is Status.FAILED
    failed = await engine.get(task.id)
    assert failed.error is not None
    assert failed.error.startswith(f"Expired: due at {due.isoformat()}")
    assert "beyond the misfire grace of 50 ms" in failed.error
    (run,), _ = await engine.runs(task.id)
    assert run.outcome is Outcome.MISSED


async def test_one_shot_past_its_grace_is_refused_at_creation(engine: Engine) -> None:
    due = datetime.now(UTC) - timedelta(minutes=5)
    with pytest.raises(InvalidParameters) as refused:
        await engine.add(NewTask(Spec("test"), at(due), policy={"misfire_grace": "PT1M"}))
    assert refused.value.problems[0].key == "condition.parameters"
    message = refused.value.problems[0].message
    assert message.startswith(f"{due.isoformat()} was 5 minutes ")  # (a second more if slow)
    assert message.endswith(" ago, beyond the misfire grace of 1 minute")


async def test_a_burst_due_at_once_all_run_exactly_once(engine: Engine) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    ids = [(await engine.add(NewTask(Spec("test"), at(due)))).id for _ in range(300)]
    async with asyncio.timeout(30):
        while len((await engine.index())[Status.COMPLETED]) < len(ids):
            await asyncio.sleep(0.05)
    for task_id in ids[::10]:
        (run,), count = await engine.runs(task_id)
        assert count == 1
        assert run.started_at is not None
        assert run.started_at >= due


async def test_retention_deletes_old_finished_tasks_and_run_history(engine: Engine) -> None:
    done = await engine.add(NewTask(Spec("test"), Spec("now")))
    assert await finished(engine, done.id) is Status.COMPLETED
    series = await engine.add(
        NewTask(Spec("test"), Spec("interval", {"every": 0.2}), policy={"overlap": "allow"})
    )
    async with asyncio.timeout(5):
        while (await engine.runs(series.id))[1] < 2:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    cutoff = datetime.now(UTC)
    tasks, runs = await engine.expire(cutoff, batch=1)
    assert tasks == 1
    assert runs >= 1  # the series' finished runs before the cutoff
    with pytest.raises(TaskNotFound):
        await engine.get(done.id)
    assert (await engine.get(series.id)).status in (Status.PENDING, Status.RUNNING)
    remaining, _ = await engine.runs(series.id)
    assert all(r.finished_at is None or r.finished_at >= cutoff for r in remaining)
    await engine.cancel(series.id)


async def test_a_burst_is_claimed_ahead_of_its_instant(engine: Engine) -> None:
    """1,000 runs due at one instant take longer to claim than the 50 ms lookahead: the node
    claims them earlier, by the time that takes, so that they can all start on time."""
    due = datetime.now(UTC) + timedelta(seconds=3)  # beyond the range where bursts are sized
    await engine.add_many([NewTask(Spec("test"), at(due)) for _ in range(1_000)])
    await asyncio.sleep((due - timedelta(seconds=0.1) - datetime.now(UTC)).total_seconds())
    index = await engine.index()
    assert len(index[Status.RUNNING]) >= 500, "not claimed 100 ms before the instant"
    async with asyncio.timeout(30):
        while len((await engine.index())[Status.COMPLETED]) < 1_000:
            await asyncio.sleep(0.05)

"""Recurring tasks in the engine on both databases: series state, count, overlap and downtime."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import pytest
from pydantic import BaseModel

from onair.config import EngineSettings
from onair.engine.admission import ANYONE, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.models import NewTask, Outcome, Spec, Status
from onair.engine.policies import Policy
from onair.engine.registry import Registry, RunContext
from onair.errors import OperationError
from onair.store.database import Store


def every(seconds: float, count: int | None = None, start: float = 0.3) -> Spec:
    parameters: dict[str, Any] = {
        "every": seconds,
        "start": (datetime.now(UTC) + timedelta(seconds=start)).isoformat(),
    }
    if count is not None:
        parameters["count"] = count
    return Spec("interval", parameters)


async def until_finished(engine: Engine, task_id: UUID, within: float = 15) -> Status:
    async with asyncio.timeout(within):
        while not (task := await engine.get(task_id)).status.finished:
            await asyncio.sleep(0.02)
    return task.status


async def test_series_runs_its_count_then_completes(engine: Engine) -> None:
    task = await engine.add(NewTask(Spec("test"), every(0.3, count=3)))
    seen = set()
    async with asyncio.timeout(10):
        while not (current := await engine.get(task.id)).status.finished:
            seen.add(current.status)
            await asyncio.sleep(0.01)
    assert current.status is Status.COMPLETED
    assert Status.PENDING in seen
    assert current.occurrences == 3
    assert current.next_at is None
    runs, _ = await engine.runs(task.id)
    ran = sorted((r for r in runs if r.outcome is not Outcome.MISSED), key=lambda r: r.due_at)
    assert all(r.outcome is Outcome.COMPLETED for r in ran)
    # On a loaded machine an occurrence may be overtaken by the next (recorded as missed);
    # otherwise the three runs are due exactly 0.3 s apart.
    assert current.runs == len(ran) >= 2
    offsets = [(r.due_at - ran[0].due_at).total_seconds() for r in ran]
    assert all(round(offset / 0.3, 6).is_integer() for offset in offsets)


async def test_overlap_skip_records_missed_occurrences(engine: Engine) -> None:
    task = await engine.add(NewTask(Spec("test", {"sleep": 0.7}), every(0.3, count=4)))
    assert await until_finished(engine, task.id) is Status.COMPLETED
    runs, _ = await engine.runs(task.id)
    outcomes = [r.outcome for r in sorted(runs, key=lambda r: r.due_at)]
    assert outcomes.count(Outcome.MISSED) >= 1
    assert outcomes[0] is Outcome.COMPLETED
    skipped = [r for r in runs if r.outcome is Outcome.MISSED]
    assert skipped[0].error == "Skipped: the previous run was still in progress."


async def test_overlap_allow_runs_concurrently(engine: Engine) -> None:
    policy = {"overlap": "allow"}
    task = await engine.add(
        NewTask(Spec("test", {"sleep": 0.7}), every(0.3, count=3), policy=policy)
    )
    assert await until_finished(engine, task.id) is Status.COMPLETED
    runs, _ = await engine.runs(task.id)
    assert [r.outcome for r in runs] == [Outcome.COMPLETED] * 3
    ordered = sorted(runs, key=lambda r: r.due_at)
    assert ordered[1].started_at < ordered[0].finished_at  # type: ignore[operator]


async def test_overlap_replace_cancels_the_running_one(engine: Engine) -> None:
    policy = {"overlap": "replace"}
    task = await engine.add(
        NewTask(Spec("test", {"sleep": 0.7}), every(0.4, count=2), policy=policy)
    )
    assert await until_finished(engine, task.id) is Status.COMPLETED
    runs, _ = await engine.runs(task.id)
    first, second = sorted(runs, key=lambda r: r.due_at)
    assert first.outcome is Outcome.CANCELLED
    assert first.error is not None
    assert first.error.startswith("Replaced by the run due at")
    assert second.outcome is Outcome.COMPLETED


async def test_downtime_gives_one_late_run_and_records_the_missed(engine: Engine) -> None:
    task = await engine.add(NewTask(Spec("test"), every(0.4, start=0.2)))
    await engine.__aexit__(None, None, None)
    await asyncio.sleep(1.8)  # about four occurrences pass while the node is down
    await engine.__aenter__()
    async with asyncio.timeout(5):
        while (await engine.runs(task.id))[1] < 2:
            await asyncio.sleep(0.02)
    runs, _ = await engine.runs(task.id)
    missed = sorted((r for r in runs if r.outcome is Outcome.MISSED), key=lambda r: r.due_at)
    ran = [r for r in runs if r.outcome is not Outcome.MISSED]
    # One record for the occurrences the downtime overtook (a loaded machine may miss another
    # later, recorded apart).
    assert missed
    assert missed[0].error is not None
    assert re.match(r"Missed: [3-5] occurrences from .* passed while a later one", missed[0].error)
    assert len(ran) >= 1
    await engine.cancel(task.id)


@pytest.mark.parametrize(
    ("condition", "parameters"),
    [
        ("recurring", {"frequency": "daily", "start": "2026-01-01T09:00:00"}),
        ("cron", {"expression": "0 9 * * 1-5", "timezone": "America/New_York"}),
        ("rrule", {"rule": "FREQ=MONTHLY;BYDAY=-1FR", "start": "2026-01-01T20:00:00"}),
        ("interval", {"every": "PT90M"}),
    ],
    ids=["recurring", "cron", "rrule", "interval"],
)
async def test_series_created_in_the_past_start_from_now(
    engine: Engine, condition: str, parameters: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    task = await engine.add(NewTask(Spec("test"), Spec(condition, parameters)))
    assert task.status is Status.PENDING
    assert task.next_at is not None
    assert task.next_at >= before


class NoParameters(BaseModel):
    pass


class Flaky:
    """Fails the first attempt of every run it serves, and records what each run was told."""

    name: ClassVar[str] = "flaky"
    Parameters: ClassVar[type[BaseModel]] = NoParameters
    policy: ClassVar[Policy] = Policy()
    roles: ClassVar[frozenset[Role]] = ANYONE

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, UUID]] = []

    async def run(
        self, parameters: Any, dependencies: Mapping[str, Any], context: RunContext
    ) -> Any:
        self.seen.append((context.occurrence, context.attempt, context.run_id))
        if context.attempt == 1:
            raise OperationError("first attempts fail")
        return None


async def test_a_retry_serves_the_occurrence_it_retries(store: Store) -> None:
    """What keys an effect once per occurrence (credit recharges): the occurrence number is
    the same for a run and its retries, and counts up with the series."""
    flaky = Flaky()
    policy = {"retry": {"attempts": 2, "backoff": "PT0.1S"}}
    settings = EngineSettings(lease="PT3S", min_interval="PT0.1S")  # type: ignore[arg-type]
    async with Engine(store, Registry([flaky]), settings=settings) as engine:
        task = await engine.add(NewTask(Spec("flaky"), every(0.6, count=3), policy=policy))
        assert await until_finished(engine, task.id) is Status.COMPLETED
    assert [(occurrence, attempt) for occurrence, attempt, _ in flaky.seen] == [
        (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)
    ]  # fmt: skip
    assert len({run_id for *_, run_id in flaky.seen}) == 6

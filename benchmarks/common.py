"""What every scenario shares: the result rows, the no-op operation, statistics and timing.

The benchmark operation records the wall clock at which it starts, so lateness is measured
where the user would feel it (inside the operation), not where the engine thinks it started.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from onair.config import EngineSettings
from onair.engine.admission import ANYONE, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec
from onair.engine.policies import Policy
from onair.engine.registry import JSON, Registry, RunContext
from onair.store.database import Store

FAR_FUTURE = "2099-01-01T00:00:00+00:00"
ROOT = Path(__file__).resolve().parent.parent
"""The repository, where `python -m benchmarks...` children run."""
"""The `at` instant of tasks that must stay pending for the whole run."""


@dataclass(frozen=True)
class Row:
    """One line of the final table. `ratio` is filled in against the onair row of the same
    scenario and metric once every system has been measured."""

    scenario: str
    system: str
    metric: str
    value: float | str
    unit: str = ""
    note: str = ""
    higher_is_better: bool = True


@dataclass
class Options:
    quick: bool = False
    large: bool = False
    only: list[str] = field(default_factory=list)
    profile: bool = False
    duration: float | None = None
    """Seconds of load per rate in the sustained scenario (default 60, 5 with --quick)."""
    systems: list[str] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)


def log(message: str) -> None:
    """Progress on stdout as the run goes, so a long run shows it is alive."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# The operation -------------------------------------------------------------------------------


class NoopParameters(BaseModel):
    model_config = ConfigDict(extra="allow")


class Recorder:
    """Start times by task id, kept by the no-op operation: a list per task so that a
    duplicated run shows up as a second entry rather than overwriting the first."""

    def __init__(self) -> None:
        self.starts: dict[UUID, list[tuple[float, float]]] = {}
        self.total = 0

    def record(self, task_id: UUID, started: float, due: float) -> None:
        self.starts.setdefault(task_id, []).append((started, due))
        self.total += 1

    def count(self) -> int:
        """Runs recorded so far; O(1), as the scenarios poll it every 20 ms."""
        return self.total


class Noop:
    """The benchmark operation: records its wall-clock start and returns nothing."""

    name: ClassVar[str] = "bench_noop"
    Parameters: ClassVar[type[BaseModel]] = NoopParameters
    policy: ClassVar[Policy] = Policy()
    roles: ClassVar[frozenset[Role]] = ANYONE

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        self.recorder.record(context.task_id, time.time(), context.due.timestamp())
        return None


def new_task(due: datetime | str) -> NewTask:
    """A one-shot no-op task due at `due`."""
    instant = due if isinstance(due, str) else due.isoformat()
    return NewTask(Spec(Noop.name, {}), Spec("at", {"datetime": instant}))


def sqlite_url(directory: Path, name: str = "onair.db") -> str:
    return f"sqlite:///{directory / name}"


@contextlib.asynccontextmanager
async def onair_engine(
    url: str, recorder: Recorder | None = None, *, start: bool = True
) -> AsyncIterator[Engine]:
    """An in-process engine with the no-op operation on a migrated store at `url`."""
    store = Store(url)
    async with store:
        await store.migrate()
        engine = Engine(store, Registry([Noop(recorder or Recorder())]), settings=EngineSettings())
        if start:
            async with engine:
                yield engine
        else:
            yield engine


@contextlib.contextmanager
def temp_dir() -> Any:
    with tempfile.TemporaryDirectory(prefix="onair-bench-") as directory:
        yield Path(directory)


def utcnow() -> datetime:
    return datetime.now(UTC)


def after(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


# Statistics ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def lateness_rows(
    scenario: str, system: str, lateness_ms: Sequence[float], note: str = ""
) -> list[Row]:
    """p50/p95/p99/max of lateness in ms, lower is better."""
    return [
        Row(scenario, system, f"lateness {name}", value, "ms", note, higher_is_better=False)
        for name, value in (
            ("p50", percentile(lateness_ms, 50)),
            ("p95", percentile(lateness_ms, 95)),
            ("p99", percentile(lateness_ms, 99)),
            ("max", max(lateness_ms, default=float("nan"))),
        )
    ]


def exactly_once(expected: Sequence[Any], starts: Mapping[Any, Sequence[Any]]) -> tuple[int, int]:
    """(missed, duplicated): tasks that never ran, and extra runs of tasks that ran twice."""
    missed = sum(1 for key in expected if not starts.get(key))
    duplicated = sum(max(len(starts.get(key, ())) - 1, 0) for key in expected)
    return missed, duplicated


def median_of(values: Sequence[float]) -> float:
    return statistics.median(values)


async def repeat(times: int, measure: Callable[[], Awaitable[float]]) -> list[float]:
    """`measure` run `times` times, one after the other."""
    return [await measure() for _ in range(times)]


async def wait_until(predicate: Callable[[], bool], within: float, step: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `within` seconds pass; says whether it held."""
    import asyncio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def bulk_fill(
    engine: Engine, count: int, due: datetime | str, batch: int = 5_000
) -> list[UUID]:
    """Store `count` no-op tasks due at `due` with `Engine.add_many`, `batch` per transaction.

    Used where creation is not what is measured (backlogs, execution throughput), so that a
    100k or 1M backlog takes seconds instead of minutes."""
    ids: list[UUID] = []
    for done in range(0, count, batch):
        added = await engine.add_many([new_task(due) for _ in range(min(batch, count - done))])
        ids += [task.id for task in added]
    return ids

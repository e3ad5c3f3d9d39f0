"""Scenario 2: firing precision. 1,000 tasks due at distinct instants over 10 s, and 1,000 due
at one instant; lateness is the operation's wall-clock start minus its due instant. Every task
must run exactly once: missed and duplicated runs are counted, not assumed away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from benchmarks import peers
from benchmarks.common import (
    FAR_FUTURE,
    Options,
    Recorder,
    Row,
    after,
    exactly_once,
    lateness_rows,
    log,
    new_task,
    onair_engine,
    percentile,
    sqlite_url,
    temp_dir,
    utcnow,
    wait_until,
)

SPREAD = "2 precision {n} over {window:.0f}s"
BURST = "2 precision {n} at once"


def due_instants(start: datetime, count: int, window: float) -> list[datetime]:
    """`count` distinct instants from `start` over `window` seconds (all equal when 0)."""
    step = window / count if window else 0.0
    return [start + timedelta(seconds=i * step) for i in range(count)]


def precision_rows(
    scenario: str,
    system: str,
    keys: Sequence[Any],
    starts: Mapping[Any, Sequence[tuple[float, float]]],
    note: str = "",
) -> list[Row]:
    """Lateness percentiles of the first run of each key, and the missed/duplicated counts."""
    lateness = [(runs[0][0] - runs[0][1]) * 1000 for key in keys if (runs := starts.get(key))]
    missed, duplicated = exactly_once(keys, starts)
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    log(
        f"  {system}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {max(lateness, default=float('nan')):.1f} ms, missed {missed}, dup {duplicated}"
    )
    return [
        *lateness_rows(scenario, system, lateness, note),
        Row(scenario, system, "missed", missed, "", note, higher_is_better=False),
        Row(scenario, system, "duplicated", duplicated, "", note, higher_is_better=False),
    ]


async def onair_precision(count: int, window: float) -> dict[Any, list[tuple[float, float]]]:
    """Start times of `count` tasks added one by one through `Engine.add` to a running engine,
    due from a few seconds after they have all been added."""
    recorder = Recorder()
    with temp_dir() as directory:
        async with onair_engine(sqlite_url(directory), recorder) as engine:
            lead = await _creation_lead(engine, count)
            instants = due_instants(after(lead), count, window)
            keys = [(await engine.add(new_task(due))).id for due in instants]
            overrun = (utcnow() - instants[0]).total_seconds()
            if overrun > 0:
                log(f"  warning: creation ended {overrun:.2f} s after the first due instant")
            await wait_until(lambda: recorder.count() >= count, lead + window + 60)
            await asyncio.sleep(1.0)  # time for a duplicate to show
    return {key: recorder.starts.get(key, []) for key in keys}


async def _creation_lead(engine: Any, count: int) -> float:
    """Seconds to leave before the first due instant: the time `count` adds take, measured on
    50 far-future adds, with a margin."""
    started = time.perf_counter()
    for _ in range(50):
        await engine.add(new_task(FAR_FUTURE))
    per_task = (time.perf_counter() - started) / 50
    return count * per_task * 1.5 + 2.0


async def peer_precision(kind: str, count: int, window: float) -> dict[Any, Any]:
    """The same with APScheduler 3 on store `kind`."""
    peers.STARTS.clear()
    keys = [f"p{i}" for i in range(count)]
    with temp_dir() as directory, peers.scheduler(kind, directory) as sched:
        started = time.perf_counter()
        for i in range(20):
            peers.add(sched, f"probe{i}", datetime(2099, 1, 1).astimezone())
        lead = count * (time.perf_counter() - started) / 20 * 1.5 + 2.0
        for key, due in zip(keys, due_instants(after(lead), count, window), strict=True):
            peers.add(sched, key, due)
        total = lambda: sum(len(peers.STARTS.get(k, ())) for k in keys)  # noqa: E731
        await wait_until(lambda: total() >= count, lead + window + 60)
        await asyncio.sleep(1.0)
    return {key: list(peers.STARTS.get(key, [])) for key in keys}


async def run(options: Options) -> list[Row]:
    count = 50 if options.quick else 1_000
    window = 2.0 if options.quick else 10.0
    rows: list[Row] = []
    for scenario, span in (
        (SPREAD.format(n=f"{count:,}", window=window), window),
        (BURST.format(n=f"{count:,}"), 0.0),
    ):
        log(f"scenario {scenario}: onair")
        starts = await onair_precision(count, span)
        rows += precision_rows(scenario, "onair", list(starts), starts)
        for kind in (peers.MEMORY, peers.SQLITE):
            log(f"scenario {scenario}: {kind}")
            starts = await peer_precision(kind, count, span)
            rows += precision_rows(scenario, kind, list(starts), starts, "misfire_grace_time=None")
    return rows

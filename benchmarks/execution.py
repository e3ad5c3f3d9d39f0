"""Scenario 4: execution throughput. 10k no-op tasks all due at one instant a few seconds
ahead (bulk-loaded, so creation is not measured); runs completed per second end to end, from
the due instant until the store shows every task completed."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text

from benchmarks.common import (
    Options,
    Recorder,
    Row,
    after,
    bulk_fill,
    exactly_once,
    log,
    median_of,
    onair_engine,
    sqlite_url,
    temp_dir,
)
from onair.engine.core import Engine

SHORT = 20.0
"""Seconds: a repetition shorter than this is repeated to three and the median quoted."""
LEAD = 3.0
"""Seconds between loading the tasks and their due instant."""


async def onair_execution(count: int) -> tuple[float, float, int, int]:
    """(completed/s end to end, started/s, missed, duplicated) for `count` tasks."""
    recorder = Recorder()
    with temp_dir() as directory:
        async with onair_engine(sqlite_url(directory), recorder) as engine:
            due = after(LEAD + count / 20_000)
            keys = await bulk_fill(engine, count, due)
            due_s = due.timestamp()
            completed_at = await all_completed(engine, count, within=LEAD + 600)
            await asyncio.sleep(0.5)
    starts = {key: recorder.starts.get(key, []) for key in keys}
    missed, duplicated = exactly_once(keys, starts)
    last_start = max((s[0][0] for s in starts.values() if s), default=float("nan"))
    return count / (completed_at - due_s), count / (last_start - due_s), missed, duplicated


async def all_completed(engine: Engine, count: int, within: float) -> float:
    """The wall-clock time at which `count` tasks are completed in the store (polled every
    20 ms with a read of its own, which costs the engine a little)."""
    deadline = time.monotonic() + within
    query = text("SELECT count(*) FROM tasks WHERE status = 'completed'")
    while time.monotonic() < deadline:
        async with engine.store.begin() as conn:
            done = (await conn.execute(query)).scalar_one()
        if done >= count:
            return time.time()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"only {done} of {count} tasks completed in {within:.0f} s")


async def run(options: Options) -> list[Row]:
    count = 500 if options.quick else 10_000
    scenario = f"4 execute {count / 1000:g}k due now"
    completed: list[float] = []
    started: list[float] = []
    missed = duplicated = 0
    for repetition in range(1 if options.quick else 3):
        if repetition == 1 and count / completed[0] > SHORT:
            break  # a long run: one is enough
        log(f"scenario {scenario}: onair, repetition {repetition + 1}")
        done_rate, start_rate, miss, dup = await onair_execution(count)
        log(
            f"  {done_rate:,.0f} completed/s, {start_rate:,.0f} started/s, missed {miss}, dup {dup}"
        )
        completed.append(done_rate)
        started.append(start_rate)
        missed, duplicated = missed + miss, duplicated + dup
    runs = f"median of {len(completed)}" if len(completed) > 1 else "1 run"
    note = f"{runs}; bulk-loaded, due 3 s ahead"
    total = f"sum over {len(completed)} run(s)"
    return [
        Row(scenario, "onair", "completed/s", median_of(completed), "/s", note),
        Row(scenario, "onair", "started/s", median_of(started), "/s", note),
        Row(scenario, "onair", "missed", missed, "", total, False),
        Row(scenario, "onair", "duplicated", duplicated, "", total, False),
    ]

"""Scenario 1: how fast tasks are scheduled, one call each (Python API), over HTTP, and by
APScheduler 3 for comparison. Creation only: every task is due far in the future."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from benchmarks import peers
from benchmarks.common import (
    FAR_FUTURE,
    Options,
    Row,
    log,
    median_of,
    new_task,
    onair_engine,
    sqlite_url,
    temp_dir,
)
from benchmarks.fill import fill_in_child
from benchmarks.http import http_throughput

SCENARIO = "1 schedule {size}"
CALLERS = 64
"""Concurrent callers in the `onair add x64` measurement."""
BATCH = 1_000
"""Tasks per `add_many` call in the `onair add_many` measurement."""
SHORT = 20.0
"""A measurement shorter than this (seconds) is repeated to three and its median quoted."""


async def onair_rate(count: int, prefill: int = 0) -> float:
    """Tasks/s of `count` sequential `Engine.add` calls on a fresh store with a running
    worker, after `prefill` tasks were bulk-loaded."""
    with temp_dir() as directory:
        if prefill:
            await fill_in_child(sqlite_url(directory), prefill)
        async with onair_engine(sqlite_url(directory)) as engine:
            started = time.perf_counter()
            for _ in range(count):
                await engine.add(new_task(FAR_FUTURE))
            return count / (time.perf_counter() - started)


async def onair_concurrent_rate(count: int, callers: int = CALLERS) -> float:
    """Tasks/s of `count` `Engine.add` calls made by `callers` concurrent callers (one call
    per task each; the engine shares transactions between calls that overlap)."""
    with temp_dir() as directory:
        async with onair_engine(sqlite_url(directory)) as engine:
            share = count // callers

            async def caller() -> None:
                for _ in range(share):
                    await engine.add(new_task(FAR_FUTURE))

            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(callers)))
            return share * callers / (time.perf_counter() - started)


async def onair_batch_rate(count: int, batch: int = BATCH) -> float:
    """Tasks/s of `count` tasks added by `Engine.add_many`, `batch` per call."""
    with temp_dir() as directory:
        async with onair_engine(sqlite_url(directory)) as engine:
            started = time.perf_counter()
            for done in range(0, count, batch):
                await engine.add_many(
                    [new_task(FAR_FUTURE) for _ in range(min(batch, count - done))]
                )
            return count / (time.perf_counter() - started)


async def peer_rate(kind: str, count: int) -> float:
    """Jobs/s of `count` sequential `add_job` calls on a running APScheduler."""
    due = datetime(2099, 1, 1, tzinfo=UTC)
    with temp_dir() as directory, peers.scheduler(kind, directory) as sched:
        started = time.perf_counter()
        for i in range(count):
            peers.add(sched, f"s{i}", due)
        return count / (time.perf_counter() - started)


async def median_rate(
    measure: Callable[[], Awaitable[float]], label: str, quick: bool = False
) -> tuple[float, str]:
    """The first measurement; if it was short (and the run is not `--quick`), the median of
    three."""
    started = time.perf_counter()
    first = await measure()
    log(f"  {label}: {first:,.0f}/s")
    if quick:
        return first, "1 run (quick)"
    if time.perf_counter() - started > SHORT:
        return first, "1 run (long)"
    rest = [await measure(), await measure()]
    log(f"  {label}: then {rest[0]:,.0f}/s, {rest[1]:,.0f}/s")
    return median_of([first, *rest]), "median of 3"


async def run(options: Options) -> list[Row]:
    small, large = (300, 600) if options.quick else (10_000, 100_000)
    rows: list[Row] = []
    reused: dict[str, tuple[float, str]] = {}
    for size in (small, large):
        rows += await _size(size, small, options, reused)
    rows += await http_rows(options)
    return rows


async def _size(
    size: int, small: int, options: Options, reused: dict[str, tuple[float, str]]
) -> list[Row]:
    scenario = SCENARIO.format(size=f"{size / 1000:g}k")
    rows: list[Row] = []
    log(f"scenario {scenario}: onair Engine.add on SQLite")
    if size == small:
        rate, note = await median_rate(lambda: onair_rate(size), "onair", options.quick)
    else:
        rate, note = await _onair_large(size, small)
    rows.append(Row(scenario, "onair", "tasks/s", rate, "/s", note))
    for system, measure_onair in (
        (f"onair add x{CALLERS} callers", lambda: onair_concurrent_rate(size)),
        (f"onair add_many x{BATCH:,}", lambda: onair_batch_rate(size)),
    ):
        log(f"scenario {scenario}: {system}")
        rate, note = await median_rate(measure_onair, system, options.quick)
        rows.append(Row(scenario, system, "tasks/s", rate, "/s", note))
    for kind in (peers.MEMORY, peers.SQLITE):
        if kind == peers.SQLITE and size != small:
            # One commit (and fsync) per job: the small size's figure stands for this one.
            rate, note = reused[kind]
            note = f"the {small:,}-job figure (slow store: {size:,} jobs not run)"
        else:
            log(f"scenario {scenario}: {kind} ({size:,} jobs)")
            measure: Callable[[], Awaitable[float]] = lambda k=kind: peer_rate(k, size)  # noqa: E731
            rate, note = await median_rate(measure, kind, options.quick)
            reused[kind] = rate, note
        rows.append(Row(scenario, kind, "tasks/s", rate, "/s", note))
    return rows


async def _onair_large(size: int, small: int) -> tuple[float, str]:
    """All `size` adds one by one when that takes under two minutes at the small-size rate;
    otherwise the last `small` adds on top of `size - small` bulk-loaded tasks, which shows
    the rate at that table size without spending many minutes filling it."""
    probe = await onair_rate(500)
    if size / probe <= 120:
        return await onair_rate(size), f"{size:,} adds, 1 run"
    rate = await onair_rate(small, prefill=size - small)
    log(f"  onair: {rate:,.0f}/s")
    return rate, f"last {small:,} adds on {size - small:,} bulk-loaded; 1 run"


async def http_rows(options: Options) -> list[Row]:
    scenario = "1 schedule HTTP"
    duration, repetitions = (2.0, 1) if options.quick else (10.0, 3)
    log(f"scenario {scenario}: onair serve on SQLite, 16 keep-alive connections")
    rates, tool = await http_throughput(duration, repetitions, connections=16)
    log(f"  onair HTTP ({tool}): " + ", ".join(f"{r:,.0f}/s" for r in rates))
    note = f"{tool}, 16 conns, {duration:.0f} s x{repetitions}, median; `test` op due 2099"
    return [Row(scenario, "onair serve (SQLite)", "requests/s", median_of(rates), "/s", note)]

"""Scenario 3: precision under a backlog. 100k tasks (1M with `--large`) pending far in the
future, then 200 due over the next 5 s: their lateness, the peak RSS of the process and the
start-up time of an engine on that store.

The measurement runs in a child process (`python -m benchmarks.backlog DB COUNT WINDOW`) so
that its peak RSS is the engine's, not that of whatever this suite did before; the backlog is
bulk-loaded by the parent beforehand.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass

import psutil

from benchmarks.common import (
    FAR_FUTURE,
    ROOT,
    Noop,
    Options,
    Recorder,
    Row,
    after,
    exactly_once,
    lateness_rows,
    log,
    new_task,
    sqlite_url,
    temp_dir,
    utcnow,
    wait_until,
)
from benchmarks.fill import fill_in_child
from benchmarks.precision import due_instants
from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.store.database import Store


@dataclass
class Measured:
    """What the child reports, as one JSON line on stdout."""

    startup_enter_s: float
    startup_total_s: float
    lateness_ms: list[float]
    missed: int
    duplicated: int
    overrun_s: float
    """How long after the first due instant creation ended (> 0 spoils the lateness)."""
    rss_idle_mb: float
    rss_ready_mb: float
    maxrss_mb: float


async def measure(url: str, count: int, window: float) -> Measured:
    """In the child: open the store, start an engine, fire `count` tasks over `window`."""
    rss_idle = psutil.Process().memory_info().rss
    recorder = Recorder()
    opened = time.perf_counter()
    async with Store(url) as store:
        await store.migrate()
        engine = Engine(store, Registry([Noop(recorder)]), settings=EngineSettings())
        entered = time.perf_counter()
        await engine.__aenter__()
        ready = time.perf_counter()
        try:
            rss_ready = psutil.Process().memory_info().rss
            started = time.perf_counter()
            for _ in range(20):
                await engine.add(new_task(FAR_FUTURE))
            lead = (time.perf_counter() - started) / 20 * count * 2 + 2.0
            instants = due_instants(after(lead), count, window)
            keys = [(await engine.add(new_task(due))).id for due in instants]
            overrun = (utcnow() - instants[0]).total_seconds()
            await wait_until(lambda: recorder.count() >= count, lead + window + 60)
            await asyncio.sleep(1.0)
        finally:
            await engine.__aexit__(None, None, None)
    starts = {key: recorder.starts.get(key, []) for key in keys}
    missed, duplicated = exactly_once(keys, starts)
    return Measured(
        startup_enter_s=ready - entered,
        startup_total_s=ready - opened,
        lateness_ms=[(r[0][0] - r[0][1]) * 1000 for r in starts.values() if r],
        missed=missed,
        duplicated=duplicated,
        overrun_s=overrun,
        rss_idle_mb=rss_idle / 2**20,
        rss_ready_mb=rss_ready / 2**20,
        maxrss_mb=high_water_mark_mb(),
    )


def high_water_mark_mb() -> float:
    """Peak RSS of this process since its `exec` (VmHWM). Not `ru_maxrss`: Linux keeps that
    across `exec`, so a child forked from a big parent reports the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(options: Options) -> list[Row]:
    sizes = [5_000] if options.quick else [100_000]
    if options.large:
        sizes.append(1_000_000)
    rows: list[Row] = []
    count, window = (30, 3.0) if options.quick else (200, 5.0)
    for size in sizes:
        rows += await _backlog(size, count, window)
    for size in sizes:
        rows += await _backlog(size, count, window, postgresql=True)
    return rows


PG_DATABASE = "onair_bench_backlog"


async def _backlog(size: int, count: int, window: float, postgresql: bool = False) -> list[Row]:
    """The backlog on a SQLite file, or on a fresh PostgreSQL database (one node on it)."""
    from benchmarks.nodes import PG, _psql

    scenario = f"3 backlog {size // 1000:,}k pending{' (PostgreSQL)' if postgresql else ''}"
    with temp_dir() as directory:
        if postgresql:
            _psql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
            _psql(f"CREATE DATABASE {PG_DATABASE}")
            url = f"{PG}/{PG_DATABASE}"
        else:
            url = sqlite_url(directory)
        log(f"scenario {scenario}: bulk-loading {size:,} far-future tasks")
        started = time.perf_counter()
        await fill_in_child(url, size)
        if postgresql:
            # A store that has held its tasks for a while has been vacuumed and analyzed; one
            # just bulk-loaded has not, and autovacuum would then scan it during the window.
            _psql("VACUUM ANALYZE tasks", database=PG_DATABASE)
            db_mb = 0.0
        else:
            db_mb = (directory / "onair.db").stat().st_size / 2**20
        log(f"  loaded in {time.perf_counter() - started:.0f} s ({db_mb:.0f} MB file)")
        log(f"scenario {scenario}: {count} due over {window:.0f} s, in a fresh process")
        result = await _child(url, count, window)
        if postgresql:
            _psql(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    note = f"{count} due over {window:.0f} s"
    if result.overrun_s > 0:
        note += f"; creation overran the first due instant by {result.overrun_s:.2f} s"
    log(
        f"  start-up {result.startup_enter_s:.3f} s, peak RSS {result.maxrss_mb:.0f} MB, "
        f"missed {result.missed}, dup {result.duplicated}"
    )
    idle = f"interpreter + imports alone: {result.rss_idle_mb:.0f} MB"
    return [
        *lateness_rows(scenario, "onair", result.lateness_ms, note),
        Row(scenario, "onair", "missed", result.missed, "", note, False),
        Row(scenario, "onair", "duplicated", result.duplicated, "", note, False),
        Row(scenario, "onair", "peak RSS", result.maxrss_mb, "MB", "VmHWM of the child", False),
        Row(scenario, "onair", "RSS after start", result.rss_ready_mb, "MB", idle, False),
        Row(
            scenario,
            "onair",
            "start-up",
            result.startup_enter_s * 1000,
            "ms",
            "Engine.__aenter__ only",
            False,
        ),
        Row(
            scenario,
            "onair",
            "start-up + open",
            result.startup_total_s * 1000,
            "ms",
            "Store() + migrate() + Engine.__aenter__",
            False,
        ),
    ]


async def _child(url: str, count: int, window: float) -> Measured:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.backlog",
        url,
        str(count),
        str(window),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    output = (await process.communicate())[0].decode().strip().splitlines()
    if process.returncode != 0 or not output:
        raise RuntimeError(f"backlog child failed with {process.returncode}")
    return Measured(**json.loads(output[-1]))


if __name__ == "__main__":
    url, count, window = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asdict(asyncio.run(measure(url, count, window)))))

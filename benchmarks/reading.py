"""Scenario 6: reading never delays a run. A served node on SQLite with 100k pending tasks
(10k with `--quick`); runs fall due over a few seconds, first with nobody reading, then while
another process fetches the full index (`GET /tasks`, 4 MB of JSON at 100k) every 200 ms.
Their lateness in both phases, and how long one index takes to arrive.

The poller is a process of its own (`python -m benchmarks.reading URL INTERVAL SECONDS`), as a
monitoring script would be, so that its parsing of the answer costs the node nothing.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import timedelta
from typing import Any

import httpx

from benchmarks.common import ROOT, Options, Row, after, lateness_rows, log, percentile, temp_dir
from benchmarks.common import sqlite_url as sqlite_store
from benchmarks.fill import fill_in_child
from benchmarks.http import get_runs, post_tasks, server

INTERVAL = 0.2
"""Seconds between two polls of `GET /tasks`."""


async def run(options: Options) -> list[Row]:
    size = 10_000 if options.quick else 100_000
    count, window = (30, 3.0) if options.quick else (100, 5.0)
    scenario = f"6 reading {size // 1000:,}k pending"
    with temp_dir() as directory:
        url = sqlite_store(directory)
        log(f"scenario {scenario}: bulk-loading {size:,} far-future tasks")
        await fill_in_child(url, size)
        async with server(url, directory) as base:
            log(f"scenario {scenario}: {count} runs due over {window:.0f} s, nobody reading")
            quiet = await _lateness(base, count, window)
            log(f"scenario {scenario}: the same while GET /tasks is polled every 200 ms")
            poller = await _start_poller(base, window + 3.0)
            await asyncio.sleep(0.5)  # the first polls are under way
            polled = await _lateness(base, count, window)
            polls = await _poller_result(poller)
    note = f"{count} due over {window:.0f} s"
    log(
        f"  quiet p99 {percentile(quiet, 99):.1f} ms; polled p99 {percentile(polled, 99):.1f} ms "
        f"({len(polls['seconds'])} polls of {polls['bytes'] / 2**20:.1f} MB)"
    )
    return [
        *lateness_rows(f"{scenario}, quiet", "onair", quiet, note),
        *lateness_rows(f"{scenario}, GET /tasks every 200 ms", "onair", polled, note),
        Row(
            scenario,
            "onair",
            "GET /tasks p50",
            percentile(polls["seconds"], 50) * 1000,
            "ms",
            f"{len(polls['seconds'])} polls, {polls['bytes'] / 2**20:.1f} MB each",
            False,
        ),
    ]


async def _lateness(base: str, count: int, window: float) -> list[float]:
    """Lateness (ms) of `count` test runs due evenly over `window` seconds from 1 s on."""
    start = after(1.0)
    bodies = [
        {
            "operation": {"type": "test", "parameters": {}},
            "condition": {
                "type": "at",
                "parameters": {
                    "datetime": (start + timedelta(seconds=i * window / count)).isoformat()
                },
            },
            "dependencies": {},
        }
        for i in range(count)
    ]
    ids = await post_tasks([base], bodies, 4)
    await asyncio.sleep(max(0.0, (start - after(0)).total_seconds()) + window + 1.0)
    runs = await get_runs(base, ids, 4)
    return [run["lateness"] * 1000 for found in runs.values() for run in found if run["lateness"]]


async def _start_poller(base: str, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.reading",
        base,
        str(INTERVAL),
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def _poller_result(process: asyncio.subprocess.Process) -> dict[str, Any]:
    output = (await process.communicate())[0].decode().strip().splitlines()
    if process.returncode != 0 or not output:
        raise RuntimeError(f"the GET /tasks poller failed with {process.returncode}")
    result: dict[str, Any] = json.loads(output[-1])
    return result


async def _poll(base: str, interval: float, seconds: float) -> dict[str, Any]:
    """In the child: `GET /tasks` every `interval` seconds (the next one when the previous has
    arrived, if it took longer) for `seconds`; how long each took and how big it was."""
    took: list[float] = []
    size = 0
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < deadline:
            began = time.monotonic()
            response = await client.get("/tasks")
            response.raise_for_status()
            size = len(response.content)
            json.loads(response.content)  # a whole document, as the client reads it
            took.append(time.monotonic() - began)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))
    return {"seconds": took, "bytes": size}


if __name__ == "__main__":
    base, interval, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(_poll(base, interval, seconds))))

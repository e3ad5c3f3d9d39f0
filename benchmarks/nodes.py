"""Scenario 5: two `onair serve` nodes on one PostgreSQL database. Tasks are created over
HTTP (alternating between the nodes), then each task's runs are read back over HTTP to check
that it ran exactly once, on which node, and how late (`runs[].lateness`)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import FAR_FUTURE, Options, Row, after, lateness_rows, log, temp_dir
from benchmarks.http import get_runs, post_tasks, server
from benchmarks.precision import due_instants

DATABASE = "onair_bench_nodes"
PG = "postgresql://postgres@127.0.0.1:5432"
CONNECTIONS = 16


def _psql(command: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", command],
        check=True,
        capture_output=True,
    )


@contextlib.asynccontextmanager
async def two_nodes(directory: Path) -> AsyncIterator[list[str]]:
    """A fresh database and two nodes on it; yields their base URLs."""
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DATABASE}")
    url = f"{PG}/{DATABASE}"
    async with server(url, directory, "node-a") as a:
        # The second starts after the first has migrated (they would take turns anyway).
        async with server(url, directory, "node-b") as b:
            yield [a, b]


def body(due: datetime | str) -> dict[str, Any]:
    instant = due if isinstance(due, str) else due.isoformat()
    return {
        "operation": {"type": "test", "parameters": {}},
        "condition": {"type": "at", "parameters": {"datetime": instant}},
        "dependencies": {},
    }


async def _lead(bases: list[str], count: int) -> float:
    """Seconds to leave before the first due instant, from 100 timed far-future creations."""
    started = time.perf_counter()
    await post_tasks(bases, [body(FAR_FUTURE)] * 100, CONNECTIONS)
    return count * (time.perf_counter() - started) / 100 * 1.5 + 3.0


def _verify(
    scenario: str, runs: dict[str, list[dict[str, Any]]], ids: list[str], note: str
) -> tuple[list[Row], list[dict[str, Any]]]:
    """Exactly-once counts and per-node counts; returns the rows and the first runs."""
    missed = sum(1 for i in ids if not runs.get(i))
    duplicated = sum(max(len(runs.get(i, [])) - 1, 0) for i in ids)
    firsts = [runs[i][-1] for i in ids if runs.get(i)]  # newest first: the last is the first
    nodes: dict[str, int] = {}
    for run in firsts:
        nodes[run["node"]] = nodes.get(run["node"], 0) + 1
    split = ", ".join(f"{n}: {c}" for n, c in sorted(nodes.items()))
    log(f"  missed {missed}, dup {duplicated}, per node {split}")
    rows = [
        Row(scenario, "onair x2 (PostgreSQL)", "missed", missed, "", note, False),
        Row(scenario, "onair x2 (PostgreSQL)", "duplicated", duplicated, "", note, False),
        Row(scenario, "onair x2 (PostgreSQL)", "runs per node", split, "", note, False),
    ]
    return rows, firsts


async def precision(bases: list[str], count: int, window: float) -> list[Row]:
    scenario = f"5 two nodes: {count:,} over {window:.0f}s"
    log(f"scenario {scenario}: creating over HTTP")
    lead = await _lead(bases, count)
    instants = due_instants(after(lead), count, window)
    bodies = [body(due) for due in instants]
    ids = await post_tasks(bases, bodies, CONNECTIONS)
    await asyncio.sleep(max(0.0, (instants[-1] - datetime.now(UTC)).total_seconds()) + 2.0)
    runs = await get_runs(bases[0], ids, CONNECTIONS)
    note = "HTTP creation; runs[].lateness"
    rows, firsts = _verify(scenario, runs, ids, note)
    lateness = [r["lateness"] * 1000 for r in firsts if r["lateness"] is not None]
    return [*lateness_rows(scenario, "onair x2 (PostgreSQL)", lateness, note), *rows]


async def execution(bases: list[str], count: int) -> list[Row]:
    scenario = f"5 two nodes: execute {count:,} due now"
    log(f"scenario {scenario}: creating over HTTP")
    lead = await _lead(bases, count)
    due = after(lead)
    ids = await post_tasks(bases, [body(due)] * count, CONNECTIONS)
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    await _until_completed(bases[0], set(ids), within=600)
    runs = await get_runs(bases[0], ids, CONNECTIONS)
    note = "HTTP creation; from runs[].finished"
    rows, firsts = _verify(scenario, runs, ids, note)
    finished = [
        datetime.fromisoformat(r["finished"]).replace(tzinfo=UTC) for r in firsts if r["finished"]
    ]
    elapsed = (max(finished) - due).total_seconds() if finished else float("nan")
    rate = len(finished) / elapsed
    log(f"  {rate:,.0f} completed/s ({len(finished)} in {elapsed:.2f} s)")
    return [Row(scenario, "onair x2 (PostgreSQL)", "completed/s", rate, "/s", note), *rows]


async def _until_completed(base: str, ids: set[str], within: float) -> None:
    """Poll `GET /tasks` (one request) until every id of `ids` is completed."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < deadline:
            index = (await client.get("/tasks")).raise_for_status().json()
            if ids <= set(index["completed"]):
                return
            await asyncio.sleep(0.5)
    log(f"  warning: not all {len(ids)} tasks completed within {within:.0f} s")


async def run(options: Options) -> list[Row]:
    with temp_dir() as directory:
        async with two_nodes(directory) as bases:
            rows = await precision(bases, *((50, 2.0) if options.quick else (1_000, 10.0)))
            rows += await execution(bases, 50 if options.quick else 2_000)
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return rows

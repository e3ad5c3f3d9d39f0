"""Scenario 5: two `onair serve` nodes on one PostgreSQL database. Tasks are created over
HTTP (alternating between the nodes), then each task's runs are read back over HTTP to check
that it ran exactly once, on which node, and how late (`runs[].lateness`)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from benchmarks.common import (
    FAR_FUTURE,
    Options,
    Row,
    after,
    lateness_rows,
    log,
    percentile,
    temp_dir,
)
from benchmarks.http import _wrk, get_runs, post_tasks, server
from benchmarks.precision import due_instants
from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec
from onair.engine.registry import Registry
from onair.operations.test import Test
from onair.store.database import Store

DATABASE = "onair_bench_nodes"
PG = "postgresql://postgres@127.0.0.1:5432"
CONNECTIONS = 16


def _psql(command: str, database: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-q", "-c", command],
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


def url_of() -> str:
    return f"{PG}/{DATABASE}"


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


async def burst(url: str, bases: list[str], count: int) -> list[Row]:
    """`count` tasks due at one instant over the nodes: created over HTTP, their runs read
    from the database (reading 10,000 runs over HTTP would take longer than the burst). The
    nodes run on the defaults: until 2026-12-04 a node held at most 1,000 runs, and 5,500 of
    10,000 due at one instant had not started 3 s after it."""
    scenario = f"5 two nodes: {count:,} at once"
    log(f"scenario {scenario}: bulk-loading through Engine.add_many")
    # Creation is not what is measured (over HTTP, 10,000 take longer than any lead one
    # can calibrate on this shared machine): `add_many` from an engine that does not run,
    # whose commit tells both nodes of the instant, as any creation does.
    due = after(3.0 + count / 2_000)
    async with Store(url) as store:
        engine = Engine(store, Registry([Test()]), settings=EngineSettings())
        task = NewTask(Spec("test", {}), Spec("at", {"datetime": due.isoformat()}))
        ids = []
        for done in range(0, count, 5_000):
            added = await engine.add_many([task] * min(5_000, count - done))
            ids += [str(t.id) for t in added]
    overrun = (datetime.now(UTC) - due).total_seconds()
    if overrun > 0:
        log(f"  warning: loading ended {overrun:.2f} s after the due instant")
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 3.0)
    conn = await asyncpg.connect(url)
    try:
        # A run's `started_at` is its planned start until its end is recorded: wait for
        # the ends (and count only recorded runs).
        await recorded(conn)
        rows = await conn.fetch(
            "SELECT task_id::text AS id, node,"
            " extract(epoch FROM started_at - due_at) * 1000 AS late FROM runs"
            " WHERE outcome IS NOT NULL AND due_at = $1",
            due,
        )
    finally:
        await conn.close()
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row["id"], []).append({"node": row["node"], "late": float(row["late"])})
    note = "add_many before; runs.started_at - due_at"
    verified, firsts = _verify(scenario, runs, ids, note)
    lateness = [r["late"] for r in firsts]
    log(
        f"  p50 {percentile(lateness, 50):.1f} ms, p99 {percentile(lateness, 99):.1f} ms,"
        f" max {max(lateness, default=float('nan')):.1f} ms"
    )
    return [*lateness_rows(scenario, "onair x2 (PostgreSQL)", lateness, note), *verified]


async def recorded(conn: asyncpg.Connection, within: float = 60) -> None:
    """Wait until no run is in progress (their ends recorded), or `within` seconds pass."""
    deadline = time.monotonic() + within
    while await conn.fetchval("SELECT count(*) FROM runs WHERE outcome IS NULL"):
        if time.monotonic() > deadline:
            log(f"  warning: runs still in progress after {within:.0f} s")
            return
        await asyncio.sleep(0.2)


async def http_two_nodes(bases: list[str], duration: float, connections: int) -> Row:
    """`POST /tasks` (far-future `test` tasks) with one wrk per node at once, each with half
    the connections; requests/s summed over the nodes."""
    with temp_dir() as directory:
        rates = await asyncio.gather(
            *(_wrk(base, duration, connections // len(bases), directory) for base in bases)
        )
    log(f"  wrk on two nodes: {' + '.join(f'{r:,.0f}' for r in rates)} requests/s")
    return Row(
        "5 two nodes: HTTP POST /tasks",
        "onair serve x2 (PostgreSQL)",
        "requests/s",
        sum(rates),
        "/s",
        f"wrk -t2 -c{connections // len(bases)} per node, {duration:.0f} s, `test` op due 2099",
    )


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
            rows += await burst(url_of(), bases, 200 if options.quick else 10_000)
            if shutil.which("wrk"):
                rows.append(await http_two_nodes(bases, 3 if options.quick else 10, 32))
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    return rows

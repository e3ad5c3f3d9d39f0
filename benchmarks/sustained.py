"""Scenario 9: sustained load on PostgreSQL. Tasks are created continuously, each due 1 to 5 s
after its creation, for `--duration` seconds at each of a rising series of rates, on several
nodes sharing one database; onair (through its Python API in each node, and over HTTP to
`onair serve` nodes) and the peers (Procrastinate, APScheduler 4) get the same workload.

Per rate and system: start lateness p50/p99/max, missed and duplicated runs, runs per node,
the rate achieved by the creators, the CPU the database's backends used (from `/proc` of the
backends of the database, found in `pg_stat_activity`) and the most connections seen. The
figure to report is the highest rate at which p99 stays at or under 10 ms with nothing missed
or duplicated ("sustained").

Each rate runs on a fresh database, so that a later rate does not inherit an earlier one's
completed rows. The peers' settings are printed with their versions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.common import ROOT, Options, Row, log, percentile, temp_dir
from benchmarks.http import server
from benchmarks.nodes import recorded

DATABASE = "onair_bench_sustained"
PG = "postgresql://postgres@127.0.0.1:5432"
APSCHEDULER4 = ROOT / ".venv" / "peers" / "apscheduler4"
"""APScheduler 4 shares its package name with the APScheduler 3 of the `bench` extra, so
`make bench` installs it apart (`pip install --target`), for its nodes' processes only."""
BOUNDS_MS = (10.0, 50.0)
"""The lateness bounds of the figures reported: the highest rate whose p99 is at or under
each. 10 ms is the target; 50 ms says where each system stands when the machine is loaded
by other work (on a shared 2-core machine nothing holds 10 ms for long)."""

SETTINGS: dict[str, dict[str, Any]] = {
    "onair": {"pool_size": 10, "producers": 64},
    # The worker's fetch loop is woken by NOTIFY when a job is deferred, which is seconds
    # before a scheduled job is due; what starts it on time is the polling interval, so it
    # is the setting that decides the lateness (default 5 s). 10 ms polls 100 times a second
    # per worker, which the database does not notice at this load; concurrency 50 lets one
    # worker hold enough no-op jobs at once.
    "procrastinate": {
        "pool_size": 10,
        "concurrency": 50,
        "fetch_job_polling_interval": 0.01,
        "producers": 64,
    },
    # A scheduler of APScheduler 4 turns due schedules into jobs (100 per acquisition) and
    # runs up to max_concurrent_jobs at once (default 100); the asyncpg event broker wakes
    # the other schedulers on every change.
    "apscheduler4": {"pool_size": 10, "max_concurrent_jobs": 1000, "producers": 64},
}


def _psql(command: str) -> None:
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-q", "-c", command],
        check=True,
        capture_output=True,
    )


def fresh_database() -> str:
    _psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _psql(f"CREATE DATABASE {DATABASE}")
    return f"{PG}/{DATABASE}"


def version(system: str) -> str:
    if system == "apscheduler4":
        found = list(APSCHEDULER4.glob("apscheduler-*.dist-info"))
        return found[0].name.removesuffix(".dist-info").split("-")[1] if found else "not installed"
    return metadata.version(system)


@dataclass
class Result:
    system: str
    nodes: int
    rate: float
    achieved: float = 0.0
    lateness_ms: list[float] = field(default_factory=list)
    missed: int = 0
    duplicated: int = 0
    per_node: dict[str, int] = field(default_factory=dict)
    db_cpu_s: float = 0.0
    connections: int = 0
    commits: int = 0
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        """Held the loosest bound: the climb goes on to the next rate."""
        return self.held(max(BOUNDS_MS))

    def held(self, bound_ms: float) -> bool:
        return (
            bool(self.lateness_ms)
            and percentile(self.lateness_ms, 99) <= bound_ms
            and self.missed == 0
            and self.duplicated == 0
            and self.achieved >= 0.95 * self.rate
        )

    def line(self) -> str:
        p50, p99 = percentile(self.lateness_ms, 50), percentile(self.lateness_ms, 99)
        worst = max(self.lateness_ms, default=float("nan"))
        split = ", ".join(f"{n}: {c}" for n, c in sorted(self.per_node.items()))
        return (
            f"{self.system} x{self.nodes} @ {self.rate:,.0f}/s (achieved {self.achieved:,.0f}/s,"
            f" {len(self.lateness_ms) / self.duration:,.0f} runs/s):"
            f" p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms, missed {self.missed},"
            f" dup {self.duplicated}, per node {split}; database CPU {self.db_cpu_s:.1f} s"
            f" ({100 * self.db_cpu_s / max(self.duration, 1e-9):.0f}% of a core over the load),"
            f" {self.connections} connections, {self.commits:,} transactions"
        )


def tally(result: Result, created: dict[str, float], starts: Sequence[tuple[str, str, float]]):
    """Fill `result` from what was created (key -> due) and the starts (key, node, lateness
    in ms) seen on every node."""
    seen: dict[str, list[tuple[str, float]]] = {}
    for key, node, late in starts:
        seen.setdefault(key, []).append((node, late))
    result.missed = sum(1 for key in created if key not in seen)
    result.duplicated = sum(len(runs) - 1 for key, runs in seen.items() if key in created)
    for key in created:
        if runs := seen.get(key):
            node, late = min(runs, key=lambda r: r[1])
            result.lateness_ms.append(late)
            result.per_node[node] = result.per_node.get(node, 0) + 1


class DatabaseProbe:
    """CPU seconds used by the backends of `DATABASE` (utime + stime in /proc, counted from
    the first time each backend is seen), and the most connections open to it at once;
    sampled every 0.5 s from a connection of its own, left out of both."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.connections = 0
        self.commits = 0
        self._task: asyncio.Task[None] | None = None
        self._tick = os.sysconf("SC_CLK_TCK")

    async def __aenter__(self) -> DatabaseProbe:
        self._conn = await asyncpg.connect(self.url)
        await self.sample(baseline=True)
        self.commits = -await self._commits()
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.sample()
        self.commits += await self._commits()
        await self._conn.close()

    async def _commits(self) -> int:
        query = "SELECT xact_commit FROM pg_stat_database WHERE datname = $1"
        return int(await self._conn.fetchval(query, DATABASE))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            await self.sample()

    async def sample(self, baseline: bool = False) -> None:
        pids = [
            r["pid"]
            for r in await self._conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                DATABASE,
            )
        ]
        self.connections = max(self.connections, len(pids))
        for pid in pids:
            try:
                # /proc is memory, not disk: no thread needed.
                with open(f"/proc/{pid}/stat") as stat:  # noqa: ASYNC230
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks = int(fields[11]) + int(fields[12])
            self.first.setdefault(pid, ticks if baseline else 0)
            self.last[pid] = ticks

    @property
    def cpu_seconds(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last) / self._tick


# Nodes through the Python API ------------------------------------------------------------------


async def _spawn(system: str, url: str, node: str, rate: float, duration: float):
    env = dict(os.environ)
    if system == "apscheduler4":
        env["PYTHONPATH"] = os.pathsep.join([str(APSCHEDULER4), str(ROOT)])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.sustained_node",
        system,
        url,
        node,
        str(rate),
        str(duration),
        json.dumps({**SETTINGS[system], **json.loads(os.environ.get("BENCH_SETTINGS", "{}"))}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
        limit=2**30,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if line.strip() != b"ready":
        with contextlib.suppress(ProcessLookupError):  # it may have exited already
            process.kill()
        raise RuntimeError(f"{system} node {node} did not start: {line[:300]!r}")
    return process


async def python_api(system: str, nodes: int, rate: float, duration: float) -> Result:
    """`nodes` processes of `system`, each creating rate/nodes tasks per second."""
    url = fresh_database()
    if system == "procrastinate":
        await _procrastinate_schema(url)
    processes = []
    try:
        # One after the other: the first creates the schema the others find.
        for index in range(nodes):
            name = f"node-{chr(97 + index)}"
            processes.append(await _spawn(system, url, name, rate / nodes, duration))
        result = Result(system, nodes, rate, duration=duration)
        async with DatabaseProbe(url) as probe:
            for process in processes:
                assert process.stdin is not None
                process.stdin.write(b"go\n")
                await process.stdin.drain()
            outputs = await asyncio.wait_for(
                asyncio.gather(*(p.stdout.readline() for p in processes)),  # type: ignore[union-attr]
                duration + 120,
            )
        reports = [json.loads(o) for o in outputs]
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            await process.wait()
    created = {k: v for r in reports for k, v in r["created"].items()}
    starts = [(k, r["node"], (s - d) * 1000) for r in reports for k, s, d in r["starts"]]
    result.achieved = sum(r["achieved"] for r in reports)
    for r in reports:
        log(f"    {r['node']}: {r['cpu']:.1f} s of CPU")
        for name, seconds in sorted(r.get("timings", {}).items()):
            ms = [s * 1000 for s in seconds]
            log(
                f"    {r['node']} {name}: {len(ms)} transactions, p50 {percentile(ms, 50):.1f} ms,"
                f" p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms"
            )
    tally(result, created, starts)
    result.db_cpu_s, result.connections = probe.cpu_seconds, probe.connections
    result.commits = probe.commits
    return result


async def _procrastinate_schema(url: str) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


# onair serve over HTTP -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(url: str, directory: Path, nodes: int) -> AsyncIterator[list[str]]:
    async with contextlib.AsyncExitStack() as stack:
        bases = [
            await stack.enter_async_context(server(url, directory, f"node-{chr(97 + i)}"))
            for i in range(nodes)
        ]
        yield bases


PACED_POST = """
-- POST /tasks of a `test` task due 1 to 5 s from now; each connection waits `interval` ms
-- between requests, so that the connections together send about the rate asked for.
local interval = %(interval)f
math.randomseed(os.time() + %(seed)d)
request = function()
  local whole = os.time() + 2 + math.floor(math.random() * 3)
  local due = os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", whole)
    .. string.format("%%.6f", math.random()):sub(2) .. "+00:00"
  local body = '{"operation": {"type": "test", "parameters": {}}, "condition": '
    .. '{"type": "at", "parameters": {"datetime": "' .. due .. '"}}, "dependencies": {}}'
  return wrk.format("POST", "/tasks", {["Content-Type"] = "application/json"}, body)
end
delay = function() return interval end
"""


async def http(nodes: int, rate: float, duration: float, connections: int = 16) -> Result:
    """`onair serve` nodes, each loaded by its own wrk posting `test` tasks due 1 to 5 s
    ahead at its share of the rate (wrk's `delay` paces each connection). What was created
    and how its runs went is read from the database afterwards. (A Python client was the
    bottleneck here: httpx managed 70-85 requests/s over 32 connections on this machine.)"""
    url = fresh_database()
    result = Result("onair serve HTTP", nodes, rate, duration=duration)
    with temp_dir() as directory:
        async with serving(url, directory, nodes) as bases, DatabaseProbe(url) as probe:
            per_connection = rate / (nodes * connections)
            started = time.time()
            outputs = await asyncio.gather(
                *(
                    _paced_wrk(base, 1000 / per_connection, i, duration, connections, directory)
                    for i, base in enumerate(bases)
                )
            )
            elapsed = time.time() - started
            await asyncio.sleep(5 + 3.0)  # the last tasks fall due, and their ends are recorded
        conn = await asyncpg.connect(url)
        try:
            await recorded(conn)
            # Only the posted `test` tasks: a node adds its own (the daily recharge, due at
            # the next midnight) at start-up.
            tasks = await conn.fetch(
                "SELECT id::text AS id, extract(epoch FROM created_at) AS at"
                " FROM tasks WHERE operation = 'test'"
            )
            rows = await conn.fetch(
                "SELECT task_id::text AS id, node,"
                " extract(epoch FROM started_at - due_at) * 1000 AS late"
                " FROM runs WHERE outcome IS NOT NULL"
            )
        finally:
            await conn.close()
    for output in outputs:
        log("    wrk: " + " ".join(line.strip() for line in output.splitlines()[-3:]))
    created = {t["id"]: float(t["at"]) for t in tasks}
    result.achieved = len(created) / elapsed
    # wrk paces each connection by a delay between its requests, which the answer's own time
    # lengthens: the rate achieved is below the one asked for, and is the one reported.
    log(f"    asked {rate:,.0f}/s, achieved {result.achieved:,.0f}/s")
    result.rate = round(result.achieved)
    tally(result, created, [(r["id"], r["node"], float(r["late"])) for r in rows])
    result.db_cpu_s, result.connections = probe.cpu_seconds, probe.connections
    result.commits = probe.commits
    return result


async def _paced_wrk(
    base: str, interval_ms: float, seed: int, duration: float, connections: int, directory: Path
) -> str:
    script = directory / f"paced-{seed}.lua"
    script.write_text(PACED_POST % {"interval": interval_ms, "seed": seed * 7919})
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"{base}/tasks",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    return output


# The scenario ----------------------------------------------------------------------------------


def rows_of(results: list[Result], scenario: str) -> list[Row]:
    rows: list[Row] = []
    for r in results:
        name = f"{r.system} x{r.nodes} @ {r.rate:,.0f}/s"
        note = f"achieved {r.achieved:,.0f}/s; db CPU {r.db_cpu_s:.1f} s, {r.connections} conns"
        rows += [
            Row(scenario, name, "lateness p50", percentile(r.lateness_ms, 50), "ms", note, False),
            Row(scenario, name, "lateness p99", percentile(r.lateness_ms, 99), "ms", note, False),
            Row(
                scenario,
                name,
                "lateness max",
                max(r.lateness_ms, default=float("nan")),
                "ms",
                note,
                False,
            ),
            Row(scenario, name, "runs/s", len(r.lateness_ms) / r.duration, "/s", note),
            Row(scenario, name, "missed / dup", f"{r.missed} / {r.duplicated}", "", note),
            Row(
                scenario,
                name,
                "runs per node",
                ", ".join(f"{n}: {c}" for n, c in sorted(r.per_node.items())),
                "",
                note,
            ),
        ]
    return rows


def sustained_rows(results: list[Result], scenario: str) -> list[Row]:
    """Per system and node count: the highest rate that held the bound."""
    best: dict[tuple[str, int, float], float] = {}
    for r in results:
        for bound in BOUNDS_MS:
            key = (r.system, r.nodes, bound)
            best.setdefault(key, 0.0)
            if r.held(bound):
                best[key] = max(best[key], r.rate)
    return [
        Row(
            scenario,
            # onair on two nodes is the row the table's ratios are taken against.
            "onair" if (system, nodes) == ("onair", 2) else f"{system} x{nodes}",
            f"sustained (p99 <= {bound:.0f} ms)",
            rate,
            "/s",
            "highest rate measured with 0 missed, 0 duplicated",
        )
        for (system, nodes, bound), rate in best.items()
    ]


PLAN: dict[str, tuple[float, ...]] = {
    "onair": (100, 250, 500, 1_000, 2_000),
    "onair serve HTTP": (250, 500, 1_000),
    "procrastinate": (25, 50, 100, 200),
    "apscheduler4": (10, 25, 50, 100),
}
"""The rates tried per system, in tasks/s over all nodes, lowest first."""


async def climb(system: str, nodes: int, rates: Sequence[float], duration: float) -> list[Result]:
    """Each rate in turn, until one misses the bound (the next would too)."""
    results = []
    for rate in rates:
        if system == "onair serve HTTP":
            result = await http(nodes, rate, duration)
        else:
            result = await python_api(system, nodes, rate, duration)
        log("  " + result.line())
        results.append(result)
        if not result.ok:
            break
    return results


async def run(options: Options) -> list[Row]:
    duration = options.duration or (5.0 if options.quick else 60.0)
    systems = options.systems or list(PLAN)
    for system in systems:
        if system in SETTINGS:
            log(f"  {system} {version(system)}: {json.dumps(SETTINGS[system])}")
    scenario = f"9 sustained, due 1-5 s, {duration:.0f} s per rate"
    results: list[Result] = []
    failed: list[Row] = []
    for system in systems:
        for nodes in options.nodes or [2]:
            log(f"scenario {scenario}: {system} x{nodes}")
            rates = options.rates or PLAN[system]
            try:
                results += await climb(
                    system, nodes, rates[:1] if options.quick else rates, duration
                )
            except Exception as error:  # one system that cannot run loses only its own rows
                log(f"  {system} x{nodes} failed: {type(error).__name__}: {error}")
                note = f"{type(error).__name__}: {error}"[:120]
                failed.append(Row(scenario, f"{system} x{nodes}", "error", note))
    rows = [*sustained_rows(results, scenario), *rows_of(results, scenario), *failed]
    if not options.nodes and not options.systems:
        # More nodes on the same load (they share this machine's cores: the point is what
        # contention costs, not speed-up): onair x1, x2, x4 at the highest rate that x2 held.
        held = [r.rate for r in results if r.system == "onair" and r.nodes == 2 and r.ok]
        if held:
            scenario = f"9 nodes, {max(held):,.0f}/s due 1-5 s, {duration:.0f} s"
            log(f"scenario {scenario}")
            more = [await python_api("onair", n, max(held), duration) for n in (1, 2, 4)]
            for result in more:
                log("  " + result.line())
            rows += rows_of(more, scenario)
    return rows

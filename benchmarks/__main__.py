"""`python -m benchmarks [--quick] [--large] [--only NAME ...] [--profile]`.

Runs the scenarios in order, prints progress as it goes and one table at the end. A failing
scenario is reported in the table and the others still run: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import time
import traceback
from collections.abc import Awaitable, Callable

from benchmarks import (
    airing,
    backlog,
    execution,
    nodes,
    precision,
    reading,
    rules,
    scheduling,
    sustained,
)
from benchmarks.common import Options, Row, log
from benchmarks.report import table

SCENARIOS: dict[str, Callable[[Options], Awaitable[list[Row]]]] = {
    "schedule": scheduling.run,
    "precision": precision.run,
    "backlog": backlog.run,
    "execute": execution.run,
    "nodes": nodes.run,
    "reading": reading.run,
    "rules": rules.run,
    "airing": airing.run,
    "sustained": sustained.run,
}


def parse(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 2 min)")
    parser.add_argument(
        "--large", action="store_true", help="also the 1M-pending backlog (adds ~5 minutes)"
    )
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), default=[], help="repeatable"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the table: profile scenarios 1 and 4 with pyinstrument",
    )
    parser.add_argument(
        "--duration", type=float, help="sustained: seconds of load per rate (default 60)"
    )
    parser.add_argument(
        "--system",
        action="append",
        choices=sorted(sustained.PLAN),
        default=[],
        help="sustained: only this system (repeatable)",
    )
    parser.add_argument(
        "--rate", action="append", type=float, default=[], help="sustained: tasks/s (repeatable)"
    )
    parser.add_argument(
        "--nodes", action="append", type=int, default=[], help="sustained: node counts (repeatable)"
    )
    args = parser.parse_args(argv)
    return Options(
        quick=args.quick,
        large=args.large,
        only=args.only,
        profile=args.profile,
        duration=args.duration,
        systems=args.system,
        rates=args.rate,
        nodes=args.nodes,
    )


async def main(options: Options) -> list[Row]:
    rows: list[Row] = []
    for name, scenario in SCENARIOS.items():
        if options.only and name not in options.only:
            continue
        started = time.perf_counter()
        try:
            rows += await scenario(options)
        except Exception as error:
            traceback.print_exc()
            rows.append(Row(name, "onair", "error", f"{type(error).__name__}: {error}"[:120]))
        log(f"{name} done in {time.perf_counter() - started:.0f} s")
    return rows


def environment() -> str:
    """The facts a reader needs to weigh the numbers, the machine's load among them (other
    work on a 2-core machine moves every figure)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average {load}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


if __name__ == "__main__":
    options = parse()
    if options.profile:
        from benchmarks import profiling

        asyncio.run(profiling.main(options))
    else:
        started = time.perf_counter()
        log(f"start: {environment()}")
        rows = asyncio.run(main(options))
        print()
        print(f"onair benchmarks ({'quick' if options.quick else 'full'}): {environment()}")
        print("ratio vs onair = value / onair's value in the same scenario and metric")
        print(table(rows))
        print(f"\ntotal {time.perf_counter() - started:.0f} s")

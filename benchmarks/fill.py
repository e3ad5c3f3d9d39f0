"""`python -m benchmarks.fill URL COUNT`: bulk-load COUNT far-future no-op tasks into the store
at URL, in a process of its own.

A process that has just built a million rows stays slower afterwards: every Python function
in it ran 35-45% slower in the measurements of docs/performance.md (its heap, not the store).
Scenarios that measure on a large store therefore load it here and measure elsewhere.
"""

from __future__ import annotations

import asyncio
import sys

from benchmarks.common import FAR_FUTURE, ROOT, bulk_fill, onair_engine


async def fill_in_child(url: str, count: int) -> None:
    """Load `count` tasks into the store at `url` in a child process; returns when it is done."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.fill", url, str(count), cwd=ROOT
    )
    if await process.wait() != 0:
        raise RuntimeError(f"filling {url} with {count:,} tasks failed ({process.returncode})")


async def _fill(url: str, count: int) -> None:
    async with onair_engine(url, start=False) as engine:
        await bulk_fill(engine, count, FAR_FUTURE, batch=10_000)


if __name__ == "__main__":
    asyncio.run(_fill(sys.argv[1], int(sys.argv[2])))

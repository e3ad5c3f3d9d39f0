"""`python -m benchmarks --profile`: where the time of one task goes, in scenarios 1 and 4.

pyinstrument samples the main thread (`pip install pyinstrument` into the venv; it is not a
dependency of onair). Time spent waiting for aiosqlite's thread or the network shows up as
the event loop's `select`. Two views are printed: self time by library, which says what kind
of work dominates (SQL compilation, driver hops, validation...), and the heaviest functions.
The full trees are written to text files for reading at leisure.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FAR_FUTURE,
    Options,
    Recorder,
    after,
    bulk_fill,
    log,
    new_task,
    onair_engine,
    sqlite_url,
    temp_dir,
    wait_until,
)


async def schedule(count: int) -> Callable[[], Awaitable[None]]:
    """Scenario 1's loop, ready to run under the profiler."""

    async def body() -> None:
        with temp_dir() as directory:
            async with onair_engine(sqlite_url(directory)) as engine:
                for _ in range(count):
                    await engine.add(new_task(FAR_FUTURE))

    return body


async def execute(count: int) -> Callable[[], Awaitable[None]]:
    """Scenario 4's firing of `count` bulk-loaded tasks, ready to run under the profiler."""

    async def body() -> None:
        recorder = Recorder()
        with temp_dir() as directory:
            async with onair_engine(sqlite_url(directory), recorder) as engine:
                await bulk_fill(engine, count, after(0.5))
                await wait_until(lambda: recorder.count() >= count, 600)

    return body


def library(frame: Any) -> str:
    """The package a frame's code belongs to (`sqlalchemy`, `onair`, `asyncio`...)."""
    path = frame.file_path or ""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/src/onair/" in path:
        return "onair"
    if "/benchmarks/" in path:
        return "benchmarks"
    if "/lib/python3" in path:
        return "stdlib:" + path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return frame.function if frame.function.startswith("[") else "<builtin>"


def self_times(root: Any) -> tuple[Counter[str], Counter[str]]:
    """Self time summed by library and by function over the whole tree."""
    by_library: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        own = frame.total_self_time
        if own:
            by_library[library(frame)] += own
            by_function[f"{frame.function} ({frame.file_path_short}:{frame.line_no})"] += own
    return by_library, by_function


async def profile(name: str, body: Callable[[], Awaitable[None]], count: int, out: Path) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    started = time.perf_counter()
    profiler.start()
    await body()
    profiler.stop()
    elapsed = time.perf_counter() - started
    session = profiler.last_session
    assert session is not None
    path = out / f"{name}.txt"
    path.write_text(profiler.output_text(unicode=True, show_all=False))
    by_library, by_function = self_times(session.root_frame())
    total = sum(by_library.values())
    print(f"\n== {name}: {count} tasks in {elapsed:.2f} s, {elapsed / count * 1000:.2f} ms/task")
    print(f"   sampled {total:.2f} s; full tree: {path}")
    print("   self time by library:")
    for lib, seconds in by_library.most_common(12):
        print(f"     {seconds / total:6.1%}  {seconds / count * 1000:6.3f} ms/task  {lib}")
    print("   heaviest functions (self time):")
    for function, seconds in by_function.most_common(15):
        print(f"     {seconds / total:6.1%}  {function}")


async def main(options: Options) -> None:
    count = 300 if options.quick else 2_000
    out = Path(tempfile.mkdtemp(prefix="onair-profile-"))
    log(f"profiling scenario 1 ({count} Engine.add) and 4 ({count} runs); trees in {out}")
    await profile("schedule", await schedule(count), count, out)
    await profile("execute", await execute(count), count, out)

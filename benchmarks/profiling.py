"""`python -m benchmarks --profile`: where the time of one task goes, in scenarios 1 and 4.

pyinstrument samples the main thread (`pip install pyinstrument` into the venv; it is not a
dependency of onair). Time spent waiting for the network or a due instant shows up as
the event loop's `select`. Two views are printed: self time by library, which says what kind
of work dominates (SQL compilation, driver hops, validation...), and the heaviest functions.
The full trees are written to text files for reading at leisure.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

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
    utcnow,
    wait_until,
)
from benchmarks.execution import all_completed
from onair.engine.core import Engine

STATEMENTS: Counter[str] = Counter()
"""SQL statements sent to the driver during the profiled part, by their first words."""


def count_statements(engine: Engine) -> None:
    """Count every statement the engine's store sends, from now on."""

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        key = " ".join(words[:3] if words[:1] in (["INSERT"], ["DELETE"]) else words[:2])
        STATEMENTS[key] += 1

    event.listen(engine.store.sync_engine, "before_cursor_execute", before)


Body = Callable[[Callable[[], None]], Awaitable[None]]
"""A scenario that calls its argument (starting the profiler) once its set-up is done."""


def schedule(count: int) -> Body:
    """Scenario 1's loop: `count` sequential `Engine.add` with a running worker."""

    async def body(start: Callable[[], None]) -> None:
        with temp_dir() as directory:
            async with onair_engine(sqlite_url(directory)) as engine:
                count_statements(engine)
                start()
                for _ in range(count):
                    await engine.add(new_task(FAR_FUTURE))

    return body


def execute(count: int) -> Body:
    """Scenario 4: the firing of `count` bulk-loaded tasks due at one instant, from that
    instant until every run has been recorded as ended."""

    async def body(start: Callable[[], None]) -> None:
        recorder = Recorder()
        with temp_dir() as directory:
            async with onair_engine(sqlite_url(directory), recorder) as engine:
                due = after(1.0 + count / 5_000)
                await bulk_fill(engine, count, due)
                await asyncio.sleep((due - utcnow()).total_seconds())
                count_statements(engine)
                start()
                await wait_until(lambda: recorder.count() >= count, 600)
                await all_completed(engine, count, within=600)

    return body


def library(path: str | None) -> str | None:
    """The package of a source file (`sqlalchemy`, `onair`, `asyncio`...), None if unknown."""
    path = path or ""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/src/onair/" in path:
        return "onair"
    if "/benchmarks/" in path:
        return "benchmarks"
    if "/lib/python3" in path:
        return path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
    return None


def self_times(root: Any) -> tuple[Counter[str], Counter[str]]:
    """Time of the leaves of the tree (where the samples landed), summed by library and by
    function. A leaf `[self]` is its parent's own time; a built-in counts for the library
    that called it, except the event loop's `epoll` wait: that is idle time (waiting for
    the network, or for a due instant)."""
    by_library: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    stack: list[tuple[Any, Any, str]] = [(root, None, "?")]
    while stack:
        frame, parent, inherited = stack.pop()
        known = library(frame.file_path) or inherited
        if frame.children:
            stack.extend((child, frame, known) for child in frame.children)
            continue
        owner = parent if frame.function == "[self]" and parent is not None else frame
        name = owner.function
        lib = library(owner.file_path) or inherited
        if name == "poll" or name.endswith(".poll"):
            lib = "idle: epoll wait (driver thread, due instants)"
        by_library[lib] += frame.time
        by_function[f"{name} ({owner.file_path_short}:{owner.line_no}) [{lib}]"] += frame.time
    return by_library, by_function


async def profile(name: str, body: Body, count: int, out: Path) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    STATEMENTS.clear()
    await body(profiler.start)
    profiler.stop()
    session = profiler.last_session
    assert session is not None
    elapsed = session.duration
    path = out / f"{name}.txt"
    path.write_text(profiler.output_text(unicode=True, show_all=False))
    by_library, by_function = self_times(session.root_frame())
    total = sum(by_library.values())
    print(f"\n== {name}: {count} tasks in {elapsed:.2f} s, {elapsed / count * 1000:.2f} ms/task")
    print(f"   sampled {total:.2f} s; full tree: {path}")
    print("   self time by library:")
    for lib, seconds in by_library.most_common(12):
        print(f"     {seconds / total:6.1%}  {seconds / count * 1000:6.3f} ms/task  {lib}")
    print(f"   SQL statements per task: {sum(STATEMENTS.values()) / count:.1f}")
    for statement, times in STATEMENTS.most_common(10):
        print(f"     {times / count:6.2f}  {statement}")
    print("   heaviest functions (self time):")
    for function, seconds in by_function.most_common(15):
        print(f"     {seconds / total:6.1%}  {function}")


async def main(options: Options) -> None:
    count = 300 if options.quick else 2_000
    out = Path(tempfile.mkdtemp(prefix="onair-profile-"))
    log(f"profiling scenario 1 ({count} Engine.add) and 4 ({count} runs); trees in {out}")
    await profile("schedule", schedule(count), count, out)
    await profile("execute", execute(count), count, out)

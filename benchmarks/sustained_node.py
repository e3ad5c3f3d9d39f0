"""One node of the sustained-load scenario (`benchmarks/sustained.py`), in its own process:
`python -m benchmarks.sustained_node SYSTEM URL NODE RATE DURATION SETTINGS_JSON`.

The node runs the system's consumer (onair's engine, a Procrastinate worker, an APScheduler 4
scheduler) on the shared PostgreSQL database, and creates its share of the load through the
system's own Python API: RATE tasks per second for DURATION seconds, each due 1 to 5 s after
its creation. It prints `ready` once its consumer runs, waits for `go` on its standard input
(so that every node starts producing at once), and, once the last task it created is due and
a few seconds have passed, prints one JSON line: what it created (key -> due) and the starts
its consumer saw (key, wall-clock start, due), so that the parent counts missed and duplicated
runs over every node. The job function of each peer records the start the way `common.Noop`
does for onair: the wall clock at the start of the job, minus its due instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import json
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

STARTS: list[tuple[str, float, float]] = []
"""(key, wall-clock start, due) of every job this process ran."""
TIMINGS: dict[str, list[float]] = {}
"""onair's own timings (seconds of each claim turn, each recording of run ends), by name."""
DRAIN = 3.0
"""Seconds after the last due instant before the node reports (time for duplicates too)."""


def record(key: str, due: float) -> None:
    STARTS.append((key, time.time(), due))


# The peers' job functions: module level, since APScheduler 4 stores them by reference.


async def aps_noop(key: str, due: float) -> None:
    record(key, due)


def _when(due: float) -> datetime:
    return datetime.fromtimestamp(due, UTC)


Create = Callable[[float], Awaitable[str]]
"""Create one task due at `due` (epoch seconds); returns its key."""


@contextlib.asynccontextmanager
async def onair_node(url: str, node: str, settings: dict[str, Any]) -> AsyncIterator[Create]:
    from benchmarks.common import Noop, Recorder, new_task
    from onair.config import EngineSettings
    from onair.engine.core import Engine
    from onair.engine.registry import Registry
    from onair.store.database import Store

    class Recording(Recorder):
        def record(self, task_id: Any, started: float, due: float) -> None:
            STARTS.append((str(task_id), started, due))

    store = Store(url, pool_size=int(settings.get("pool_size", 10)))
    async with store:
        await store.migrate()
        engine = Engine(
            store,
            Registry([Noop(Recording())]),
            settings=EngineSettings(node=node, **settings.get("engine", {})),
        )
        engine.events.on_timing(lambda name, s: TIMINGS.setdefault(name, []).append(s))
        async with engine:

            async def create(due: float) -> str:
                return str((await engine.add(new_task(_when(due)))).id)

            yield create


@contextlib.asynccontextmanager
async def procrastinate_node(
    url: str, node: str, settings: dict[str, Any]
) -> AsyncIterator[Create]:
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=url, max_size=int(settings["pool_size"]))
    )

    @app.task(name="noop")
    async def noop(key: str, due: float) -> None:
        record(key, due)

    counter = iter(range(10**9))
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(
                name=node,
                concurrency=int(settings["concurrency"]),
                fetch_job_polling_interval=float(settings["fetch_job_polling_interval"]),
                listen_notify=True,
                delete_jobs="never",
                install_signal_handlers=False,
            )
        )
        await asyncio.sleep(0.5)  # the worker connects and listens

        async def create(due: float) -> str:
            key = f"{node}-{next(counter)}"
            await noop.configure(schedule_at=_when(due)).defer_async(key=key, due=due)
            return key

        try:
            yield create
        finally:
            worker.cancel()
            with contextlib.suppress(BaseException):
                await worker


@contextlib.asynccontextmanager
async def apscheduler4_node(url: str, node: str, settings: dict[str, Any]) -> AsyncIterator[Create]:
    from apscheduler import AsyncScheduler
    from apscheduler.datastores.sqlalchemy import SQLAlchemyDataStore
    from apscheduler.eventbrokers.asyncpg import AsyncpgEventBroker
    from apscheduler.triggers.date import DateTrigger
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(
        url.replace("postgresql://", "postgresql+asyncpg://"),
        pool_size=int(settings["pool_size"]),
    )
    store = SQLAlchemyDataStore(engine)
    broker = AsyncpgEventBroker.from_async_sqla_engine(engine)
    counter = iter(range(10**9))
    async with AsyncScheduler(
        store,
        broker,
        identity=node,
        max_concurrent_jobs=int(settings["max_concurrent_jobs"]),
    ) as scheduler:
        await scheduler.start_in_background()

        async def create(due: float) -> str:
            key = f"{node}-{next(counter)}"
            await scheduler.add_schedule(
                aps_noop,
                DateTrigger(_when(due)),
                id=key,
                args=[key, due],
                misfire_grace_time=None,
            )
            return key

        yield create
    await engine.dispose()


SYSTEMS = {
    "onair": onair_node,
    "procrastinate": procrastinate_node,
    "apscheduler4": apscheduler4_node,
}


async def produce(
    create: Create, rate: float, duration: float, concurrency: int
) -> tuple[dict[str, float], float]:
    """Create `rate` tasks per second for `duration` seconds, each due 1 to 5 s after its
    creation, at most `concurrency` creations in flight (a system that cannot keep up is
    created for more slowly: the rate achieved is returned with what was created)."""
    created: dict[str, float] = {}
    slots = asyncio.Semaphore(concurrency)
    pending: set[asyncio.Task[None]] = set()
    rng = random.Random()

    async def one() -> None:
        try:
            due = time.time() + rng.uniform(1.0, 5.0)
            created[await create(due)] = due
        finally:
            slots.release()

    started = time.time()
    sent = 0
    while (elapsed := time.time() - started) < duration:
        for _ in range(int(rate * elapsed) - sent):
            await slots.acquire()
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*pending)
    return created, sent / (time.time() - started)


async def main(argv: list[str]) -> None:
    system, url, node, rate, duration, raw = argv
    settings = json.loads(raw)
    loop = asyncio.get_running_loop()
    async with SYSTEMS[system](url, node, settings) as create:
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        profile = settings.get("profile")  # a path: cProfile this node's load, to that file
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        cpu = time.process_time()
        created, achieved = await produce(
            create, float(rate), float(duration), int(settings.get("producers", 64))
        )
        last = max(created.values(), default=time.time())
        await asyncio.sleep(max(0.0, last - time.time()) + DRAIN)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{node}")
        report = {
            "node": node,
            "created": created,
            "achieved": achieved,
            "starts": STARTS,
            "timings": TIMINGS,
            "cpu": time.process_time() - cpu,
        }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "apscheduler4":
        # anyio (under APScheduler 4) cannot tell uvloop's callbacks from no event loop: the
        # asyncpg event broker fails in every notification. It runs on asyncio's own loop.
        asyncio.run(main(sys.argv[1:]))
    else:
        import uvloop  # as `onair serve` runs (uvicorn's standard extra)

        uvloop.run(main(sys.argv[1:]))

"""APScheduler 3, the peer: an `AsyncIOScheduler` with the memory job store or with
`SQLAlchemyJobStore` on a SQLite file, driven the way onair is driven in each scenario.

Jobs of the SQLAlchemy store are pickled by reference, so the job function and its record
live at module level here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

MEMORY = "APScheduler 3 memory"
SQLITE = "APScheduler 3 SQLite"

STARTS: dict[str, list[tuple[float, float]]] = {}
"""Start times of peer jobs by job id, a list each so duplicates show."""


async def job(key: str, due: float) -> None:
    """The peer's no-op: records its wall-clock start, like `common.Noop`."""
    STARTS.setdefault(key, []).append((time.time(), due))


@contextlib.contextmanager
def scheduler(kind: str, directory: Path) -> Iterator[AsyncIOScheduler]:
    """A started AsyncIOScheduler (call inside a running loop) on the `kind` job store."""
    store: Any
    if kind == MEMORY:
        store = MemoryJobStore()
    else:
        store = SQLAlchemyJobStore(url=f"sqlite:///{directory / 'apscheduler.db'}")
    sched = AsyncIOScheduler(jobstores={"default": store}, timezone="UTC")
    sched.start()
    try:
        yield sched
    finally:
        sched.shutdown(wait=False)


def add(sched: AsyncIOScheduler, key: str, due: datetime) -> None:
    """One one-shot job; `misfire_grace_time=None` lets a late job run however late, as
    onair's default policy (no misfire grace) does."""
    sched.add_job(
        job,
        "date",
        run_date=due,
        args=[key, due.timestamp()],
        id=key,
        misfire_grace_time=None,
    )

"""The full index of task ids (`GET /tasks`), read a page at a time from one snapshot, on both
databases: every id once, in pages of the asked size, and writes meanwhile neither wait for the
read nor change what it returns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status


def far() -> Spec:
    return Spec("at", {"datetime": (datetime.now(UTC) + timedelta(days=1)).isoformat()})


async def test_pages_of_the_index(engine: Engine) -> None:
    added = [(await engine.add(NewTask(Spec("test"), far()))).id for _ in range(7)]
    cancelled = await engine.cancel(added[3])
    pending = [task_id for task_id in added if task_id != cancelled.id]
    pages = [(status, ids) async for status, ids in engine.index_pages(size=3)]
    # Statuses in order, each once at least; ids in pages of 3 at most, in no given order.
    assert [(status, len(ids)) for status, ids in pages] == [
        (Status.PENDING, 3),
        (Status.PENDING, 3),
        (Status.RUNNING, 0),
        (Status.CANCELLED, 1),
        (Status.FAILED, 0),
        (Status.COMPLETED, 0),
    ]
    assert sorted(pages[0][1] + pages[1][1]) == sorted(pending)
    assert pages[3][1] == [cancelled.id]
    assert sorted((await engine.index())[Status.PENDING]) == sorted(pending)


async def test_a_write_during_the_read_neither_waits_nor_shows(engine: Engine) -> None:
    """A task cancelled and another added between two pages: the read still gives the index
    as it was when it began, and the writes commit while it is open."""
    added = [(await engine.add(NewTask(Spec("test"), far()))).id for _ in range(4)]
    seen: dict[Status, list[UUID]] = {status: [] for status in Status}
    pages = engine.index_pages(size=2)
    status, ids = await anext(pages)
    seen[status] += ids
    async with asyncio.timeout(5):  # would wait for the read on a shared connection
        await engine.cancel(added[3])
        late = await engine.add(NewTask(Spec("test"), far()))
    async for status, ids in pages:
        seen[status] += ids
    assert sorted(seen[Status.PENDING]) == sorted(added)
    assert seen[Status.CANCELLED] == []
    index = await engine.index()
    assert sorted(index[Status.PENDING]) == sorted([*added[:3], late.id])
    assert index[Status.CANCELLED] == [added[3]]

"""How new tasks enter the store: many to a transaction.

Most of what adding a task costs is per transaction, not per task: SQLite writes the WAL at every
commit, PostgreSQL makes a round trip per statement, and SQLAlchemy's own work per statement is
larger than that of a row. So the tasks added while a transaction is being written wait and go
together in the next one: one locked read of their dependencies, one insert for all of them.
Every caller still gets its own answer, its task or its error, once its task is committed; a
caller alone pays two turns of the event loop for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from onair.engine import transitions
from onair.engine.admission import SYSTEM, Caller
from onair.engine.models import Record, Status
from onair.errors import OnairError, ResourceTaken, TaskExists, UnknownDependency
from onair.store import queries
from onair.store.database import Connection

BATCH = 500
"""Tasks written in one transaction at most."""


@dataclass(frozen=True)
class Prepared:
    """An admitted new task: its row, its dependency edges, whether the caller chose its id
    (which may then be taken already), who adds it, and whether it may share the resource it
    holds (`row["resource"]`) with tasks holding it already."""

    row: dict[str, Any]
    edges: list[dict[str, Any]]
    dependencies: dict[str, Any]
    chosen_id: bool
    caller: Caller = SYSTEM
    shared: bool = False


Outcome = Record | OnairError
"""What became of a prepared task: its row as stored, or why it was refused."""


Lock = Callable[[Connection, Iterable[str]], Awaitable[None]]
"""Holds named locks until the transaction ends (`Store.lock`)."""


async def insert(
    conn: Connection, batch: Sequence[Prepared], *, atomic: bool, lock: Lock
) -> list[Outcome]:
    """Store `batch` in the caller's transaction, in order. A task refused (unknown dependency,
    id taken, resource taken) raises at once when `atomic`, so that the caller rolls everything
    back; otherwise it is left out and its error returned in its place."""
    wanted = [i for item in batch for i in item.dependencies.values()]
    # Locked: a dependency finishing meanwhile must see these tasks among its dependents (it
    # waits for this transaction), or be seen finished by them.
    states = await queries.task_states(conn, wanted, lock=True)
    # Locked too: two nodes adding tasks for one output must not both see it free.
    resources = sorted({item.row["resource"] for item in batch if item.row["resource"]})
    if resources:
        await lock(conn, (f"resource {name}" for name in resources))
    outcomes: list[Outcome] = []
    rows: list[Record] = []
    edges: list[dict[str, Any]] = []
    for item in batch:
        try:
            row = _admitted(item, states)
            if _exclusive(item, row):
                await queries.insert_tasks(conn, rows, [])  # earlier ones of the batch count
                rows = []
                await _check_free(conn, row, item.caller)
            if item.chosen_id:
                await _insert_chosen(conn, row)
        except OnairError as error:
            if atomic:
                raise
            outcomes.append(error)
            continue
        if not item.chosen_id:
            rows.append(row)
        edges += item.edges
        states[row["id"]] = (row["status"], None)  # later tasks of the batch may depend on it
        outcomes.append(row)
    await queries.insert_tasks(conn, rows, edges)
    return outcomes


def _admitted(item: Prepared, states: dict[Any, tuple[str, Any]]) -> dict[str, Any]:
    """The row to store for `item`, given its dependencies' states: failed at once when one of
    them failed, due at its first occurrence when all have completed."""
    for name, dependency in item.dependencies.items():
        if dependency not in states:
            raise UnknownDependency(name, dependency)
    row = dict(item.row)
    ids = list(item.dependencies.values())
    error = transitions.unmet_dependency(ids, states)
    if error is not None:
        row |= {"status": Status.FAILED.value, "finished_at": row["created_at"], "error": error}
    elif all(states[i][0] == Status.COMPLETED.value for i in ids):
        row["due_at"] = row["next_at"]
    return row


def _exclusive(item: Prepared, row: Record) -> bool:
    """Whether `row` must find its resource free: it holds one, does not share it, and will run
    (a task failed at once by its dependencies holds nothing)."""
    return row["resource"] is not None and not item.shared and row["status"] == "pending"


async def _check_free(conn: Connection, row: Record, caller: Caller) -> None:
    """Raises ResourceTaken when another pending or running task holds the row's resource
    during its first run."""
    start, end = row["held_from"], row["held_until"]
    holder = await queries.holder(conn, row["resource"], start, end, exclude=row["id"])
    if holder is not None:
        visible = caller.sees(holder["owner"])
        raise ResourceTaken(row["resource"], start, end, holder, visible=visible)


async def _insert_chosen(conn: Connection, row: Record) -> None:
    try:
        await queries.insert_task(conn, row, [], may_exist=True)
    except queries.Duplicate:
        raise TaskExists(row["id"]) from None


class Intake:
    """The queue of tasks waiting for a transaction. `write` stores a batch (see `insert`);
    while it runs, newly submitted tasks gather for the next one."""

    def __init__(self, write: Callable[[list[Prepared]], Awaitable[list[Outcome]]]) -> None:
        self._write = write
        self._waiting: list[tuple[Prepared, asyncio.Future[Record]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Prepared) -> Record:
        """The row of `item` once committed.

        Raises: whatever refused it (an `OnairError`), or what failed its transaction."""
        future: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="onair-intake")
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            # One turn of the loop first: requests read in this turn reach `submit` in the
            # next, and join this batch (14 per transaction instead of 5 under 16 HTTP
            # connections).
            await asyncio.sleep(0)
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            outcomes: list[Record | Exception]
            try:
                outcomes = list(await self._write([item for item, _ in batch]))
            except Exception as error:  # the transaction failed: each of its callers hears why
                outcomes = [error] * len(batch)
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled; the task stands if it was stored
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

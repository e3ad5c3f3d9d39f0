"""The engine's face: add, read, cancel and clean tasks, and run them on this node.

Every method answers only after its change is committed. Use as `async with Engine(...)`; the
worker (claims and runs) lives as long as the block.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import chain
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from onair.config import EngineSettings
from onair.engine import intake, occurrences, pausing, transitions
from onair.engine.admission import ADMINS, SYSTEM, Admission, Caller, Role, span
from onair.engine.conditions import check_floor, first_due, parse_condition, problems_of
from onair.engine.dst import with_dst
from onair.engine.events import Event, Events
from onair.engine.models import FINISHED, NewTask, Record, Run, Status, Task
from onair.engine.policies import Policy, describe
from onair.engine.registry import Registry
from onair.engine.triggers import OneShot, following
from onair.engine.worker import Worker
from onair.errors import (
    Forbidden,
    InvalidParameters,
    Problem,
    TaskFinished,
    TaskNotFound,
)
from onair.store import queries
from onair.store.database import Connection, Store
from onair.store.schema import new_id
from onair.timeutil import Clock, SystemClock

INDEX_PAGE = 200
"""Task ids read per page of `Engine.index_pages`: about 0.3 ms of work each on SQLite, the
longest a run due meanwhile waits for the event loop (scenario 6 of docs/performance.md)."""


def default_node_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Engine:
    """Tasks on one store, and this node's share of running them."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        clock: Clock | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock or SystemClock()
        self.settings = settings or EngineSettings()
        self.rules = transitions.Rules(registry, self.settings.min_interval)
        self.node = self.settings.node or default_node_name()
        self.events = Events()
        self.worker: Worker | None = None
        self._intake = intake.Intake(self._store)

    async def __aenter__(self) -> Engine:
        self.worker = Worker(
            self.store, self.registry, self.clock, self.settings, self.node, self.events
        )
        await self.worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.worker is not None:
            worker, self.worker = self.worker, None
            await worker.__aexit__(*exc)

    # Adding ---------------------------------------------------------------------------------

    async def add(self, new: NewTask, caller: Caller = SYSTEM) -> Task:
        """Admit and store a task for `caller`; it runs when due. Tasks added at the same time
        by several callers share a transaction (`intake.py`); each call answers once its own
        task is committed.

        Raises:
            UnknownOperation, UnknownCondition, InvalidParameters: refused at the door.
            Forbidden: the operation is not for `caller`'s role, or the task is someone
                else's and `caller` is not an admin.
            ResourceTaken: its first run would overlap what another task holds.
            UnknownDependency: a dependency names no task.
            TaskExists: `new.id` is taken.
        """
        row = await self._intake.submit(await self._admit(new, caller, self.clock.now()))
        return Task.from_row(row)

    async def add_many(self, news: Sequence[NewTask], caller: Caller = SYSTEM) -> list[Task]:
        """Admit and store several tasks in one transaction: all of them or, when one is
        refused, none. A task may depend on one before it in `news` (given its `id`).

        Raises: as `add`, for the first task refused."""
        now = self.clock.now()
        batch = [await self._admit(new, caller, now) for new in news]
        outcomes = await self._store(batch, atomic=True)
        return [Task.from_row(row) for row in outcomes if not isinstance(row, Exception)]

    async def _store(
        self, batch: list[intake.Prepared], *, atomic: bool = False
    ) -> list[intake.Outcome]:
        """Insert `batch` in one transaction (`intake.insert`), then tell the worker, the
        other nodes and the event subscribers."""
        async with self.store.begin() as conn:
            outcomes = await intake.insert(conn, batch, atomic=atomic, lock=self.store.lock)
            rows = [row for row in outcomes if not isinstance(row, Exception)]
            due = min((row["due_at"] for row in rows if row["due_at"] is not None), default=None)
            created = [self._event("created", row, row["created_at"]) for row in rows]
            await self._announce(conn, due, created)
        self._announced(due, created)
        return outcomes

    async def _announce(
        self, conn: Connection, due: datetime | None, events: Sequence[Event]
    ) -> None:
        """Tell the other nodes, once `conn`'s transaction commits, of a new due instant (their
        workers look again) and of `events` (their subscribers hear them)."""
        await self.store.notify(
            conn,
            chain(
                [f"due {due.isoformat()}"] if due is not None else [],
                (f"event {event.payload()}" for event in events),
            ),
        )

    def _announced(self, due: datetime | None, events: Sequence[Event]) -> None:
        """What `_announce` tells the other nodes, told to this one once committed."""
        if self.worker is not None and due is not None:
            self.worker.due_changed(due)
        for event in events:
            self.events.publish(event)

    def _event(self, kind: str, row: Record, now: datetime, error: str | None = None) -> Event:
        return Event(
            kind, row["id"], row["operation"], now, self.node, error=error, owner=row["owner"]
        )

    async def _admit(self, new: NewTask, caller: Caller, now: datetime) -> intake.Prepared:
        """The row of a new task and its dependency edges, once its operation's declaration
        (`onair.engine.admission`) and everything else has been checked."""
        operation = self.registry.get(new.operation.type)
        if caller.role not in operation.roles:
            raise Forbidden(f"{_roles(operation.roles)} may schedule {operation.name} tasks")
        if new.owner != caller.owner and not caller.admin:
            raise Forbidden("only admins may add tasks for someone else")
        parameters = self.registry.parameters(
            new.operation.type, new.operation.parameters, "operation.parameters"
        )
        condition = parse_condition(new.condition.type, dict(new.condition.parameters))
        check_floor(condition, self.settings.min_interval)
        policy = self._policy(new.operation.type, new.policy)
        trigger = with_dst(condition.trigger(now), new.policy)
        first = first_due(condition, trigger, now)  # bounded: refused when not found
        grace = policy.misfire_grace
        if grace is not None and now - first > grace:
            raise InvalidParameters(
                [
                    Problem(
                        f"{first.isoformat()} was {describe(now - first)} ago, "
                        f"beyond the misfire grace of {describe(grace)}",
                        "condition.parameters",
                    )
                ]
            )
        series = not isinstance(trigger, OneShot)
        hold = await operation.admit(parameters, Admission(new.owner, caller, first, series))
        held_from, held_until = (
            (None, None)
            if hold is None
            else span(hold.seconds, first, lambda: following(trigger, first) if series else None)
        )
        task_id = new.id or new_id()
        values: dict[str, Any] = {
            "id": task_id,
            "operation": new.operation.type,
            "operation_parameters": dict(new.operation.parameters),
            "condition": new.condition.type,
            "condition_parameters": dict(new.condition.parameters),
            "dependencies": {name: str(i) for name, i in new.dependencies.items()},
            "status": Status.PENDING.value,
            "owner": new.owner,
            "name": new.name,
            "policy": dict(new.policy) if new.policy else None,
            "created_at": now,
            "updated_at": now,
            "next_at": first,
            "due_at": None,
            "occurrences": 0,
            "runs": 0,
            "active": 0,
            "attempt": 1,
            "started_at": None,
            "finished_at": None,
            "last_outcome": None,
            "result": None,
            "error": None,
            "resource": None if hold is None else hold.resource,
            "hold": None if hold is None else hold.seconds,
            "held_from": held_from,
            "held_until": held_until,
            "paused_at": None,
            "paused_by": None,
            "pause_note": None,
            "changes": None,
        }
        edges = [
            {"task_id": task_id, "name": name, "dependency_id": dependency}
            for name, dependency in new.dependencies.items()
        ]
        shared = policy.resource == "shared"
        return intake.Prepared(
            values, edges, dict(new.dependencies), new.id is not None, caller, shared
        )

    def _policy(self, operation: str, overrides: Mapping[str, Any] | None) -> Policy:
        try:
            return self.registry.get(operation).policy.merged(dict(overrides or {}))
        except ValidationError as error:
            raise InvalidParameters(problems_of(error, "policy")) from error

    # Reading --------------------------------------------------------------------------------

    async def get(self, task_id: UUID) -> Task:
        """Raises: TaskNotFound."""
        async with self.store.begin() as conn:
            row = await queries.get_task(conn, task_id)
        if row is None:
            raise TaskNotFound(task_id)
        return Task.from_row(row)

    async def details(self, task_id: UUID) -> tuple[Task, Run | None]:
        """A task and its latest run (None before the first), read in one transaction.

        Raises: TaskNotFound."""
        async with self.store.begin() as conn:
            row = await queries.get_task(conn, task_id)
            if row is None:
                raise TaskNotFound(task_id)
            latest, _ = await queries.list_runs(conn, task_id, limit=1, offset=0, count=False)
        return Task.from_row(row), Run.from_row(latest[0]) if latest else None

    async def index(
        self, *, owner: str | None = None, any_owner: bool = True
    ) -> dict[Status, list[UUID]]:
        """Every task id, by status (with `any_owner` false: those of `owner`, None: system
        tasks), gathered from `index_pages`."""
        index: dict[Status, list[UUID]] = {status: [] for status in Status}
        async with contextlib.aclosing(self.index_pages(owner=owner, any_owner=any_owner)) as pages:
            async for status, ids in pages:
                index[status] += ids
        return index

    async def index_pages(
        self, *, owner: str | None = None, any_owner: bool = True, size: int = INDEX_PAGE
    ) -> AsyncGenerator[tuple[Status, list[UUID]]]:
        """Every task id (as `index`), a page of at most `size` at a time, status by status
        in `Status` order, each status at least once (an empty page when it has none). The
        pages come from one snapshot (`Store.reading`), so a task that changes status
        meanwhile appears once; the work of each page is bounded, so a caller that yields
        to the event loop between pages never holds it for long, however large the store."""
        async with self.store.reading() as conn:
            for status in Status:
                empty = True
                pages = queries.index_ids(
                    conn, status.value, size, owner=owner, any_owner=any_owner
                )
                async with contextlib.aclosing(pages):
                    async for ids in pages:
                        empty = False
                        yield status, ids
                if empty:
                    yield status, []

    async def page(
        self,
        *,
        owner: str | None = None,
        any_owner: bool = True,
        status: Status | None = None,
        operation: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        """A page of tasks, newest first, and how many match."""
        async with self.store.begin() as conn:
            rows, total = await queries.list_tasks(
                conn,
                owner=owner,
                any_owner=any_owner,
                status=status.value if status else None,
                operation=operation,
                limit=limit,
                offset=offset,
            )
        return [Task.from_row(r) for r in rows], total

    async def runs(
        self, task_id: UUID, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[Run], int]:
        """A page of a task's runs, newest first, and how many it has.

        Raises: TaskNotFound."""
        async with self.store.begin() as conn:
            if await queries.get_task(conn, task_id) is None:
                raise TaskNotFound(task_id)
            rows, total = await queries.list_runs(conn, task_id, limit=limit, offset=offset)
        return [Run.from_row(r) for r in rows], total

    # Changing -------------------------------------------------------------------------------

    async def cancel(self, task_id: UUID) -> Task:
        """Cancel a pending or running task; a running one is stopped on whichever node runs it.

        Raises:
            TaskNotFound: no such task.
            TaskFinished: it has already completed, failed or been cancelled.
        """
        now = self.clock.now()
        async with self.store.begin() as conn:
            before = await transitions.cancel(conn, task_id, now)
            if before is None:
                raise TaskNotFound(task_id)
            if Status(before["status"]) in FINISHED:
                raise TaskFinished(task_id, before["status"])
            row = await queries.get_task(conn, task_id)
            assert row is not None
            cancelled = self._event("cancelled", row, now)
            await self.store.notify(conn, [f"cancel {task_id}", f"event {cancelled.payload()}"])
        if self.worker is not None:
            self.worker.interrupt(task_id)
        self.events.publish(cancelled)
        return Task.from_row(row)

    async def pause(self, task_id: UUID, by: str, note: str | None = None) -> Task:
        """Pause a pending or running task: no node claims it until it is resumed (a run in
        progress goes on). `by` and `note` say who and why; they are kept and shown.

        Raises:
            TaskNotFound: no such task.
            TaskFinished: it has completed, failed or been cancelled.
            TaskPaused: it is paused already.
        """
        now = self.clock.now()
        async with self.store.begin() as conn:
            row = await pausing.pause(conn, task_id, now, by, note)
            event = self._event("paused", row, now)
            event = replace(event, note=f"{by}: {note}" if note else by)
            await self._announce(conn, None, [event])
        self._announced(None, [event])
        return Task.from_row(row)

    async def resume(self, task_id: UUID) -> Task:
        """Resume a paused task by its policy's `resume` (`drop` the occurrences missed while
        paused, or run the `latest` of them once, now).

        Raises:
            TaskNotFound: no such task.
            TaskFinished: it has completed, failed or been cancelled.
            NotPaused: it is not paused.
        """
        now = self.clock.now()
        async with self.store.begin() as conn:
            row = await pausing.resume(conn, self.rules, task_id, now)
            event = self._event("resumed", row, now)
            await self._announce(conn, row["due_at"], [event])
        self._announced(row["due_at"], [event])
        return Task.from_row(row)

    async def skip(self, task_id: UUID, at: datetime) -> Task:
        """Skip the occurrence of a series due at `at` (aware; as its rule gives it): it does
        not run, and the rest of the series is unchanged (`onair.engine.calendar`).

        Raises: TaskNotFound, TaskFinished, InvalidParameters (`occurrences.change`)."""
        return await self._change(task_id, at, None)

    async def move(self, task_id: UUID, at: datetime, to: datetime) -> Task:
        """Move the occurrence of a series due at `at` to `to` (both aware), once.

        Raises: TaskNotFound, TaskFinished, InvalidParameters (`occurrences.change`)."""
        return await self._change(task_id, at, to)

    async def _change(self, task_id: UUID, at: datetime, to: datetime | None) -> Task:
        now = self.clock.now()
        original = at.astimezone(UTC)
        target = None if to is None else to.astimezone(UTC)
        async with self.store.begin() as conn:
            row = await occurrences.change(conn, self.rules, task_id, now, original, target)
            what = f"skipped {original.isoformat()}"
            if target is not None:
                what = f"moved {original.isoformat()} to {target.isoformat()}"
            event = replace(self._event("changed", row, now), note=what)
            await self._announce(conn, row["due_at"], [event])
        self._announced(row["due_at"], [event])
        return Task.from_row(row)

    async def clean(
        self,
        finished_before: datetime | None = None,
        batch: int = 500,
        *,
        owner: str | None = None,
        any_owner: bool = True,
    ) -> list[UUID]:
        """Delete finished tasks (finished before `finished_before`, if given; with
        `any_owner` false, only those of `owner`) that no task depends on, leaf first, until
        none is left; each batch in its own transaction."""
        removed: list[UUID] = []
        while True:
            async with self.store.begin() as conn:
                ids = await queries.removable(
                    conn, finished_before, batch, owner=owner, any_owner=any_owner
                )
                await queries.delete_tasks(conn, ids)
            if not ids:
                return removed
            removed += ids

    async def expire(self, before: datetime, batch: int = 500) -> tuple[int, int]:
        """Retention: delete tasks that finished before `before` (as `clean` does) and the runs
        of any task that ended before it, in batches. Returns (tasks, runs) deleted."""
        tasks = len(await self.clean(before, batch))
        runs = 0
        while True:
            async with self.store.begin() as conn:
                deleted = await queries.prune_runs(conn, before, batch)
            runs += deleted
            if deleted < batch:
                return tasks, runs


def _roles(roles: frozenset[Role]) -> str:
    """Who an operation is for, in words: `only admins`, `only the station and admins`."""
    if roles == ADMINS:
        return "only admins"
    named = {Role.USER: "users", Role.STATION: "the station", Role.ADMIN: "admins"}
    return "only " + " and ".join(named[role] for role in Role if role in roles)

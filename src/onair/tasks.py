"""The task service: the one front door above the engine, and the seed's words for it.

Every surface (the Tasks API, the user API, the CLI through them, the Python API, the
dashboard's cancel button) adds, reads, cancels and cleans tasks through `TaskService`, as a
`Caller` (`onair.engine.admission`): admission itself (who may schedule an operation, its
parameters, the resources it holds) is the engine's, applied on every add; what a caller may
see and cancel is decided here, once: a caller reaches the tasks it owns, an admin every task.
A task the caller may not see is reported as not found, so its existence is not revealed.

`SchedulerService` speaks the seed's vocabulary (seed 004), in the models of `onair.wire`:
tasks with a `task_type`, a `scheduled_at` in a `timezone`, a `recurrence_type`, and
`parameters` checked per type.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from onair.config import RetriesSettings
from onair.engine import simulation
from onair.engine.admission import SYSTEM, Caller, Role
from onair.engine.conditions import validate
from onair.engine.core import Engine
from onair.engine.models import NewTask, Run, Spec, Status, Task
from onair.engine.policies import Policy
from onair.engine.simulation import Simulation
from onair.errors import InvalidParameters, Problem, TaskFinished, TaskNotFound
from onair.wire import (
    PARAMETERS,
    OccurrenceChange,
    PauseRequest,
    RecurrenceType,
    RunRecord,
    ScheduledTask,
    TaskCreate,
    TaskStatus,
    TaskType,
    seed_words,
)


def who(caller: Caller, by: str | None = None) -> str:
    """The name a pause is recorded under: `by` when the caller may name someone (the
    station, an admin), else the caller's own id (a user), or its role."""
    if caller.role is Role.USER:
        return str(caller.owner)
    return by or caller.owner or caller.role.value


SIMULATED = 1000
"""Pending (and, apart, running) tasks a simulation looks at, newest first."""


class TaskService:
    """Tasks as callers may reach them, over one engine (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def add(self, new: NewTask, caller: Caller) -> Task:
        """Admit and store `new` for `caller` (`Engine.add`, which raises its refusals)."""
        return await self.engine.add(new, caller)

    async def get(self, task_id: UUID, caller: Caller) -> Task:
        """Raises: TaskNotFound (also for a task `caller` may not see)."""
        task = await self.engine.get(task_id)
        if not caller.sees(task.owner):
            raise TaskNotFound(task_id)
        return task

    async def details(self, task_id: UUID, caller: Caller) -> tuple[Task, Run | None]:
        """The task and its latest run. Raises: TaskNotFound, as `get`."""
        task, latest = await self.engine.details(task_id)
        if not caller.sees(task.owner):
            raise TaskNotFound(task_id)
        return task, latest

    async def runs(
        self, task_id: UUID, caller: Caller, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[Run], int]:
        """A page of the task's runs, newest first, and how many. Raises: TaskNotFound."""
        await self.get(task_id, caller)
        return await self.engine.runs(task_id, limit=limit, offset=offset)

    async def cancel(self, task_id: UUID, caller: Caller) -> Task:
        """Cancel a pending or running task (a running one is stopped).

        Raises:
            TaskNotFound: no such task, or one `caller` may not see (nothing changes).
            TaskFinished: it has already completed, failed or been cancelled.
        """
        await self.get(task_id, caller)
        return await self.engine.cancel(task_id)

    async def pause(self, task_id: UUID, caller: Caller, request: PauseRequest) -> Task:
        """Pause a pending or running task (`Engine.pause`), recorded under `who`.

        Raises: TaskNotFound (also for a task `caller` may not see), TaskFinished, TaskPaused.
        """
        await self.get(task_id, caller)
        return await self.engine.pause(task_id, who(caller, request.by), request.note)

    async def resume(self, task_id: UUID, caller: Caller) -> Task:
        """Resume a paused task by its policy (`Engine.resume`).

        Raises: TaskNotFound (also for a task `caller` may not see), TaskFinished, NotPaused.
        """
        await self.get(task_id, caller)
        return await self.engine.resume(task_id)

    async def change(
        self, task_id: UUID, caller: Caller, at: datetime, to: datetime | None
    ) -> Task:
        """Skip (`to` None) or move one occurrence of a series (`Engine.skip`, `Engine.move`).

        Raises: TaskNotFound (also for a task `caller` may not see), TaskFinished,
            InvalidParameters (keyed `at` or `to`)."""
        await self.get(task_id, caller)
        if to is None:
            return await self.engine.skip(task_id, at)
        return await self.engine.move(task_id, at, to)

    async def simulate(self, caller: Caller, start: datetime, end: datetime) -> Simulation:
        """Every run the caller's tasks (an admin's: every task) would have in `[start, end)`,
        with the policies applied, and what would conflict (`onair.engine.simulation`).
        Looks at the `SIMULATED` newest pending and running tasks (`truncated` says when
        there were more)."""
        tasks: list[Task] = []
        more = False
        for status in (Status.RUNNING, Status.PENDING):
            page, total = await self.page(
                caller, any_owner=caller.admin, status=status, limit=SIMULATED
            )
            tasks += page
            more = more or total > len(page)
        rules = self.engine.rules

        def policy(task: Task) -> Policy:
            return rules.policy({"operation": task.operation.type, "policy": task.policy})

        now = self.engine.clock.now()
        # Up to seconds for many frequent series: off the event loop.
        found = await asyncio.to_thread(simulation.simulate, tasks, start, end, now, policy)
        return replace(found, truncated=found.truncated or more)

    async def clean(self, caller: Caller, finished_before: datetime | None) -> list[UUID]:
        """Remove finished tasks of the caller's (an admin's: anyone's) that no task depends
        on, finished before `finished_before` if given."""
        return await self.engine.clean(finished_before, **_scope(caller))

    def index_pages(self, caller: Caller) -> AsyncGenerator[tuple[Status, list[UUID]]]:
        """The ids of the caller's tasks (an admin's: every task), by status, a page at a
        time (`Engine.index_pages`)."""
        return self.engine.index_pages(**_scope(caller))

    async def page(
        self,
        caller: Caller,
        *,
        owner: str | None = None,
        any_owner: bool = False,
        status: Status | None = None,
        operation: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Task], int]:
        """A page of tasks, newest first, and how many match: the caller's own; an admin may
        ask for those of `owner` (None: system tasks) or of anyone (`any_owner`)."""
        if not caller.admin:
            owner, any_owner = caller.owner, False
        return await self.engine.page(
            owner=owner,
            any_owner=any_owner,
            status=status,
            operation=operation,
            limit=limit,
            offset=offset,
        )


def _scope(caller: Caller) -> dict[str, Any]:
    """The engine's owner filter for what `caller` may reach."""
    return {"any_owner": True} if caller.admin else {"owner": caller.owner, "any_owner": False}


class SchedulerService(TaskService):
    """The seed's calls (seed 004), over the task service. The HTTP surface's calls take the
    caller; the Python calls are trusted (an in-process caller may schedule any registered
    type for anyone) and answer None or False where the HTTP ones raise. `retries` bounds the
    retry policy a user (not an admin) may ask for."""

    def __init__(self, engine: Engine, retries: RetriesSettings | None = None) -> None:
        super().__init__(engine)
        self.retries = retries or RetriesSettings()

    # The user API's calls (they raise) ------------------------------------------------------

    async def create(self, request: TaskCreate, caller: Caller) -> ScheduledTask:
        """Add the task for `caller` (its owner is the caller's: None for a system task).

        Raises:
            Forbidden: the caller's role may not schedule the type (credit_recharge: admins).
            InvalidParameters: wrong parameters for the type (keyed `parameters.<field>`), a
                type this server cannot run (keyed `task_type`), or a schedule the engine
                refuses (keyed by the request's field); a play task's sound or playlist that
                is not the owner's (keyed `parameters.sound_id` / `parameters.playlist_id`).
            ResourceTaken: a play task's run would overlap another's on its output (409),
                unless `allow_overlap`.
            InvalidParameters: a user's retry policy beyond the node's `retries` bounds
                (keyed `policy.retry.attempts` / `policy.retry.backoff`).
        """
        task_type = request.task_type
        validate(PARAMETERS[task_type], request.parameters, "parameters")
        if not caller.admin:
            request.check_retries(self.retries)
        if task_type.value not in self.engine.registry:
            message = f"task type {task_type.value} is not available on this server"
            raise InvalidParameters([Problem(message, "task_type")])
        new = NewTask(
            operation=Spec(task_type.value, request.parameters),
            condition=request.condition(),
            owner=caller.owner,
            name=request.name,
            policy=request.overrides(),
        )
        with seed_words():
            task = await self.add(new, caller)
        return ScheduledTask.of(task)

    async def reschedule(
        self, task_id: UUID, caller: Caller, request: OccurrenceChange, *, move: bool
    ) -> ScheduledTask:
        """Skip or move one occurrence; naive instants are wall time in the task's zone.

        Raises: TaskNotFound, TaskFinished, InvalidParameters (keyed `at` or `to`)."""
        if move and request.to is None:
            raise InvalidParameters([Problem("to is required to move an occurrence", "to")])
        if not move and request.to is not None:
            raise InvalidParameters([Problem("a skip has no `to`: use move", "to")])
        task = await self.get(task_id, caller)
        zone = str(task.condition.parameters.get("timezone") or "UTC")
        at, to = request.instants(zone)
        return ScheduledTask.of(await self.change(task_id, caller, at, to))

    async def find(self, task_id: UUID, caller: Caller) -> ScheduledTask:
        """Raises: TaskNotFound (also for a task `caller` may not see)."""
        return ScheduledTask.of(await self.get(task_id, caller))

    async def history(
        self, task_id: UUID, caller: Caller, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[RunRecord], int]:
        """`runs`, answered in the seed's shape. Raises: TaskNotFound."""
        runs, total = await self.runs(task_id, caller, limit=limit, offset=offset)
        return [RunRecord.of(r) for r in runs], total

    async def withdraw(self, task_id: UUID, caller: Caller) -> ScheduledTask:
        """`cancel`, answered in the seed's shape. Raises: TaskNotFound, TaskFinished."""
        return ScheduledTask.of(await self.cancel(task_id, caller))

    async def scheduled(
        self,
        caller: Caller,
        *,
        owner: str | None = None,
        any_owner: bool = False,
        status: Status | None = None,
        task_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ScheduledTask], int]:
        """`page`, answered in the seed's shape (`task_type` is the operation)."""
        tasks, total = await self.page(
            caller,
            owner=owner,
            any_owner=any_owner,
            status=status,
            operation=task_type,
            limit=limit,
            offset=offset,
        )
        return [ScheduledTask.of(t) for t in tasks], total

    # The seed's Python calls ----------------------------------------------------------------

    async def create_task(
        self,
        name: str,
        task_type: TaskType | str,
        scheduled_at: datetime,
        timezone: str = "UTC",
        parameters: Mapping[str, Any] | None = None,
        user_id: str | UUID | None = None,
        recurrence_type: RecurrenceType | str = RecurrenceType.NONE,
        recurrence_count: int | None = None,
        cron_expression: str | None = None,
        allow_overlap: bool = False,
        policy: Mapping[str, Any] | None = None,
    ) -> ScheduledTask:
        """Add a task for `user_id` (None: a system task). The Python API is trusted: any
        registered type may be scheduled for anyone, with any retry `policy`
        (`{"retry": {"attempts": 3, "backoff": "PT30S"}}`).

        Times: an aware `scheduled_at` is taken as is; a **naive** one is wall time in
        `timezone`, so the seed's `datetime.utcnow() + timedelta(hours=2)` with
        `timezone="America/New_York"` lands 7 hours from now in winter. Pass aware datetimes
        (`datetime.now(UTC) + ...`). The answer's `scheduled_at` is the aware UTC instant.

        Raises:
            InvalidParameters: a wrong field, keyed by the argument's name.
        """
        request = validate(
            TaskCreate,
            {
                "name": name,
                "task_type": task_type,
                "scheduled_at": scheduled_at,
                "timezone": timezone,
                "parameters": dict(parameters or {}),
                "recurrence_type": recurrence_type,
                "recurrence_count": recurrence_count,
                "cron_expression": cron_expression,
                "allow_overlap": allow_overlap,
                "policy": None if policy is None else dict(policy),
            },
            "",
        )
        owner = None if user_id is None else str(user_id)
        return await self.create(request, Caller(owner, SYSTEM.role))

    async def get_task(self, task_id: UUID | str) -> ScheduledTask | None:
        """The task, or None when there is no such task."""
        try:
            return await self.find(UUID(str(task_id)), SYSTEM)
        except TaskNotFound:
            return None

    async def get_task_runs(
        self, task_id: UUID | str, limit: int = 50, offset: int = 0
    ) -> list[RunRecord]:
        """The task's runs, newest first (empty when there is no such task)."""
        try:
            runs, _ = await self.history(UUID(str(task_id)), SYSTEM, limit=limit, offset=offset)
        except TaskNotFound:
            return []
        return runs

    async def cancel_task(self, task_id: UUID | str) -> bool:
        """Cancel a pending or running task. False when there is no such task or it has
        already finished."""
        try:
            await self.cancel(UUID(str(task_id)), SYSTEM)
        except (TaskNotFound, TaskFinished):
            return False
        return True

    async def pause_task(
        self, task_id: UUID | str, note: str | None = None, by: str = "python"
    ) -> ScheduledTask | None:
        """Pause a pending or running task with who and why (`Engine.pause`); None when
        there is no such task.

        Raises: TaskFinished, TaskPaused."""
        try:
            task = await self.pause(UUID(str(task_id)), SYSTEM, PauseRequest(note=note, by=by))
        except TaskNotFound:
            return None
        return ScheduledTask.of(task)

    async def resume_task(self, task_id: UUID | str) -> ScheduledTask | None:
        """Resume a paused task by its policy (`Engine.resume`); None when there is no such
        task.

        Raises: TaskFinished, NotPaused."""
        try:
            return ScheduledTask.of(await self.resume(UUID(str(task_id)), SYSTEM))
        except TaskNotFound:
            return None

    async def get_user_tasks(
        self,
        user_id: str | UUID,
        status: TaskStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ScheduledTask]:
        """A user's tasks, newest first."""
        tasks, _ = await self.scheduled(
            SYSTEM,
            owner=str(user_id),
            status=None if status is None else TaskStatus(status),
            limit=limit,
            offset=offset,
        )
        return tasks

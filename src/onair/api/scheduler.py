"""`/api/v1/scheduler`: users' own tasks, and admins' system tasks and view of every task
(seed 004). A user reaches only their own tasks: another's id answers 404 and changes nothing.
Admins reach any task by id."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from onair.api.deps import AdminUser, CurrentUser, Limit, Offset, ServiceDep, as_caller
from onair.wire import (
    OccurrenceChange,
    PauseRequest,
    RunRecord,
    ScheduledTask,
    TaskCreate,
    TaskStatus,
)

router = APIRouter(prefix="/scheduler", tags=["scheduler"])


class TaskPage(BaseModel):
    tasks: list[ScheduledTask]
    total: int
    limit: int
    offset: int


class RunPage(BaseModel):
    runs: list[RunRecord]
    total: int
    limit: int
    offset: int


@router.post("/tasks", status_code=201)
async def create_task(
    request: TaskCreate, user: CurrentUser, scheduler: ServiceDep
) -> ScheduledTask:
    """Schedule a task of the caller's. `credit_recharge` is for admins only (403)."""
    return await scheduler.create(request, as_caller(user))


@router.get("/tasks")
async def list_tasks(
    user: CurrentUser,
    scheduler: ServiceDep,
    status: TaskStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TaskPage:
    """The caller's tasks, newest first, with how many match."""
    tasks, total = await scheduler.scheduled(
        as_caller(user), owner=user.user_id, status=status, limit=limit, offset=offset
    )
    return TaskPage(tasks=tasks, total=total, limit=limit, offset=offset)


@router.get("/tasks/{task_id}")
async def get_task(task_id: UUID, user: CurrentUser, scheduler: ServiceDep) -> ScheduledTask:
    return await scheduler.find(task_id, as_caller(user))


@router.get("/tasks/{task_id}/runs")
async def task_runs(
    task_id: UUID,
    user: CurrentUser,
    scheduler: ServiceDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunPage:
    """The task's runs, newest first: when each was due and started, how late, how it ended,
    its result or error, and which attempt it was."""
    runs, total = await scheduler.history(task_id, as_caller(user), limit=limit, offset=offset)
    return RunPage(runs=runs, total=total, limit=limit, offset=offset)


@router.delete("/tasks/{task_id}")
async def cancel_task(task_id: UUID, user: CurrentUser, scheduler: ServiceDep) -> ScheduledTask:
    """Cancel a pending or running task (a running one is stopped); 409 once it has finished."""
    return await scheduler.withdraw(task_id, as_caller(user))


@router.post("/tasks/{task_id}/pause")
async def pause_task(
    task_id: UUID, request: PauseRequest, user: CurrentUser, scheduler: ServiceDep
) -> ScheduledTask:
    """Pause a task (a run in progress goes on) with a note; a user's pause is recorded under
    their id. 409 once it has finished or while it is paused already."""
    return ScheduledTask.of(await scheduler.pause(task_id, as_caller(user), request))


@router.post("/tasks/{task_id}/resume")
async def resume_task(task_id: UUID, user: CurrentUser, scheduler: ServiceDep) -> ScheduledTask:
    """Resume a paused task; the occurrences missed while paused are dropped, or the latest
    runs once (the task's `policy.resume`). 409 unless it is paused."""
    return ScheduledTask.of(await scheduler.resume(task_id, as_caller(user)))


@router.post("/tasks/{task_id}/skip")
async def skip_occurrence(
    task_id: UUID, request: OccurrenceChange, user: CurrentUser, scheduler: ServiceDep
) -> ScheduledTask:
    """Skip one occurrence of a series (`at`, as its rule gives it; naive: wall time in the
    task's zone); the rest of the series is unchanged. 422 naming `at` when it is not one."""
    return await scheduler.reschedule(task_id, as_caller(user), request, move=False)


@router.post("/tasks/{task_id}/move")
async def move_occurrence(
    task_id: UUID, request: OccurrenceChange, user: CurrentUser, scheduler: ServiceDep
) -> ScheduledTask:
    """Move one occurrence of a series from `at` to `to` (naive: wall time in the task's
    zone); the rest of the series is unchanged."""
    return await scheduler.reschedule(task_id, as_caller(user), request, move=True)


@router.post("/admin/system-tasks", status_code=201)
async def create_system_task(
    request: TaskCreate, admin: AdminUser, scheduler: ServiceDep
) -> ScheduledTask:
    """Schedule a system task (no user). The node already keeps "Daily Credit Recharge" (see
    docs/auth.md); creating another recharge adds a second one."""
    return await scheduler.create(request, as_caller(admin, system=True))


@router.get("/admin/tasks")
async def list_all_tasks(
    admin: AdminUser,
    scheduler: ServiceDep,
    status: TaskStatus | None = None,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
    task_type: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TaskPage:
    """Every task (or those of `user_id`), newest first, with how many match."""
    tasks, total = await scheduler.scheduled(
        as_caller(admin),
        owner=user_id,
        any_owner=user_id is None,
        status=status,
        task_type=task_type,
        limit=limit,
        offset=offset,
    )
    return TaskPage(tasks=tasks, total=total, limit=limit, offset=offset)

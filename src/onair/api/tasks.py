"""The broadcast scheduler's Tasks API and `/ping`, as the reference serves them (contract §1.3).

Every route acts for the request's caller (`onair.api.deps.caller_of`) through the task service:
the station without a token on the open Tasks API, a token's admin or user otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.convertors import Convertor, register_url_convertor

from onair.api.deps import Limit, Offset, caller_of, service_of
from onair.api.models import (
    CancelledTask,
    CleaningResult,
    CleanRequest,
    CompletedTask,
    FailedTask,
    GenericTask,
    PendingTask,
    RunModel,
    RunningTask,
    RunPage,
    ScheduleRequest,
    TaskIndex,
    TaskModel,
    by_status,
    generic,
)
from onair.api.routing import TasksRoute
from onair.engine.cleaning import parse_strategy
from onair.engine.conditions import problems_of
from onair.engine.models import NewTask, Spec, Status
from onair.errors import InvalidParameters, Problem, TaskNotFound
from onair.wire import OccurrenceChange, PauseRequest


class AnyUUIDConvertor(Convertor[str]):
    """A UUID with or without hyphens, as the reference accepts; anything else is no route."""

    regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def convert(self, value: str) -> str:
        return str(uuid.UUID(value))

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anyuuid", AnyUUIDConvertor())


router = APIRouter(route_class=TasksRoute)
TaskId = Annotated[UUID, "a task id; hex with or without hyphens"]


@router.get("/ping", status_code=204, operation_id="PingPing", tags=["ping"])
async def ping() -> Response:
    """204 while the service is up."""
    return Response(status_code=204, headers={"cache-control": "no-store"})


@router.head("/ping", status_code=204, operation_id="PingHeadping", tags=["ping"])
async def head_ping() -> Response:
    return Response(status_code=204, headers={"cache-control": "no-store"})


@router.get("/tasks", operation_id="TasksList", tags=["tasks"], response_model=TaskIndex)
async def list_tasks(request: Request) -> Response:
    """Every task id the caller may see, by status."""
    pages = service_of(request).index_pages(await caller_of(request))
    return StreamingResponse(_index_json(pages), media_type="application/json")


async def _index_json(pages: AsyncGenerator[tuple[Status, list[UUID]]]) -> AsyncIterator[bytes]:
    """The `TaskIndex` of `pages`, written a page at a time: with 100k tasks the whole index
    is 4 MB of JSON, which built at once held the event loop for 0.4 s and made the runs due
    meanwhile late by as much. Between two pages the loop serves others."""
    async with contextlib.aclosing(pages):
        current: Status | None = None
        separator = b""
        yield b"{"
        async for status, ids in pages:
            if status is not current:
                opening = b'"' + status.value.encode() + b'":['
                yield opening if current is None else b"]," + opening
                current, separator = status, b""
            if ids:
                yield separator + orjson.dumps(ids, default=str)[1:-1]  # asyncpg: its own UUID
                separator = b","
            await asyncio.sleep(0)
        yield b"]}"


@router.post("/tasks", status_code=201, operation_id="TasksSchedule", tags=["tasks"])
async def schedule(body: ScheduleRequest, request: Request) -> PendingTask:
    """Add a task. Its parameters, condition and dependencies are checked before it is stored."""
    caller = await caller_of(request)
    task = await service_of(request).add(
        NewTask(
            operation=Spec(body.operation.type, body.operation.parameters),
            condition=Spec(body.condition.type, body.condition.parameters),
            dependencies=body.dependencies,
            owner=caller.owner,
            policy=body.policy,
        ),
        caller,
    )
    # Answered as pending even when a dependency had already failed and so has the task:
    # that is how it was added, and GET shows what became of it.
    return PendingTask(task=TaskModel.of(task), scheduled=task.created_at)


@router.post("/tasks/clean", status_code=200, operation_id="TasksCleanClean", tags=["tasks"])
async def clean(body: CleanRequest, request: Request) -> CleaningResult:
    """Remove finished tasks the caller may see that no task depends on, as the strategy
    selects."""
    caller = await caller_of(request)
    strategy = parse_strategy(body.strategy.type, body.strategy.parameters)
    service = service_of(request)
    removed = await service.clean(caller, strategy.cutoff(service.engine.clock.now()))
    return CleaningResult(removed=removed)


@router.get("/tasks/{id:anyuuid}", operation_id="TasksIdGet", tags=["tasks"])
async def get_task(id: TaskId, request: Request) -> GenericTask:
    """The task, its status, its next due instant and its latest run (with its lateness)."""
    return generic(*await service_of(request).details(id, await caller_of(request)))


@router.delete("/tasks/{id:anyuuid}", operation_id="TasksIdCancel", tags=["tasks"])
async def cancel(id: TaskId, request: Request) -> CancelledTask:
    """Cancel a pending or running task (a running one is stopped). 409 once it has finished."""
    task = await service_of(request).cancel(id, await caller_of(request))
    model = by_status(task)
    assert isinstance(model, CancelledTask)
    return model


@router.post("/tasks/{id:anyuuid}/pause", operation_id="TasksIdPause", tags=["tasks"])
async def pause(id: TaskId, request: Request) -> GenericTask:
    """onair: pause a pending or running task (a run in progress goes on); nothing runs until
    it is resumed. The body, optional, is `{"note": why, "by": who}` (default: the caller).
    409 once it has finished or while it is paused already."""
    caller = await caller_of(request)
    body = _body(PauseRequest, await request.body() or b"{}")
    return generic(await service_of(request).pause(id, caller, body))


M = TypeVar("M", bound=BaseModel)


def _body(model: type[M], raw: bytes) -> M:
    """A route's body beside its path's id (the fast JSON path takes the body alone).

    Raises: InvalidParameters, naming the field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise InvalidParameters(problems_of(error)) from error


@router.post("/tasks/{id:anyuuid}/skip", operation_id="TasksIdSkip", tags=["tasks"])
async def skip(id: TaskId, request: Request) -> GenericTask:
    """onair: skip one occurrence of a series, `{"at": instant}` (as its rule gives it; naive:
    UTC); the rest of the series is unchanged. 400 naming `at` when it is not one."""
    caller = await caller_of(request)
    body = _body(OccurrenceChange, await request.body())
    if body.to is not None:
        raise InvalidParameters([Problem("a skip has no `to`: use /move", "to")])
    at, _ = body.instants("UTC")
    return generic(await service_of(request).change(id, caller, at, None))


@router.post("/tasks/{id:anyuuid}/move", operation_id="TasksIdMove", tags=["tasks"])
async def move(id: TaskId, request: Request) -> GenericTask:
    """onair: move one occurrence of a series, `{"at": instant, "to": instant}` (naive: UTC);
    the rest of the series is unchanged."""
    caller = await caller_of(request)
    body = _body(OccurrenceChange, await request.body())
    at, to = body.instants("UTC")
    if to is None:
        raise InvalidParameters([Problem("to is required to move an occurrence", "to")])
    return generic(await service_of(request).change(id, caller, at, to))


@router.post("/tasks/{id:anyuuid}/resume", operation_id="TasksIdResume", tags=["tasks"])
async def resume(id: TaskId, request: Request) -> GenericTask:
    """onair: resume a paused task; its policy's `resume` drops the occurrences missed while
    paused (default) or runs the latest of them once. 409 unless it is paused."""
    task = await service_of(request).resume(id, await caller_of(request))
    return generic(task)


@router.get("/tasks/{id:anyuuid}/runs", operation_id="TasksIdRuns", tags=["tasks"])
async def runs(
    id: TaskId,
    request: Request,
    limit: Limit = 50,
    offset: Offset = 0,
) -> RunPage:
    """onair: the task's runs, newest first, with each one's lateness."""
    caller = await caller_of(request)
    page, count = await service_of(request).runs(id, caller, limit=limit, offset=offset)
    return RunPage(runs=[RunModel.of(r) for r in page], count=count, limit=limit, offset=offset)


def _by_status_route(status: Status, model: type[BaseModel]) -> None:
    async def get(id: TaskId, request: Request) -> Any:
        task = await service_of(request).get(id, await caller_of(request))
        if task.status is not status:
            raise TaskNotFound(id)
        return by_status(task)

    name = status.value.capitalize()
    router.add_api_route(
        f"/tasks/{status.value}/{{id:anyuuid}}",
        get,
        methods=["GET"],
        response_model=model,
        operation_id=f"Tasks{name}IdGet{name}",
        tags=["tasks"],
        summary=f"Get a {status.value} task",
    )


for _status, _model in (
    (Status.PENDING, PendingTask),
    (Status.RUNNING, RunningTask),
    (Status.CANCELLED, CancelledTask),
    (Status.FAILED, FailedTask),
    (Status.COMPLETED, CompletedTask),
):
    _by_status_route(_status, _model)

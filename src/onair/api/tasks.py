"""The broadcast scheduler's Tasks API and `/ping`, as the reference serves them (contract §1.3)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.convertors import Convertor, register_url_convertor

from onair.api.deps import engine_of
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
from onair.api.users import protect_tasks_api
from onair.engine.cleaning import parse_strategy
from onair.engine.models import NewTask, Spec, Status
from onair.errors import TaskNotFound


class AnyUUIDConvertor(Convertor[str]):
    """A UUID with or without hyphens, as the reference accepts; anything else is no route."""

    regex = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

    def convert(self, value: str) -> str:
        return str(uuid.UUID(value))

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anyuuid", AnyUUIDConvertor())


class TasksRoute(APIRoute):
    """A route of the Tasks API. It requires an admin token when `auth.protect_tasks_api` is
    on (`protect_tasks_api`); the check runs here rather than as a dependency, which FastAPI
    would solve on every request, protection on or off (6% of a `POST /tasks`).

    A route with a body takes that body (one model) and the `Request`, and returns a model.
    It reads the body as JSON whatever its content type says, as the reference does (so
    `curl -d '{...}'` without a header works), validating it straight from its bytes, and
    writes the returned model without validating it again. FastAPI's own handler would parse
    the JSON, validate the result, solve the (empty) dependencies, validate the returned model
    again and serialize it, with bookkeeping at each step: 30% of a `POST /tasks`. Errors are
    FastAPI's `RequestValidationError`, located under `body`, answered as any other."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler() if self.body_field is None else self._json_body()

        async def tasks_api(request: Request) -> Response:
            protect_tasks_api(request)
            return await handler(request)

        return tasks_api

    def _json_body(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        others = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.dependencies,
        )
        annotation = self.body_field.field_info.annotation if self.body_field else None
        request_name = dependant.request_param_name
        if any(others) or len(dependant.body_params) != 1 or annotation is None:
            raise TypeError(f"{self.path}: a route with a body takes only it and the Request")
        if request_name is None or self.response_model is None:
            raise TypeError(f"{self.path}: a route with a body takes the Request, returns a model")
        body_name, body = dependant.body_params[0].name, TypeAdapter(annotation)
        answer = TypeAdapter(self.response_model)
        endpoint, status = self.endpoint, self.status_code or 200

        async def json_body(request: Request) -> Response:
            raw = await request.body()
            if not raw:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                raise RequestValidationError([missing | {"input": None}])
            try:
                value = body.validate_json(raw)
            except ValidationError as error:
                errors = error.errors(include_url=False)
                raise RequestValidationError(
                    [e | {"loc": ("body", *e["loc"])} for e in errors], body=raw
                ) from None
            result = await endpoint(**{body_name: value, request_name: request})
            content = answer.dump_json(result, by_alias=True)  # as FastAPI writes models
            return Response(content, status, media_type="application/json")

        return json_body


router = APIRouter(route_class=TasksRoute)
TaskId = Annotated[UUID, "a task id; hex with or without hyphens"]


@router.get("/ping", status_code=204, operation_id="PingPing", tags=["ping"])
async def ping() -> Response:
    """204 while the service is up."""
    return Response(status_code=204, headers={"cache-control": "no-store"})


@router.head("/ping", status_code=204, operation_id="PingHeadping", tags=["ping"])
async def head_ping() -> Response:
    return Response(status_code=204, headers={"cache-control": "no-store"})


@router.get("/tasks", operation_id="TasksList", tags=["tasks"])
async def list_tasks(request: Request) -> TaskIndex:
    """Every task id, by status."""
    index = await engine_of(request).index()
    return TaskIndex(**{status.value: ids for status, ids in index.items()})


@router.post("/tasks", status_code=201, operation_id="TasksSchedule", tags=["tasks"])
async def schedule(body: ScheduleRequest, request: Request) -> PendingTask:
    """Add a task. Its parameters, condition and dependencies are checked before it is stored."""
    task = await engine_of(request).add(
        NewTask(
            operation=Spec(body.operation.type, body.operation.parameters),
            condition=Spec(body.condition.type, body.condition.parameters),
            dependencies=body.dependencies,
            policy=body.policy,
        )
    )
    # Answered as pending even when a dependency had already failed and so has the task:
    # that is how it was added, and GET shows what became of it.
    return PendingTask(task=TaskModel.of(task), scheduled=task.created_at)


@router.post("/tasks/clean", status_code=200, operation_id="TasksCleanClean", tags=["tasks"])
async def clean(body: CleanRequest, request: Request) -> CleaningResult:
    """Remove finished tasks that no task depends on, as the strategy selects."""
    strategy = parse_strategy(body.strategy.type, body.strategy.parameters)
    engine = engine_of(request)
    removed = await engine.clean(strategy.cutoff(engine.clock.now()))
    return CleaningResult(removed=removed)


@router.get("/tasks/{id:anyuuid}", operation_id="TasksIdGet", tags=["tasks"])
async def get_task(id: TaskId, request: Request) -> GenericTask:
    """The task, its status, its next due instant and its latest run (with its lateness)."""
    return generic(*await engine_of(request).details(id))


@router.delete("/tasks/{id:anyuuid}", operation_id="TasksIdCancel", tags=["tasks"])
async def cancel(id: TaskId, request: Request) -> CancelledTask:
    """Cancel a pending or running task (a running one is stopped). 409 once it has finished."""
    task = await engine_of(request).cancel(id)
    model = by_status(task)
    assert isinstance(model, CancelledTask)
    return model


@router.get("/tasks/{id:anyuuid}/runs", operation_id="TasksIdRuns", tags=["tasks"])
async def runs(
    id: TaskId,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> RunPage:
    """onair: the task's runs, newest first, with each one's lateness."""
    page, count = await engine_of(request).runs(id, limit=limit, offset=offset)
    return RunPage(runs=[RunModel.of(r) for r in page], count=count, limit=limit, offset=offset)


def _by_status_route(status: Status, model: type[BaseModel]) -> None:
    async def get(id: TaskId, request: Request) -> Any:
        task = await engine_of(request).get(id)
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

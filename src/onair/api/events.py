"""`GET /events`: the engine's events as Server-Sent Events, for dashboards and watchers.

Each event is sent as `id: <n>` and `data: <json>` (the `Event`'s fields); resuming with
`Last-Event-ID` is `onair.api.eventlog`'s. A caller receives the events of the tasks it may see
(`Caller.sees`): on the Tasks API's `/events` the station sees the system's tasks and an admin
every task; `/api/v1/scheduler/events` sends a user the events of their own tasks (an admin:
all of them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from onair.api.deps import CallerDep, CurrentUser, EventLogDep, as_caller
from onair.api.eventlog import EventLog
from onair.api.routing import TasksRoute
from onair.engine.admission import Caller
from onair.engine.events import Event


def _last_id(log: EventLog, header: str | None, query: int | None) -> int:
    """Where a stream starts: after `Last-Event-ID` (or `?after=`), else from now on."""
    if query is not None:
        return query
    if header is not None:
        with contextlib.suppress(ValueError):
            return max(int(header.strip()), 0)
    return log.last


Filter = Callable[[Event], bool]


def _filter(caller: Caller, task: UUID | None, operation: str | None) -> Filter:
    def keep(event: Event) -> bool:
        return (
            caller.sees(event.owner)
            and (task is None or event.task_id == task)
            and (operation is None or event.operation == operation)
        )

    return keep


async def _sse(log: EventLog, last: int, keep: Filter) -> AsyncIterator[str]:
    with log.reading():
        yield "retry: 2000\n\n"  # reconnect after 2 s, with Last-Event-ID
        async for numbered in log.follow(last):
            if numbered is None:
                yield ": keep-alive\n\n"
            elif keep(numbered.event):
                yield numbered.sse()


def _stream(log: EventLog, last: int, keep: Filter) -> StreamingResponse:
    return StreamingResponse(
        _sse(log, last, keep),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


LastEventId = Annotated[str | None, Header(alias="Last-Event-ID")]
TaskFilter = Annotated[UUID | None, Query(alias="task", description="Only this task's events.")]
OperationFilter = Annotated[
    str | None, Query(max_length=64, description="Only events of this operation type.")
]
After = Annotated[
    int | None,
    Query(ge=0, description="Resume after this id (for clients that cannot set Last-Event-ID)."),
]

router = APIRouter(route_class=TasksRoute)


@router.get("/events", tags=["events"], response_class=StreamingResponse)
async def events(
    caller: CallerDep,
    log: EventLogDep,
    last_event_id: LastEventId = None,
    task: TaskFilter = None,
    operation: OperationFilter = None,
    after: After = None,
) -> StreamingResponse:
    """The events of the tasks the caller may see, as Server-Sent Events; resume with
    `Last-Event-ID`."""
    last = _last_id(log, last_event_id, after)
    return _stream(log, last, _filter(caller, task, operation))


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.get("/events", response_class=StreamingResponse)
async def my_events(
    user: CurrentUser,
    log: EventLogDep,
    last_event_id: LastEventId = None,
    task: TaskFilter = None,
    operation: OperationFilter = None,
    after: After = None,
) -> StreamingResponse:
    """The events of the caller's tasks (an admin: of every task), as `GET /events` sends them."""
    last = _last_id(log, last_event_id, after)
    return _stream(log, last, _filter(as_caller(user), task, operation))

"""`GET /events`: the engine's events as Server-Sent Events, for dashboards and watchers.

Each event is sent as `id: <n>` and `data: <json>` (the `Event`'s fields). Ids increase on
this node and mean nothing on another one; a client that reconnects to the same node with
`Last-Event-ID` first gets what it missed from an in-memory history (the last
`events.history`, at most `events.history_size` events), then the live stream. After a
restart the history is empty and ids start again at 1, so a resuming client whose id is ahead
of the newest one gets the whole (new) history.

The Tasks API's `/events` sees every task; it is open like the Tasks API, or needs an admin
token when `auth.protect_tasks_api` is on. `/api/v1/scheduler/events` sends a user only the
events of their own tasks (an admin: all of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from onair.api.tasks import TasksRoute
from onair.api.users import CurrentUser
from onair.config import EventsSettings
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.errors import TaskNotFound


@dataclass(frozen=True)
class Numbered:
    id: int
    kept: float
    """`time.monotonic()` when it was kept, to forget it after `history`."""
    event: Event

    def sse(self) -> str:
        return f"id: {self.id}\ndata: {json.dumps(self.event.as_json())}\n\n"


class EventLog:
    """Numbers this node's view of the engine's events (its own and, on PostgreSQL, the other
    nodes') and keeps the recent ones. Readers wait on `changed`, a future replaced at every
    event, so a slow reader never blocks the engine and costs no memory of its own."""

    def __init__(self, engine: Engine, settings: EventsSettings) -> None:
        self.settings = settings
        self._history: deque[Numbered] = deque(maxlen=settings.history_size)
        self._last = 0
        self._changed: asyncio.Event | None = None
        engine.events.subscribe(self.keep)

    @property
    def last(self) -> int:
        return self._last

    def keep(self, event: Event) -> None:
        self._last += 1
        now = time.monotonic()
        self._history.append(Numbered(self._last, now, event))
        horizon = now - self.settings.history.total_seconds()
        while self._history and self._history[0].kept < horizon:
            self._history.popleft()
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def since(self, last: int) -> list[Numbered]:
        """The kept events after id `last`, oldest first."""
        if last > self._last:
            last = 0  # an id from before a restart of this node: send all there is
        horizon = time.monotonic() - self.settings.history.total_seconds()
        return [n for n in self._history if n.id > last and n.kept >= horizon]

    def changed(self) -> asyncio.Event:
        """Set at the next event."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def follow(self, last: int) -> AsyncIterator[Numbered | None]:
        """The events after id `last`, then each new one, forever; None when nothing has
        happened for `keepalive` (time for a keep-alive comment)."""
        keepalive = self.settings.keepalive.total_seconds()
        while True:
            changed = self.changed()
            for numbered in self.since(last):
                last = numbered.id
                yield numbered
            try:
                async with asyncio.timeout(keepalive):
                    await changed.wait()
            except TimeoutError:
                yield None


class Owners:
    """Who owns each task, looked up through the engine and remembered (owners never change),
    for the most recent `size` tasks."""

    def __init__(self, engine: Engine, size: int = 10_000) -> None:
        self.engine = engine
        self.size = size
        self._known: OrderedDict[UUID, str | None] = OrderedDict()

    async def of(self, task_id: UUID) -> str | None:
        """The owner (None: a system task, or a task that no longer exists)."""
        if task_id in self._known:
            self._known.move_to_end(task_id)
            return self._known[task_id]
        try:
            owner = (await self.engine.get(task_id)).owner
        except TaskNotFound:
            owner = None
        self._known[task_id] = owner
        if len(self._known) > self.size:
            self._known.popitem(last=False)
        return owner


async def _log(request: Request) -> EventLog:
    state = request.app.state
    parent = getattr(state, "parent", None)  # the user API reads its parent's state
    log: EventLog = (parent.state if parent is not None else state).event_log
    return log


def _last_id(log: EventLog, header: str | None, query: int | None) -> int:
    """Where a stream starts: after `Last-Event-ID` (or `?after=`), else from now on."""
    if query is not None:
        return query
    if header is not None:
        with contextlib.suppress(ValueError):
            return max(int(header.strip()), 0)
    return log.last


def _stream(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


Filter = Callable[[Event], Awaitable[bool]]


def _matches(task: UUID | None, operation: str | None) -> Filter:
    async def keep(event: Event) -> bool:
        return (task is None or event.task_id == task) and (
            operation is None or event.operation == operation
        )

    return keep


async def _sse(log: EventLog, last: int, keep: Filter) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"  # reconnect after 2 s, with Last-Event-ID
    async for numbered in log.follow(last):
        if numbered is None:
            yield ": keep-alive\n\n"
        elif await keep(numbered.event):
            yield numbered.sse()


EventLogDep = Annotated[EventLog, Depends(_log)]
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
    log: EventLogDep,
    last_event_id: LastEventId = None,
    task: TaskFilter = None,
    operation: OperationFilter = None,
    after: After = None,
) -> StreamingResponse:
    """Every task's events as Server-Sent Events; resume with `Last-Event-ID`."""
    return _stream(_sse(log, _last_id(log, last_event_id, after), _matches(task, operation)))


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.get("/events", response_class=StreamingResponse)
async def my_events(
    request: Request,
    user: CurrentUser,
    log: EventLogDep,
    last_event_id: LastEventId = None,
    task: TaskFilter = None,
    operation: OperationFilter = None,
    after: After = None,
) -> StreamingResponse:
    """The events of the caller's tasks (an admin: of every task), as `GET /events` sends them."""
    matches = _matches(task, operation)
    owners = _owners(request)

    async def keep(event: Event) -> bool:
        if not await matches(event):
            return False
        return user.is_admin or await owners.of(event.task_id) == user.user_id

    return _stream(_sse(log, _last_id(log, last_event_id, after), keep))


def _owners(request: Request) -> Owners:
    owners: Owners = request.app.state.parent.state.owners
    return owners

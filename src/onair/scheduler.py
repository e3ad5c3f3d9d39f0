"""The scheduler of seed 004, in its own words: tasks with a `task_type`, a `scheduled_at` in a
`timezone`, a `recurrence_type`, and `parameters` checked per type when the task is created.

`SchedulerService` maps that shape onto the engine, which both the HTTP surface
(`/api/v1/scheduler`) and the Python API use; `Scheduler` is the in-process service, an async
context manager that opens the store, migrates it and runs the engine on this process:

    async with Scheduler() as scheduler:
        task = await scheduler.create_task(name=..., task_type=TaskType.PLAY_SOUND, ...)

The mapping onto engine conditions (docs/python-api.md):

    none           -> at        {datetime: scheduled_at, timezone}
    hourly..yearly -> recurring {start: scheduled_at, timezone, frequency, count}
    cron           -> cron      {expression, timezone, start: scheduled_at, count}

A naive `scheduled_at` is wall time in `timezone`; an aware one is taken as is. Answers give
instants as aware UTC and keep the zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from onair import timeutil
from onair.audio.playlists import PlayPlaylistParameters, PlaySoundParameters
from onair.engine.conditions import parse_condition, validate
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status, Task
from onair.engine.triggers import resolve
from onair.errors import (
    Forbidden,
    InvalidParameters,
    Problem,
    TaskFinished,
    TaskNotFound,
)
from onair.operations.credit_recharge import CreditRechargeParameters
from onair.timeutil import UTCInstant

if TYPE_CHECKING:
    from onair.accounts.credits import Accounts
    from onair.config import Settings
    from onair.operations.play import PlayChecks
    from onair.timeutil import Clock


class TaskType(StrEnum):
    CREDIT_RECHARGE = "credit_recharge"
    PLAY_SOUND = "play_sound"
    PLAY_PLAYLIST = "play_playlist"


class RecurrenceType(StrEnum):
    NONE = "none"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    YEARLY = "yearly"
    CRON = "cron"


TaskStatus = Status
"""The seed's name for the engine's task status (pending, running, cancelled, failed,
completed)."""

PARAMETERS: Mapping[TaskType, type[BaseModel]] = {
    TaskType.CREDIT_RECHARGE: CreditRechargeParameters,
    TaskType.PLAY_SOUND: PlaySoundParameters,
    TaskType.PLAY_PLAYLIST: PlayPlaylistParameters,
}
"""The parameters of each task type, checked before the type's availability so that a wrong
field is named even on a node that cannot run the type."""

SYSTEM_ONLY = frozenset({TaskType.CREDIT_RECHARGE})
"""Task types only admins may schedule: a user must not recharge their own credits."""


class TaskCreate(BaseModel):
    """A task as the seed writes it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    task_type: TaskType
    scheduled_at: datetime = Field(
        description="When it runs (a series: its first occurrence). Naive: wall time in `timezone`."
    )
    timezone: timeutil.ZoneName = Field("UTC", description="IANA zone, e.g. America/New_York.")
    recurrence_type: RecurrenceType = RecurrenceType.NONE
    cron_expression: str | None = Field(
        None, max_length=256, validate_default=True, description="Required with `cron`."
    )
    recurrence_count: int | None = Field(
        None, ge=1, validate_default=True, description="Runs in all; none: no end."
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    allow_overlap: bool = Field(
        False,
        description="Schedule a one-shot play task even if it overlaps another on its output.",
    )

    @field_validator("cron_expression")
    @classmethod
    def _cron_iff_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        cron = info.data.get("recurrence_type") == RecurrenceType.CRON
        if cron and not (value and value.strip()):
            raise PydanticCustomError("missing", "cron_expression is required with cron")
        if not cron and value is not None:
            raise PydanticCustomError("extra", "cron_expression is only for recurrence_type cron")
        return value

    @field_validator("recurrence_count")
    @classmethod
    def _count_for_series(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("recurrence_type") == RecurrenceType.NONE:
            raise PydanticCustomError("extra", "recurrence_count is for recurring tasks only")
        return value

    def condition(self) -> Spec:
        """The engine condition this schedule means."""
        at = self.scheduled_at.isoformat()
        count = {} if self.recurrence_count is None else {"count": self.recurrence_count}
        match self.recurrence_type:
            case RecurrenceType.NONE:
                return Spec("at", {"datetime": at, "timezone": self.timezone})
            case RecurrenceType.CRON:
                return Spec(
                    "cron",
                    {
                        "expression": self.cron_expression,
                        "timezone": self.timezone,
                        "start": at,
                        **count,
                    },
                )
            case _:
                return Spec(
                    "recurring",
                    {
                        "start": at,
                        "timezone": self.timezone,
                        "frequency": self.recurrence_type.value,
                        **count,
                    },
                )


class ScheduledTask(BaseModel):
    """A task as the seed shows it. Tasks added through the Tasks API show their operation as
    `task_type` and, for conditions the seed has no word for, the condition type as
    `recurrence_type` (`rrule`, `interval`)."""

    id: UUID
    name: str | None
    task_type: str
    status: TaskStatus
    scheduled_at: UTCInstant
    timezone: str
    recurrence_type: str
    cron_expression: str | None
    recurrence_count: int | None
    parameters: dict[str, Any]
    user_id: str | None
    executions_count: int = Field(description="Runs started so far.")
    last_executed_at: UTCInstant | None = Field(description="When the latest run started.")
    next_execution_at: UTCInstant | None = Field(description="The next occurrence, if any.")
    error_message: str | None
    created_at: UTCInstant
    updated_at: UTCInstant

    @classmethod
    def of(cls, task: Task) -> ScheduledTask:
        kind, parameters = task.condition.type, task.condition.parameters
        zone = str(parameters.get("timezone") or "UTC")
        recurrence, anchor = kind, parameters.get("start")
        if kind in ("at", "now"):
            recurrence, anchor = RecurrenceType.NONE.value, parameters.get("datetime")
        elif kind == "recurring":
            recurrence = str(parameters["frequency"])
        count = parameters.get("count")
        return cls(
            id=task.id,
            name=task.name,
            task_type=task.operation.type,
            status=task.status,
            scheduled_at=task.created_at if anchor is None else _instant(anchor, zone),
            timezone=zone,
            recurrence_type=recurrence,
            cron_expression=parameters.get("expression") if kind == "cron" else None,
            recurrence_count=count if isinstance(count, int) else None,
            parameters=dict(task.operation.parameters),
            user_id=task.owner,
            executions_count=task.runs,
            last_executed_at=task.started_at,
            next_execution_at=None if task.status.finished else task.next_at,
            error_message=task.error,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )


_DATETIME = TypeAdapter(datetime)


def _instant(value: Any, zone: str) -> datetime:
    """A stored condition time as an aware UTC instant (naive: wall time in `zone`)."""
    moment = _DATETIME.validate_python(value)
    if moment.tzinfo is None:
        return resolve(moment, timeutil.zone(zone))
    return moment.astimezone(UTC)


_CONDITION_FIELDS = {
    "datetime": "scheduled_at",
    "start": "scheduled_at",
    "timezone": "timezone",
    "expression": "cron_expression",
    "count": "recurrence_count",
}


def _seed_key(key: str | None) -> str | None:
    """An engine field path in the seed's words: `condition.parameters.expression` is
    `cron_expression`, `operation.parameters.sound_id` is `parameters.sound_id`."""
    if key is None:
        return None
    if key.startswith("operation.parameters"):
        return "parameters" + key.removeprefix("operation.parameters")
    if key.startswith("condition.parameters"):
        field = key.removeprefix("condition.parameters").lstrip(".").split(".")[0]
        return _CONDITION_FIELDS.get(field, "scheduled_at")
    return key


class SchedulerService:
    """The seed's calls over an engine. `visible_to` limits a call to one user's tasks: a task
    of anyone else is reported as not found, so its existence is not revealed. `checks`
    vet play tasks' media, output and overlaps before they are added."""

    def __init__(self, engine: Engine, checks: PlayChecks | None = None) -> None:
        self.engine = engine
        self.checks = checks

    # The HTTP surface's calls (they raise) --------------------------------------------------

    async def create(
        self, request: TaskCreate, *, user_id: str | None, admin: bool = True
    ) -> ScheduledTask:
        """Add the task for `user_id` (None: a system task).

        Raises:
            Forbidden: a non-admin asks for a system-only type (credit_recharge).
            InvalidParameters: wrong parameters for the type (keyed `parameters.<field>`), a
                type this server cannot run (keyed `task_type`), or a schedule the engine
                refuses (keyed by the request's field); a play task's sound or playlist that
                is not the owner's (keyed `parameters.sound_id` / `parameters.playlist_id`).
            PlayConflict: a one-shot play task overlaps another on its output (409), unless
                `allow_overlap`.
        """
        task_type = request.task_type
        if not admin and task_type in SYSTEM_ONLY:
            raise Forbidden(f"only admins may schedule {task_type.value} tasks")
        validate(PARAMETERS[task_type], request.parameters, "parameters")
        if task_type.value not in self.engine.registry:
            message = f"task type {task_type.value} is not available on this server"
            raise InvalidParameters([Problem(message, "task_type")])
        new = NewTask(
            operation=Spec(task_type.value, request.parameters),
            condition=request.condition(),
            owner=user_id,
            name=request.name,
        )
        try:
            if self.checks is not None:
                await self.checks.check(
                    task_type.value,
                    request.parameters,
                    owner=user_id,
                    start=self._one_shot_start(new),
                    allow_overlap=request.allow_overlap,
                )
            task = await self.engine.add(new)
        except InvalidParameters as error:
            problems = [Problem(p.message, _seed_key(p.key)) for p in error.problems]
            raise InvalidParameters(problems) from error
        return ScheduledTask.of(task)

    def _one_shot_start(self, new: NewTask) -> datetime | None:
        """The instant a one-shot task runs at; None for a series (or a schedule the engine
        will refuse with its own message)."""
        if new.condition.type != "at":
            return None
        try:
            condition = parse_condition("at", dict(new.condition.parameters))
        except InvalidParameters:
            return None
        return condition.trigger(self.engine.clock.now()).next_after(None)

    async def find(self, task_id: UUID, *, visible_to: str | None = None) -> ScheduledTask:
        """Raises: TaskNotFound (also for a task `visible_to` does not own)."""
        return ScheduledTask.of(await self._task(task_id, visible_to))

    async def cancel(self, task_id: UUID, *, visible_to: str | None = None) -> ScheduledTask:
        """Cancel a pending or running task.

        Raises:
            TaskNotFound: no such task, or one `visible_to` does not own (nothing changes).
            TaskFinished: it has already completed, failed or been cancelled.
        """
        await self._task(task_id, visible_to)
        return ScheduledTask.of(await self.engine.cancel(task_id))

    async def page(
        self,
        *,
        user_id: str | None = None,
        any_user: bool = False,
        status: TaskStatus | None = None,
        task_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[ScheduledTask], int]:
        """A page of tasks, newest first, and how many match: those of `user_id` (None:
        system tasks), or of anyone with `any_user`."""
        tasks, total = await self.engine.page(
            owner=user_id,
            any_owner=any_user,
            status=status,
            operation=task_type,
            limit=limit,
            offset=offset,
        )
        return [ScheduledTask.of(t) for t in tasks], total

    async def _task(self, task_id: UUID, visible_to: str | None) -> Task:
        task = await self.engine.get(task_id)
        if visible_to is not None and task.owner != visible_to:
            raise TaskNotFound(task_id)
        return task

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
    ) -> ScheduledTask:
        """Add a task for `user_id` (None: a system task). The Python API is trusted: any
        registered type may be scheduled for anyone.

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
            },
            "",
        )
        owner = None if user_id is None else str(user_id)
        return await self.create(request, user_id=owner)

    async def get_task(self, task_id: UUID | str) -> ScheduledTask | None:
        """The task, or None when there is no such task."""
        try:
            return await self.find(UUID(str(task_id)))
        except TaskNotFound:
            return None

    async def cancel_task(self, task_id: UUID | str) -> bool:
        """Cancel a pending or running task. False when there is no such task or it has
        already finished."""
        try:
            await self.cancel(UUID(str(task_id)))
        except (TaskNotFound, TaskFinished):
            return False
        return True

    async def get_user_tasks(
        self,
        user_id: str | UUID,
        status: TaskStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ScheduledTask]:
        """A user's tasks, newest first."""
        tasks, _ = await self.page(
            user_id=str(user_id),
            status=None if status is None else TaskStatus(status),
            limit=limit,
            offset=offset,
        )
        return tasks


class Scheduler(SchedulerService):
    """The in-process service: `async with Scheduler() as scheduler:` opens the store
    (SQLite under ./data by default), migrates it, runs the engine and the node's start-up
    (the daily recharge system task included) until the block ends. No web server.

    `settings` default to the environment's (`ONAIR__*`), without the broadcast synchronizer:
    an embedded scheduler has no station schedule to follow unless it is given settings that
    say so. `database_url` overrides the store. `accounts` gives the users and their credits.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        # Imported here: the composition root imports the HTTP API, which imports this module.
        from onair.app import build
        from onair.config import Settings

        if settings is None:
            settings = Settings()
            quiet = settings.synchronizer.model_copy(update={"enabled": False})
            settings = settings.model_copy(update={"synchronizer": quiet})
        if database_url is not None:
            store = settings.store.model_copy(update={"url": database_url})
            settings = settings.model_copy(update={"store": store})
        self.services = build(settings, clock)
        super().__init__(self.services.engine, self.services.play_checks)
        self.accounts: Accounts = self.services.accounts
        self._running: Any = None

    async def __aenter__(self) -> Scheduler:
        from onair.app import running

        self._running = running(self.services)
        await self._running.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._running is not None:
            running, self._running = self._running, None
            await running.__aexit__(*exc)

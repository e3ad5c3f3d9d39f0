"""The task service: the one front door above the engine, and the seed's words for it.

Every surface (the Tasks API, the user API, the CLI through them, the Python API, the
dashboard's cancel button) adds, reads, cancels and cleans tasks through `TaskService`, as a
`Caller` (`onair.engine.admission`): admission itself (who may schedule an operation, its
parameters, the resources it holds) is the engine's, applied on every add; what a caller may
see and cancel is decided here, once: a caller reaches the tasks it owns, an admin every task.
A task the caller may not see is reported as not found, so its existence is not revealed.

`SchedulerService` speaks the seed's vocabulary (seed 004): tasks with a `task_type`, a
`scheduled_at` in a `timezone`, a `recurrence_type`, and `parameters` checked per type. The
mapping onto engine conditions (docs/python-api.md):

    none           -> at        {datetime: scheduled_at, timezone}
    hourly..yearly -> recurring {start: scheduled_at, timezone, frequency, count}
    cron           -> cron      {expression, timezone, start: scheduled_at, count}

A naive `scheduled_at` is wall time in `timezone`; an aware one is taken as is. Answers give
instants as aware UTC and keep the zone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from onair import timeutil
from onair.audio.playlists import PlayPlaylistParameters, PlaySoundParameters
from onair.config import RetriesSettings
from onair.engine import simulation
from onair.engine.admission import SYSTEM, Caller, Role
from onair.engine.calendar import Changes
from onair.engine.conditions import MAX_COUNT, Condition, parse_condition, validate
from onair.engine.core import Engine
from onair.engine.models import NewTask, Outcome, Run, Spec, Status, Task
from onair.engine.policies import Policy, Retry
from onair.engine.simulation import Simulation
from onair.engine.triggers import resolve
from onair.engine.words import describe_spec
from onair.errors import InvalidParameters, Problem, TaskFinished, TaskNotFound
from onair.operations.credit_recharge import CreditRechargeParameters
from onair.timeutil import UTCInstant


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


class TaskPolicy(BaseModel):
    """What a task asks of the engine beyond its schedule: how its failed runs are retried
    (bounded for a user's task by the node's `retries` settings, `max_attempts` and
    `min_backoff`), what resuming it after a pause runs, and its DST policy."""

    model_config = ConfigDict(extra="forbid")

    retry: Retry = Field(
        default_factory=Retry,
        description=(
            "Attempts in all (1: no retry) and the delay before the 2nd one, growing by "
            "`factor` per attempt up to `cap` (ISO 8601 durations or seconds)."
        ),
    )
    resume: Literal["drop", "latest"] | None = Field(
        None,
        description=(
            "On resuming it after a pause: drop the occurrences missed meanwhile (default) or "
            "run the latest of them once."
        ),
    )
    dst_gap: Literal["shift", "skip"] | None = Field(
        None, description="A wall time its zone skips: run at the gap's end (default) or not."
    )
    dst_fold: Literal["first", "second", "both"] | None = Field(
        None, description="A wall time its zone shows twice: which pass runs (default: first)."
    )


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
        None, ge=1, le=MAX_COUNT, validate_default=True, description="Runs in all; none: no end."
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    allow_overlap: bool = Field(
        False,
        description=(
            "Schedule a play task even if its run overlaps another task's on its output "
            "(the engine's `policy.resource: shared`)."
        ),
    )
    policy: TaskPolicy | None = Field(
        None, description="Retries of failed runs (none: a failed run is not tried again)."
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

    def parsed_condition(self) -> Condition:
        """The engine condition, validated; errors name the request's fields.

        Raises: InvalidParameters."""
        spec = self.condition()
        with seed_words():
            return parse_condition(spec.type, dict(spec.parameters))

    def overrides(self) -> dict[str, Any] | None:
        """The engine policy overrides this request asks for (None: the operation's own)."""
        overrides: dict[str, Any] = {}
        if self.policy is not None:
            overrides["retry"] = self.policy.retry.model_dump(mode="json")
            overrides |= self.policy.model_dump(
                include={"resume", "dst_gap", "dst_fold"}, exclude_none=True
            )
        if self.allow_overlap:
            overrides["resource"] = "shared"
        return overrides or None

    def check_retries(self, limits: RetriesSettings) -> None:
        """Refuse a retry policy beyond what the node allows users.

        Raises: InvalidParameters, keyed `policy.retry.attempts` or `policy.retry.backoff`."""
        if self.policy is None:
            return
        retry, problems = self.policy.retry, []
        if retry.attempts > limits.max_attempts:
            message = f"at most {limits.max_attempts} attempts are allowed on this server"
            problems.append(Problem(message, "policy.retry.attempts"))
        if retry.attempts > 1 and retry.backoff < limits.min_backoff:
            shortest = timeutil.human_duration(limits.min_backoff)
            message = f"the backoff must be at least {shortest} on this server"
            problems.append(Problem(message, "policy.retry.backoff"))
        if problems:
            raise InvalidParameters(problems)

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


class MovedOccurrence(BaseModel):
    at: UTCInstant = Field(description="The occurrence, as its rule gives it.")
    to: UTCInstant = Field(description="Where it was moved.")


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
    description: str = Field(description="The schedule in words, e.g. 'every day at 09:00, UTC'.")
    parameters: dict[str, Any]
    user_id: str | None
    executions_count: int = Field(description="Runs started so far.")
    last_executed_at: UTCInstant | None = Field(description="When the latest run started.")
    next_execution_at: UTCInstant | None = Field(
        description=(
            "When a run is next due: the next attempt's instant while the task waits for a "
            "retry, otherwise its next occurrence (None once it has finished)."
        )
    )
    next_attempt_at: UTCInstant | None = Field(
        None, description="When the failed run is tried again, while the task waits for that."
    )
    attempt: int = Field(
        1, description="The attempt its next (or current) run is: above 1 while retrying."
    )
    policy: dict[str, Any] | None = Field(
        None, description="The engine policy the task asked for (retries), if any."
    )
    run_ends: str | None = Field(
        None,
        description=(
            "How a run of a looping playlist (`loop`, `loop_one`, `random`) ends: at the "
            "series' next occurrence, at `max_duration`, or only when cancelled."
        ),
    )
    error_message: str | None
    paused_at: UTCInstant | None = Field(None, description="Since when it is paused, if it is.")
    paused_by: str | None = Field(None, description="Who paused it.")
    pause_note: str | None = Field(None, description="Why it is paused.")
    skipped: list[UTCInstant] = Field(
        default_factory=list, description="Occurrences skipped, one by one."
    )
    moved: list[MovedOccurrence] = Field(
        default_factory=list, description="Occurrences moved, one by one."
    )
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
        changes = Changes.of(task.changes)
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
            description=describe_spec(kind, parameters),
            parameters=dict(task.operation.parameters),
            user_id=task.owner,
            executions_count=task.runs,
            last_executed_at=task.started_at,
            next_execution_at=task.next_due,
            next_attempt_at=task.retry_at,
            attempt=max(task.attempt, 1),
            policy=None if task.policy is None else dict(task.policy),
            run_ends=_run_ends(task, recurrence),
            error_message=task.error,
            paused_at=task.paused_at,
            paused_by=task.paused_by,
            pause_note=task.pause_note,
            skipped=sorted(changes.skipped),
            moved=[MovedOccurrence(at=a, to=b) for a, b in sorted(changes.moved.items())],
            created_at=task.created_at,
            updated_at=task.updated_at,
        )


class RunRecord(BaseModel):
    """One run of a task, in the seed's words: due, start, lateness, outcome, result or
    error. A run of a retried task is one attempt; a missed occurrence is a run that never
    started (`started_at` None, with why in `error_message`)."""

    id: UUID
    attempt: int = Field(description="1 for an occurrence's first try, 2 for its retry...")
    due_at: UTCInstant
    started_at: UTCInstant | None = Field(description="When the operation really started.")
    finished_at: UTCInstant | None
    lateness: float | None = Field(description="Seconds from `due_at` to `started_at`.")
    outcome: Outcome | None = Field(description="None while it runs.")
    result: Any
    error_message: str | None

    @classmethod
    def of(cls, run: Run) -> RunRecord:
        return cls(
            id=run.id,
            attempt=run.attempt,
            due_at=run.due_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            lateness=run.lateness,
            outcome=run.outcome,
            result=run.result,
            error_message=run.error,
        )


_ENDLESS = ("loop", "loop_one", "random")


def _run_ends(task: Task, recurrence: str) -> str | None:
    """When a run of a looping play task ends (None: any other task, whose runs end by
    themselves). The operation's rule (`onair.operations.play`), said where users look."""
    parameters = task.operation.parameters
    if task.operation.type != TaskType.PLAY_PLAYLIST or parameters.get("play_mode") not in _ENDLESS:
        return None
    limit = parameters.get("max_duration")
    series = recurrence != RecurrenceType.NONE.value
    if series and limit is not None:
        return f"at the series' next occurrence or after {limit} s (max_duration), if sooner"
    if series:
        return "at the series' next occurrence"
    if limit is not None:
        return f"after {limit} s (max_duration)"
    return "only when cancelled: a one-shot loop without max_duration plays until cancelled"


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


@contextlib.contextmanager
def seed_words() -> Iterator[None]:
    """`InvalidParameters` raised inside, keyed by the seed's field names instead of the
    engine's (`_seed_key`)."""
    try:
        yield
    except InvalidParameters as error:
        problems = [Problem(p.message, _seed_key(p.key)) for p in error.problems]
        raise InvalidParameters(problems) from error


class PauseRequest(BaseModel):
    """Why a task is paused, and by whom (default: the caller; a user is always themself)."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=1000, description="Why it is paused.")
    by: str | None = Field(
        None, min_length=1, max_length=128, description="Who pauses it (default: the caller)."
    )


class OccurrenceChange(BaseModel):
    """One occurrence of a series, named by the instant its rule gives it (`at`), and where it
    moves (`to`; a skip has none). Naive instants are read as `naive` says."""

    model_config = ConfigDict(extra="forbid")

    at: datetime = Field(description="The occurrence, as its rule gives it.")
    to: datetime | None = Field(None, description="Its new instant (moves only).")

    def instants(self, zone: str) -> tuple[datetime, datetime | None]:
        """`at` and `to` as aware instants, a naive one read as wall time in `zone`."""
        return _instant(self.at, zone), None if self.to is None else _instant(self.to, zone)


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

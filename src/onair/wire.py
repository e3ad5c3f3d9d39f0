"""The seed's words for tasks (seed 004): what the user API and the Python API take and
answer, and how it maps onto engine conditions (docs/python-api.md):

    none           -> at        {datetime: scheduled_at, timezone}
    hourly..yearly -> recurring {start: scheduled_at, timezone, frequency, count}
    cron           -> cron      {expression, timezone, start: scheduled_at, count}

A naive `scheduled_at` is wall time in `timezone`; an aware one is taken as is. Answers give
instants as aware UTC and keep the zone. The services that take and give these models are in
`onair.tasks`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from onair import timeutil
from onair.audio.playlists import PlayPlaylistParameters, PlaySoundParameters
from onair.config import RetriesSettings
from onair.engine.calendar import Changes
from onair.engine.conditions import MAX_COUNT, Condition, parse_condition
from onair.engine.models import Outcome, Run, Spec, Status, Task
from onair.engine.policies import Retry
from onair.engine.triggers import resolve
from onair.engine.words import describe_spec
from onair.errors import InvalidParameters, Problem
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

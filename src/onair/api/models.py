"""Wire models of the Tasks API (`/tasks`), shaped exactly as the reference's (contract §1.2):
single-word field names, naive-UTC timestamps, parameters echoed verbatim."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from onair.engine.calendar import Changes as OccurrenceChanges
from onair.engine.models import Run, Status, Task
from onair.engine.words import describe_spec
from onair.timeutil import naive_utc

NaiveUTC = Annotated[
    datetime,
    PlainSerializer(lambda value: naive_utc(value).isoformat(), return_type=str),
]
"""An instant written as the reference writes it: naive UTC, `isoformat()`."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Specification(_Wire):
    type: str = Field(max_length=64)
    parameters: dict[str, Any]


class TaskModel(_Wire):
    id: UUID
    operation: Specification
    condition: Specification
    dependencies: dict[str, UUID]

    @classmethod
    def of(cls, task: Task) -> TaskModel:
        return cls(
            id=task.id,
            operation=Specification(
                type=task.operation.type, parameters=dict(task.operation.parameters)
            ),
            condition=Specification(
                type=task.condition.type, parameters=dict(task.condition.parameters)
            ),
            dependencies=dict(task.dependencies),
        )


class ScheduleRequest(_Wire):
    operation: Specification
    condition: Specification
    dependencies: dict[str, UUID]
    policy: dict[str, Any] | None = Field(
        None,
        description="onair's addition: retry, misfire_grace, overlap and catch_up overrides.",
    )


class TaskIndex(BaseModel):
    pending: list[UUID]
    running: list[UUID]
    cancelled: list[UUID]
    failed: list[UUID]
    completed: list[UUID]


class Pause(BaseModel):
    at: NaiveUTC = Field(description="Since when.")
    by: str | None = Field(description="Who paused it.")
    note: str | None = Field(description="Why.")


class Moved(BaseModel):
    at: NaiveUTC = Field(description="The occurrence, as its rule gives it.")
    to: NaiveUTC = Field(description="Where it was moved.")


class Changes(BaseModel):
    skipped: list[NaiveUTC] = Field(description="Occurrences skipped, one by one.")
    moved: list[Moved] = Field(description="Occurrences moved, one by one.")

    @classmethod
    def of(cls, task: Task) -> Changes | None:
        changes = OccurrenceChanges.of(task.changes)
        if not changes:
            return None
        return cls(
            skipped=sorted(changes.skipped),
            moved=[Moved(at=a, to=b) for a, b in sorted(changes.moved.items())],
        )


class GenericTask(BaseModel):
    task: TaskModel
    status: Status
    name: str | None = Field(None, description="onair: the task's name, if it has one.")
    description: str = Field(
        "", description="onair: the condition in words, e.g. 'every weekday at 09:00, UTC'."
    )
    paused: Pause | None = Field(
        None, description="onair: the task's pause; none while it runs as scheduled."
    )
    changes: Changes | None = Field(
        None, description="onair: occurrences of the series skipped or moved, one by one."
    )
    next: NaiveUTC | None = Field(
        None,
        description=(
            "onair: when a run is next due: the next attempt's instant while the task waits "
            "for a retry, otherwise its next occurrence."
        ),
    )
    retry: NaiveUTC | None = Field(
        None, description="onair: when the failed run is tried again, while it waits for that."
    )
    runs: int = Field(0, description="onair: runs started so far.")
    last: NaiveUTC | None = Field(None, description="onair: when the latest run started.")
    outcome: str | None = Field(None, description="onair: how the latest run ended.")
    error: str | None = Field(None, description="onair: the latest error, if any.")
    due: NaiveUTC | None = Field(None, description="onair: when the latest run was due.")
    lateness: float | None = Field(
        None, description="onair: seconds from the latest run's due instant to its start."
    )


class PendingTask(BaseModel):
    task: TaskModel
    scheduled: NaiveUTC


class RunningTask(PendingTask):
    started: NaiveUTC


class CancelledTask(PendingTask):
    started: NaiveUTC | None
    cancelled: NaiveUTC


class FailedTask(PendingTask):
    started: NaiveUTC
    failed: NaiveUTC
    error: str


class CompletedTask(PendingTask):
    started: NaiveUTC
    completed: NaiveUTC
    result: Any


class CleanRequest(_Wire):
    strategy: Specification


class CleaningResult(BaseModel):
    removed: list[UUID]


class RunModel(BaseModel):
    id: UUID
    attempt: int
    node: str
    due: NaiveUTC
    started: NaiveUTC | None
    finished: NaiveUTC | None
    lateness: float | None = Field(description="Seconds from the due instant to the start.")
    outcome: str | None
    result: Any
    error: str | None

    @classmethod
    def of(cls, run: Run) -> RunModel:
        return cls(
            id=run.id,
            attempt=run.attempt,
            node=run.node,
            due=run.due_at,
            started=run.started_at,
            finished=run.finished_at,
            lateness=run.lateness,
            outcome=run.outcome,
            result=run.result,
            error=run.error,
        )


class RunPage(BaseModel):
    runs: list[RunModel]
    count: int
    limit: int
    offset: int


def generic(task: Task, latest: Run | None = None) -> GenericTask:
    return GenericTask(
        task=TaskModel.of(task),
        status=task.status,
        name=task.name,
        description=describe_spec(task.condition.type, task.condition.parameters),
        paused=(
            None
            if task.paused_at is None
            else Pause(at=task.paused_at, by=task.paused_by, note=task.pause_note)
        ),
        changes=Changes.of(task),
        next=task.next_due,
        retry=task.retry_at,
        runs=task.runs,
        last=task.started_at,
        outcome=task.last_outcome,
        error=task.error,
        due=latest.due_at if latest else None,
        lateness=latest.lateness if latest else None,
    )


def by_status(task: Task) -> BaseModel:
    """The task in the shape of its status (`PendingTask`, `RunningTask`, ...)."""
    model = TaskModel.of(task)
    scheduled = task.created_at
    started = task.started_at
    finished = task.finished_at or task.updated_at
    match task.status:
        case Status.PENDING:
            return PendingTask(task=model, scheduled=scheduled)
        case Status.RUNNING:
            return RunningTask(task=model, scheduled=scheduled, started=started or scheduled)
        case Status.CANCELLED:
            return CancelledTask(
                task=model, scheduled=scheduled, started=started, cancelled=finished
            )
        case Status.FAILED:
            # A task that failed before it could start reports the failure time as its start.
            return FailedTask(
                task=model,
                scheduled=scheduled,
                started=started or finished,
                failed=finished,
                error=task.error or "",
            )
        case Status.COMPLETED:
            return CompletedTask(
                task=model,
                scheduled=scheduled,
                started=started or finished,
                completed=finished,
                result=task.result,
            )

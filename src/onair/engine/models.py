"""What the engine hands out: tasks, runs and their states, as plain immutable values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

Record = Mapping[Any, Any]
"""A row as the store returns it (column name to value)."""


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({Status.CANCELLED, Status.FAILED, Status.COMPLETED})


class Outcome(StrEnum):
    """How one run ended. `missed`: its occurrence was skipped (too late, or overlapping);
    `interrupted`: its node stopped or died while it ran."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MISSED = "missed"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Spec:
    """A `{type, parameters}` pair, as the Tasks API writes operations and conditions."""

    type: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewTask:
    """What to schedule. `dependencies` maps a name to the id of a task whose result the
    operation receives under that name. `id` is chosen by the engine unless given (a fixed
    id makes adding idempotent, e.g. for system tasks several nodes ensure at start-up)."""

    operation: Spec
    condition: Spec
    dependencies: Mapping[str, UUID] = field(default_factory=dict)
    owner: str | None = None
    name: str | None = None
    policy: Mapping[str, Any] | None = None
    id: UUID | None = None


@dataclass(frozen=True)
class Task:
    id: UUID
    operation: Spec
    condition: Spec
    dependencies: Mapping[str, UUID]
    status: Status
    owner: str | None
    name: str | None
    policy: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime
    next_at: datetime | None
    """The next occurrence of the trigger (None: the series is over)."""
    occurrences: int
    runs: int
    started_at: datetime | None
    """When the latest run started."""
    finished_at: datetime | None
    """When the task reached its final status."""
    last_outcome: Outcome | None
    result: Any
    error: str | None
    paused_at: datetime | None = None
    """Since when the task is paused (None: it is not); its runs wait until it is resumed."""
    paused_by: str | None = None
    pause_note: str | None = None

    due_at: datetime | None = None
    """When the engine next acts on the task: its next occurrence, or the instant of its next
    attempt while it waits for a retry (None: finished, paused, or waiting for dependencies)."""
    attempt: int = 0
    """The attempt its next (or current) run is: above 1 while the task waits for a retry."""

    changes: Any = None
    """Its single-occurrence changes, as stored (`onair.engine.calendar.Changes.of`)."""
    resource: str | None = None
    """What its runs hold (`onair.engine.admission`), e.g. `output:default`."""
    hold: float | None = None
    """Seconds a run holds it from its start (None: unknown, or until its next occurrence)."""

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def retry_at(self) -> datetime | None:
        """When a failed run is tried again, while the task waits for that (else None)."""
        if self.status is Status.PENDING and self.attempt > 1:
            return self.due_at
        return None

    @property
    def next_due(self) -> datetime | None:
        """The next instant a run of the task is due: its retry's, while it waits for one,
        otherwise its next occurrence (None once it has finished)."""
        if self.status.finished:
            return None
        return self.retry_at or self.next_at

    @classmethod
    def from_row(cls, row: Record) -> Task:
        return cls(
            id=row["id"],
            operation=Spec(row["operation"], row["operation_parameters"]),
            condition=Spec(row["condition"], row["condition_parameters"]),
            dependencies={name: UUID(str(id_)) for name, id_ in row["dependencies"].items()},
            status=Status(row["status"]),
            owner=row["owner"],
            name=row["name"],
            policy=row["policy"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            next_at=row["next_at"],
            occurrences=row["occurrences"],
            runs=row["runs"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            last_outcome=Outcome(row["last_outcome"]) if row["last_outcome"] else None,
            result=row["result"],
            error=row["error"],
            paused_at=row.get("paused_at"),
            paused_by=row.get("paused_by"),
            pause_note=row.get("pause_note"),
            changes=row.get("changes"),
            resource=row.get("resource"),
            hold=row.get("hold"),
            due_at=row["due_at"],
            attempt=row["attempt"],
        )


@dataclass(frozen=True)
class Run:
    id: UUID
    task_id: UUID
    node: str
    attempt: int
    due_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    outcome: Outcome | None
    result: Any
    error: str | None

    @property
    def lateness(self) -> float | None:
        """Seconds from the due instant to the operation's start."""
        if self.started_at is None:
            return None
        return (self.started_at - self.due_at).total_seconds()

    @classmethod
    def from_row(cls, row: Record) -> Run:
        outcome = row["outcome"]
        return cls(
            id=row["id"],
            task_id=row["task_id"],
            node=row["node"],
            attempt=row["attempt"],
            due_at=row["due_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            outcome=Outcome(outcome) if outcome else None,
            result=row["result"],
            error=row["error"],
        )

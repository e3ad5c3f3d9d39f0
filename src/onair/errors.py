"""Domain errors. Each builds its message from the value that identifies the problem.

OnairError
├── NotFound                      (HTTP 404)
│   ├── TaskNotFound
│   └── FeedNotFound              a calendar feed's secret URL that is not (or no longer) one
├── InvalidInput                  (HTTP 400 on /tasks, 422 on the user-facing API)
│   ├── UnknownOperation
│   ├── UnknownCondition
│   ├── UnknownCleaningStrategy
│   ├── InvalidParameters         one or more fields of a specification are wrong
│   └── UnknownDependency
├── Conflict                      (HTTP 409)
│   ├── TaskFinished              the task can no longer be cancelled, paused or resumed
│   ├── TaskPaused                the task is paused already
│   ├── NotPaused                 the task to resume is not paused
│   ├── TaskExists                a task with that id was already added
│   └── ResourceTaken             another task holds the resource the new one needs
├── Unauthorized                  (HTTP 401) no valid credentials: missing, forged or expired
├── Forbidden                     (HTTP 403) valid credentials without the right to act
└── OperationError                raised by operations; the run fails with its message
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


class OnairError(Exception):
    """Base of every error onair raises on purpose."""

    @property
    def message(self) -> str:
        return str(self)


class NotFound(OnairError):
    pass


class FeedNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such calendar feed: its URL may have been rotated or revoked.")


class TaskNotFound(NotFound):
    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"Task not found: {task_id}.")
        self.task_id = task_id


class InvalidInput(OnairError):
    """The caller sent something onair cannot accept; `problems` name the fields."""

    problems: Sequence[Problem] = ()


@dataclass(frozen=True)
class Problem:
    """One wrong field; `key` is its dotted path (`condition.parameters.datetime`)."""

    message: str
    key: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message} | ({"key": self.key} if self.key else {})


class UnknownOperation(InvalidInput):
    def __init__(self, type_: str) -> None:
        super().__init__(f"Invalid operation: {type_}.")


class UnknownCondition(InvalidInput):
    def __init__(self, type_: str) -> None:
        super().__init__(f"Invalid condition: {type_}.")


class UnknownCleaningStrategy(InvalidInput):
    def __init__(self, type_: str) -> None:
        super().__init__(f"Invalid cleaning strategy: {type_}.")


class InvalidParameters(InvalidInput):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(
            "; ".join(f"{p.key}: {p.message}" if p.key else p.message for p in self.problems)
        )


class UnknownDependency(InvalidInput):
    def __init__(self, name: str, task_id: UUID) -> None:
        super().__init__(f"Dependency {name} refers to an unknown task: {task_id}.")
        self.problems = (Problem(str(self), f"dependencies.{name}"),)


class Conflict(OnairError):
    pass


class TaskFinished(Conflict):
    def __init__(self, task_id: UUID, status: str, action: str = "cancelled") -> None:
        super().__init__(f"Task {task_id} is already {status} and cannot be {action}.")


class TaskPaused(Conflict):
    def __init__(self, task_id: UUID, by: str | None, since: datetime) -> None:
        super().__init__(f"Task {task_id} is already paused (by {by}, since {since.isoformat()}).")
        self.task_id = task_id


class NotPaused(Conflict):
    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"Task {task_id} is not paused.")
        self.task_id = task_id


class TaskExists(Conflict):
    def __init__(self, task_id: UUID) -> None:
        super().__init__(f"Task {task_id} already exists.")
        self.task_id = task_id


class ResourceTaken(Conflict):
    """A new task's first run would overlap the span another pending or running task holds
    `resource` for. The holder is named only when the caller may see it (`visible`)."""

    def __init__(
        self,
        resource: str,
        start: datetime,
        end: datetime | None,
        holder: Any,
        *,
        visible: bool,
    ) -> None:
        kind, _, name = resource.partition(":")
        what = f"{kind.capitalize()} {name}".strip()
        until = holder["held_until"]
        running = holder["status"] == "running"
        span = f"{'since' if running else 'from'} {holder['held_from'].isoformat()} " + (
            f"to {until.isoformat()}" if until is not None else "until it is cancelled"
        )
        who = (
            f"task {holder['id']} ({holder['name'] or 'unnamed'}, {holder['status']})"
            if visible
            else f"another user's {'running' if running else 'scheduled'} task"
        )
        mine = f"from {start.isoformat()}" + (f" to {end.isoformat()}" if end else " on")
        super().__init__(
            f"{what} is taken {span} by {who}, which overlaps this task's run {mine}; "
            "set allow_overlap (policy resource: shared) to schedule it anyway."
        )
        self.resource = resource
        self.holder = holder["id"] if visible else None


class Unauthorized(OnairError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Not authenticated: {reason}.")


class Forbidden(OnairError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Forbidden: {reason}.")


class OperationError(OnairError):
    """Raised inside an operation for an expected failure; the run fails with this message."""

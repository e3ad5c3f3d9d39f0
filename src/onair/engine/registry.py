"""The seam where operations plug into the engine.

An operation is a small async unit, `run(parameters, dependencies, context) -> JSON`. Its
`Parameters` model validates a task's parameters when the task is created, so a task that
cannot run is refused at the door instead of failing later. Cancellation is asyncio's: the
engine cancels the asyncio task of a run, and an operation that holds a subprocess must kill and
reap it in a `finally` (see `onair.ffmpeg`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol
from uuid import UUID

from pydantic import BaseModel

from onair.engine.admission import Admission, Hold, Role
from onair.engine.conditions import validate
from onair.engine.policies import Policy
from onair.errors import UnknownOperation
from onair.timeutil import Clock, sleep_until

JSON = Any
"""A value that `json.dumps` accepts."""


@dataclass(frozen=True)
class RunContext:
    """What an operation knows of the run it serves."""

    task_id: UUID
    run_id: UUID
    due: datetime
    attempt: int
    owner: str | None
    clock: Clock
    occurrence: int = 1
    """Which of the task's occurrences this run serves, counted from 1 (missed ones count).
    A retry serves the same occurrence as the run it retries, so an operation that must act
    once per occurrence keys its effect by (`task_id`, `occurrence`), not by `run_id`."""
    next_occurrence: datetime | None = None
    """When the series' following occurrence is due (None: a one-shot task, or the series'
    last run): an operation that would otherwise run on endlessly (a looping playlist) ends
    by then, so that a run never plays over the next one."""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("onair.run"))

    async def sleep_until(self, instant: datetime) -> None:
        """Sleep until `instant` (aware) by this run's clock; returns at once if it is past."""
        await sleep_until(self.clock, instant)


class Operation(Protocol):
    """One task type.

    `name` is the wire name (`test`, `stream`, ...). `Parameters` validates the task's
    parameters at creation (unknown fields are kept by the task but ignored by the model).
    `policy` gives the defaults for misfire, overlap and retries of tasks of this type.

    Admission (`onair.engine.admission`): `roles` are the callers that may schedule the
    operation. `admit` is asked, once the parameters are valid, whether a task may be added for
    its owner, and answers what its runs hold (None: nothing). It raises `InvalidParameters`
    keyed `operation.parameters.<field>` (media that is not the owner's, an unknown output) or
    `Forbidden`; it must do bounded work (a few indexed reads), as it runs for every add.

    `run` returns the run's JSON result. It raises `OperationError` for an expected failure
    (the run fails with its message); any other exception fails the run too, with its type and
    message. It must honour `asyncio.CancelledError` promptly and leave no subprocess behind.
    """

    name: ClassVar[str]
    Parameters: ClassVar[type[BaseModel]]
    policy: ClassVar[Policy]
    roles: ClassVar[frozenset[Role]]

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None: ...

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON: ...


class Registry:
    """Operations by wire name. Built by the composition root; the engine only reads it."""

    def __init__(self, operations: Iterable[Operation] = ()) -> None:
        self._operations: dict[str, Operation] = {}
        for operation in operations:
            self.add(operation)

    def add(self, operation: Operation) -> None:
        """Register `operation`. Raises TypeError when it does not declare its admission
        (`roles` and `admit`): every operation says who may schedule it."""
        if not isinstance(getattr(operation, "roles", None), frozenset) or not callable(
            getattr(operation, "admit", None)
        ):
            raise TypeError(f"operation {operation.name} must declare `roles` and `admit`")
        self._operations[operation.name] = operation

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def names(self) -> list[str]:
        return sorted(self._operations)

    def get(self, name: str) -> Operation:
        """Raises: UnknownOperation."""
        try:
            return self._operations[name]
        except KeyError:
            raise UnknownOperation(name) from None

    def parameters(self, name: str, parameters: Mapping[str, JSON], key: str) -> BaseModel:
        """`parameters` validated for operation `name`.

        Raises:
            UnknownOperation: no such operation.
            InvalidParameters: keyed `{key}.<field>`.
        """
        return validate(self.get(name).Parameters, parameters, key)

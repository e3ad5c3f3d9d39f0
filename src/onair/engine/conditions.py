"""Condition types: the `condition` of a task, validated when the task is created.

Each type is a Pydantic model of its parameters that builds the task's `Trigger`. The registry
`CONDITIONS` maps the wire name (`now`, `at`, ...) to the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from onair.engine.triggers import OneShot, Trigger
from onair.errors import InvalidParameters, Problem, UnknownCondition
from onair.timeutil import as_utc, zone


class Condition(BaseModel):
    """Parameters of one condition type."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type_name: ClassVar[str]

    def trigger(self, created: datetime) -> Trigger:
        """The task's trigger; `created` is when the task was added (aware UTC)."""
        raise TypeError(f"{type(self).__name__} must define trigger()")


class Now(Condition):
    """Due as soon as the task is added."""

    type_name: ClassVar[str] = "now"

    def trigger(self, created: datetime) -> Trigger:
        return OneShot(created)


class At(Condition):
    """Due once at `datetime`: naive means wall time in `timezone` (UTC by default)."""

    type_name: ClassVar[str] = "at"
    datetime: datetime
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    def trigger(self, created: datetime) -> Trigger:
        return OneShot(as_utc(self.datetime, zone(self.timezone)))


CONDITIONS: dict[str, type[Condition]] = {c.type_name: c for c in (Now, At)}


def parse_condition(type_: str, parameters: dict[str, Any], key: str = "condition") -> Condition:
    """The validated condition.

    Raises:
        UnknownCondition: no condition type is called `type_`.
        InvalidParameters: with one problem per wrong field, keyed `{key}.parameters.<field>`.
    """
    model = CONDITIONS.get(type_)
    if model is None:
        raise UnknownCondition(type_)
    return validate(model, parameters, f"{key}.parameters")


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, key: str) -> M:
    """`data` validated as `model`, with errors as `InvalidParameters` keyed under `key`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise InvalidParameters(problems_of(error, key)) from error


def problems_of(error: ValidationError, key: str | None = None) -> list[Problem]:
    """Pydantic's errors as `Problem`s whose keys are dotted paths under `key`."""
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        full = ".".join(part for part in (key, path) if part)
        problems.append(Problem(item["msg"], full or None))
    return problems

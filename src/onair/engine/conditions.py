"""Condition types: the `condition` of a task, validated when the task is created.

Each type is a Pydantic model of its parameters that builds the task's `Trigger`. The registry
`CONDITIONS` maps the wire name (`now`, `at`, `recurring`, `cron`, `rrule`, `interval`) to the
model. docs/scheduling.md states the calendar and DST rules these follow.

A series' `count` is not part of its trigger: the engine counts occurrences in the store and
stops at `limit`. `until` and `start` are the trigger's.
"""

from __future__ import annotations

import datetime as _dt
import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from dateutil.rrule import rrulestr
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from onair import timeutil
from onair.engine.triggers import Cron, Every, OneShot, Rule, Steps, Trigger, WallClock, resolve
from onair.errors import InvalidParameters, Problem, UnknownCondition


class Condition(BaseModel):
    """Parameters of one condition type."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type_name: ClassVar[str]

    def trigger(self, created: datetime) -> Trigger:
        """The task's trigger; `created` is when the task was added (aware UTC)."""
        raise TypeError(f"{type(self).__name__} must define trigger()")

    @property
    def limit(self) -> int | None:
        """How many runs the series may have in all (the engine enforces it); None: no limit."""
        return None

    @property
    def zone(self) -> ZoneInfo:
        """The zone wall times are read in and shown in."""
        return ZoneInfo("UTC")


class Now(Condition):
    """Due as soon as the task is added."""

    type_name: ClassVar[str] = "now"

    def trigger(self, created: datetime) -> Trigger:
        return OneShot(created)


class _Zoned(Condition):
    timezone: timeutil.ZoneName = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return timeutil.zone(self.timezone)

    def _instant(self, value: datetime) -> datetime:
        """An aware `value` as is; a naive one as wall time here (gaps and folds resolved)."""
        if value.tzinfo is None:
            return resolve(value, self.zone)
        return value.astimezone(UTC)

    def _wall(self, value: datetime) -> datetime:
        """`value` as naive wall time here (an aware one is converted first)."""
        if value.tzinfo is None:
            return value
        return value.astimezone(self.zone).replace(tzinfo=None, fold=0)


class At(_Zoned):
    """Due once at `datetime`: naive means wall time in `timezone` (UTC by default)."""

    type_name: ClassVar[str] = "at"
    datetime: _dt.datetime

    def trigger(self, created: _dt.datetime) -> Trigger:
        wall = self.datetime if self.datetime.tzinfo is None else None
        return OneShot(self._instant(self.datetime), wall)


class _Series(_Zoned):
    """Fields every series has. `start` is wall time in `timezone` when naive; `until` is
    inclusive and read the same way."""

    start: datetime | None = None
    count: int | None = Field(default=None, ge=1)
    until: datetime | None = None

    @field_validator("until")
    @classmethod
    def _not_before_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start, name = info.data.get("start"), info.data.get("timezone")
        if value is None or start is None or name is None:
            return value
        zone = timeutil.zone(name)
        if _as_utc(value, zone) < _as_utc(start, zone):
            raise PydanticCustomError(
                "until_before_start",
                "until ({until}) is before start ({start})",
                {"until": value.isoformat(), "start": start.isoformat()},
            )
        return value

    @property
    def limit(self) -> int | None:
        return self.count

    def _until(self) -> datetime | None:
        return None if self.until is None else self._instant(self.until)


def _as_utc(value: datetime, zone: ZoneInfo) -> datetime:
    return resolve(value, zone) if value.tzinfo is None else value.astimezone(UTC)


class Recurring(_Series):
    """Every `interval` hours, days, weeks, months or years from `start`. Hourly steps are
    absolute (3600 s); the others keep the wall time of `start`."""

    type_name: ClassVar[str] = "recurring"
    start: datetime
    frequency: Literal["hourly", "daily", "weekly", "monthly", "yearly"]
    interval: int = Field(default=1, ge=1)

    def trigger(self, created: datetime) -> Trigger:
        if self.frequency == "hourly":
            return Every(self._instant(self.start), timedelta(hours=self.interval), self._until())
        anchor = self._wall(self.start)
        step = {"daily": 1, "weekly": 7, "monthly": 1, "yearly": 12}[self.frequency]
        pattern = Steps(
            anchor, step * self.interval, months=self.frequency in ("monthly", "yearly")
        )
        return WallClock(pattern, self.zone, resolve(anchor, self.zone), self._until())


_MACROS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"}


class CronCondition(_Series):
    """A 5-field cron expression in `timezone`, from `start` (default: the task's creation)."""

    type_name: ClassVar[str] = "cron"
    expression: str

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str) -> str:
        value = value.strip()
        fields = value.split()
        reason = None
        if value.lower() in _MACROS:
            value = value.lower()
        elif len(fields) != 5:
            reason = f"expected 5 fields (minute hour day month weekday), got {len(fields)}"
        else:
            try:
                croniter(value, datetime(2000, 1, 1)).get_next(datetime)
            except CroniterBadDateError:
                reason = "it matches no date"
            except (ValueError, KeyError) as error:
                reason = str(error) or type(error).__name__
        if reason is not None:
            raise PydanticCustomError(
                "cron",
                "invalid cron expression '{expression}': {reason}",
                {"expression": value, "reason": reason},
            )
        return value

    def trigger(self, created: datetime) -> Trigger:
        start = timeutil.as_utc(created) if self.start is None else self._instant(self.start)
        return WallClock(Cron(self.expression), self.zone, start, self._until())


class RRule(_Series):
    """An RFC 5545 RRULE evaluated on wall time in `timezone`, with DTSTART `start`. COUNT and
    UNTIL may be given in the rule or as parameters; the stricter one holds."""

    type_name: ClassVar[str] = "rrule"
    start: datetime
    rule: str

    @field_validator("rule")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            _split_rule(value, datetime(2000, 1, 1))
        except (ValueError, TypeError) as error:
            raise PydanticCustomError(
                "rrule", "invalid RRULE '{rule}': {reason}", {"rule": value, "reason": str(error)}
            ) from None
        return value

    @property
    def limit(self) -> int | None:
        counts = [c for c in (self.count, _split_rule(self.rule, self._anchor())[1]) if c]
        return min(counts) if counts else None

    def _anchor(self) -> datetime:
        return self._wall(self.start)

    def trigger(self, created: datetime) -> Trigger:
        anchor = self._anchor()
        rule, _, until = _split_rule(self.rule, anchor)
        ends = [u for u in (self._until(), None if until is None else self._instant(until)) if u]
        return WallClock(Rule(rule), self.zone, resolve(anchor, self.zone), min(ends, default=None))


_COUNT_OR_UNTIL = re.compile(r"^(COUNT|UNTIL)=(.*)$", re.IGNORECASE)


def _split_rule(text: str, start: datetime) -> tuple[Any, int | None, datetime | None]:
    """The dateutil rule without COUNT and UNTIL, and those two (UNTIL naive as wall time, or
    aware when it ends in Z).

    Raises:
        ValueError: the rule does not parse (dateutil's reason), or holds more than one RRULE.
    """
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if "\n" in body or ":" in body:
        raise ValueError("give one RRULE, without DTSTART or other properties")
    if not re.search(r"(^|;)\s*FREQ=", body, re.IGNORECASE):
        raise ValueError("FREQ is required")
    parts, count, until = [], None, None
    for part in filter(None, body.split(";")):
        match = _COUNT_OR_UNTIL.match(part.strip())
        if match is None:
            parts.append(part)
        elif match[1].upper() == "COUNT":
            count = int(match[2])
            if count < 1:
                raise ValueError("COUNT must be at least 1")
        else:
            until = _rrule_until(match[2])
    rule = rrulestr(";".join(parts), dtstart=start, cache=False)
    return rule, count, until


def _rrule_until(value: str) -> datetime:
    value = value.strip().upper()
    for layout in ("%Y%m%dT%H%M%SZ", "%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            parsed = datetime.strptime(value, layout)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if value.endswith("Z") else parsed
    raise ValueError(f"invalid UNTIL {value!r}: expected YYYYMMDD or YYYYMMDDTHHMMSS[Z]")


class Interval(_Series):
    """Every `every` (absolute time) from `start` (default: the task's creation)."""

    type_name: ClassVar[str] = "interval"
    every: timedelta

    @field_validator("every", mode="before")
    @classmethod
    def _fixed_length(cls, value: Any) -> Any:
        if isinstance(value, str):
            date = value.strip().upper().lstrip("-+").removeprefix("P").split("T")[0]
            if "Y" in date or "M" in date:
                raise PydanticCustomError(
                    "every", "years and months have no fixed length: use a recurring condition"
                )
        return value

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise PydanticCustomError("every", "every must be longer than zero")
        return value

    def trigger(self, created: datetime) -> Trigger:
        start = timeutil.as_utc(created) if self.start is None else self._instant(self.start)
        return Every(start, self.every, self._until())


CONDITIONS: dict[str, type[Condition]] = {
    c.type_name: c for c in (Now, At, Recurring, CronCondition, RRule, Interval)
}


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

"""Condition types: the `condition` of a task, validated when the task is created.

Each type is a Pydantic model of its parameters that builds the task's `Trigger`. The registry
`CONDITIONS` maps the wire name (`now`, `at`, `recurring`, `cron`, `rrule`, `interval`) to the
model. docs/scheduling.md states the calendar and DST rules these follow.

A series' `count` is not part of its trigger: the engine counts occurrences in the store and
stops at `limit`. `until` and `start` are the trigger's.

Bounds (docs/scheduling.md, "Bounds and refusals"): every instant lies within `EARLIEST` and
`LATEST` once its zone is applied; counts fit a 64-bit integer (`MAX_COUNT`); intervals are at
least the node's floor (`check_floor`) and at most the search horizon
(`triggers.HORIZON_YEARS`) in their unit; an RRULE's parts are those RFC 5545 allows, and a
rule that could only be searched second by second, or that yields too many instants per period,
is refused. `first_due` then proves, with
the bounded search of `onair.engine.triggers`, that a new task has an occurrence.
"""

from __future__ import annotations

import datetime as _dt
import math
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
from onair.engine.triggers import (
    HORIZON_YEARS,
    MAX_CANDIDATES,
    Cron,
    Every,
    OneShot,
    Rule,
    Steps,
    Trigger,
    Unbounded,
    WallClock,
    resolve,
)
from onair.errors import InvalidParameters, Problem, UnknownCondition

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
"""The first instant a condition may name (aware UTC); with `LATEST`, a day inside the calendar
Python and the store can hold, so that no zone offset or step takes an instant out of it."""
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
"""The last instant a condition may name (aware UTC)."""
MAX_COUNT = 2**63 - 1
"""The largest `count`: a 64-bit signed integer, what SQLite and PostgreSQL (bigint) hold."""
MAX_INTERVAL = timedelta(days=366 * HORIZON_YEARS)
"""The ceiling of `every`: a step longer than the search horizon makes no series."""
_TICK = timedelta(microseconds=1)


class Condition(BaseModel):
    """Parameters of one condition type."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    type_name: ClassVar[str]
    rule_field: ClassVar[str | None] = None
    """The parameter that holds the rule a search runs over (refusals are keyed by it)."""

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

    @field_validator("datetime", "start", "until", check_fields=False)
    @classmethod
    def _in_range(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        """An instant that stays inside the calendar once its zone (or offset) is applied."""
        name = info.data.get("timezone")
        if value is None or name is None or 1 < value.year < 9999:
            return value  # no offset (under a day) takes a year between out of the calendar
        if not _inside(value, timeutil.zone(name)):
            raise PydanticCustomError(
                "instant_range",
                "{value} in {zone} is out of range: instants must lie between {earliest} and "
                "{latest} UTC, in UTC and in the zone",
                {
                    "value": value.isoformat(),
                    "zone": name,
                    "earliest": EARLIEST.date().isoformat(),
                    "latest": LATEST.date().isoformat(),
                },
            )
        return value

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
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
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


def _inside(value: datetime, zone: ZoneInfo) -> bool:
    """Whether `value` (naive: wall time in `zone`) lies within `EARLIEST` and `LATEST`, in UTC
    and in `zone`."""
    if 1 < value.year < 9999:
        return True
    try:
        instant = _as_utc(value, zone)
        local = instant.astimezone(zone).replace(tzinfo=UTC)
    except (OverflowError, ValueError):
        return False
    return EARLIEST <= instant <= LATEST and EARLIEST <= local <= LATEST


def _as_utc(value: datetime, zone: ZoneInfo) -> datetime:
    return resolve(value, zone) if value.tzinfo is None else value.astimezone(UTC)


class Recurring(_Series):
    """Every `interval` hours, days, weeks, months or years from `start`. Hourly steps are
    absolute (3600 s); the others keep the wall time of `start`."""

    type_name: ClassVar[str] = "recurring"
    start: datetime
    frequency: Literal["hourly", "daily", "weekly", "monthly", "yearly"]
    interval: int = Field(default=1, ge=1)

    @field_validator("interval")
    @classmethod
    def _within_horizon(cls, value: int, info: ValidationInfo) -> int:
        frequency = info.data.get("frequency")
        most = HORIZON_YEARS * _PER_YEAR.get(str(frequency).upper(), 1)
        if value > most:
            raise PydanticCustomError(
                "interval_range",
                "interval {interval} {frequency} is longer than the search horizon of "
                "{horizon} years (at most {most})",
                {"interval": value, "frequency": frequency, "horizon": HORIZON_YEARS, "most": most},
            )
        return value

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
    rule_field: ClassVar[str | None] = "expression"
    expression: str = Field(max_length=1024)

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
                croniter(
                    value, datetime(2000, 1, 1), max_years_between_matches=HORIZON_YEARS
                ).get_next(datetime)
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
    rule_field: ClassVar[str | None] = "rule"
    start: datetime
    rule: str = Field(max_length=4096)

    @field_validator("rule")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        start, name = info.data.get("start"), info.data.get("timezone")
        anchor = datetime(2000, 1, 1)  # when `start` is wrong itself (refused on its own)
        if start is not None and name is not None:
            zone = timeutil.zone(name)
            anchor = start if start.tzinfo is None else start.astimezone(zone)
            anchor = anchor.replace(tzinfo=None, fold=0)
        try:
            rule, _, until = _split_rule(value, anchor)
            _check_parts(rule)
            if until is not None and not _inside(until, timeutil.zone(name or "UTC")):
                raise ValueError(
                    f"UNTIL {until.isoformat()} is out of range: instants must lie between "
                    f"{EARLIEST.date()} and {LATEST.date()} UTC"
                )
        except (ValueError, TypeError, OverflowError, ZeroDivisionError) as error:
            raise PydanticCustomError(
                "rrule", "invalid RRULE '{rule}': {reason}", {"rule": value, "reason": str(error)}
            ) from None
        return value

    @property
    def limit(self) -> int | None:
        counts = [c for c in (self.count, _split_rule(self.rule, self._anchor())[1]) if c]
        return min(counts) if counts else None

    def _anchor(self) -> datetime:
        """DTSTART: `start` as wall time, to the second (an RRULE has no finer resolution, and
        dateutil drops the fraction: kept, it put the first occurrence before the start)."""
        return self._wall(self.start).replace(microsecond=0)

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
        name, _, values = part.strip().partition("=")
        if name.upper() in _NONZERO and any(_is_zero(v) for v in values.split(",")):
            raise ValueError(f"{name.upper()} takes no 0 (dateutil would drop it silently)")
        if match is None:
            parts.append(part)
        elif match[1].upper() == "COUNT":
            count = int(match[2])
            if not 1 <= count <= MAX_COUNT:
                raise ValueError(f"COUNT must be between 1 and {MAX_COUNT}")
        else:
            until = _rrule_until(match[2])
    rule = rrulestr(";".join(parts), dtstart=start, cache=False)
    return rule, count, until


_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
_PER_YEAR = {
    "YEARLY": 1,
    "MONTHLY": 12,
    "WEEKLY": 53,
    "DAILY": 366,
    "HOURLY": 366 * 24,
    "MINUTELY": 366 * 1440,
    "SECONDLY": 366 * 86400,
}
_RANGES = {  # RFC 5545 3.3.10: each BY part's values (0 is never one, except for times)
    "bymonth": (1, 12),
    "bymonthday": (-31, 31),
    "byyearday": (-366, 366),
    "byweekno": (-53, 53),
    "byeaster": (-366, 366),
}
_SUB_DAILY_STEPS = MAX_CANDIDATES // 4
"""How many steps a MINUTELY rule with BYHOUR, or a SECONDLY one with BYHOUR or BYMINUTE, may
need to cross a day (dateutil looks for the next matching hour or minute one step at a time)."""
_DAY_STEPS = 24
"""The same when the rule also skips days (BYMONTH, BYMONTHDAY, BYDAY...): dateutil crosses
each day it skips step by step too, so a rule that matches one day a month would take 30 times
as many."""
_DAY_PARTS = ("bymonth", "bymonthday", "byyearday", "byweekno", "byweekday", "byeaster")


def _steps_per_day(parts: Any, freq: str, interval: int) -> int | None:
    """How many steps dateutil takes to cross a day of a MINUTELY or SECONDLY rule that limits
    its hours (or, SECONDLY, its minutes); None for other rules, which cross a day in one."""
    hours, minutes, seconds = (parts.get(name) for name in ("byhour", "byminute", "bysecond"))
    if freq == "MINUTELY" and hours is not None:
        steps = 1440 // math.gcd(interval, 1440)
        return steps if minutes is None else min(steps, 24 * len(minutes))
    if freq == "SECONDLY" and (hours is not None or minutes is not None):
        steps = 86400 // math.gcd(interval, 86400)
        return steps if seconds is None else min(steps, 1440 * len(seconds))
    return None


_PER_PERIOD = MAX_CANDIDATES // 2
"""How many instants one period of a rule may hold (a query walks its period from the start)."""


def _check_parts(rule: Any) -> None:
    """Refuse the parts of a parsed rule that make no series, or none the bounded search can
    follow: an INTERVAL below 1 or beyond the horizon, BY values out of range, BYSETPOS alone,
    and rules that would cost more than the search may examine.

    Raises:
        ValueError: with the reason.
    """
    freq = _FREQS[rule._freq]
    interval: int = rule._interval
    most = HORIZON_YEARS * _PER_YEAR[freq]
    if not 1 <= interval <= most:
        raise ValueError(
            f"INTERVAL must be between 1 and {most} for FREQ={freq} (the search horizon is "
            f"{HORIZON_YEARS} years)"
        )
    parts = rule._original_rule
    for name, (low, high) in _RANGES.items():
        for value in parts.get(name) or ():
            if value == 0 or not low <= value <= high:
                raise ValueError(f"{name.upper()}={value} is out of range ({low} to {high}, not 0)")
    for day in parts.get("byweekday") or ():
        n = getattr(day, "n", None)
        if n is not None and (n == 0 or not -53 <= n <= 53):
            raise ValueError(f"BYDAY={day} is out of range (-53 to 53, not 0)")
    given = {k for k, v in parts.items() if v is not None and k != "bysetpos"}
    if parts.get("bysetpos") and not given:
        raise ValueError("BYSETPOS needs another BYxxx part to choose among")
    steps = _steps_per_day(parts, freq, interval)
    if steps is not None:
        days = [name for name in _DAY_PARTS if parts.get(name) is not None]
        most = _DAY_STEPS if days else _SUB_DAILY_STEPS
        if steps > most:
            unit = "minute" if freq == "MINUTELY" else "second"
            limit = "BYHOUR" if freq == "MINUTELY" else "BYHOUR or BYMINUTE"
            also = f" and {', '.join(d.upper() for d in days)}" if days else ""
            raise ValueError(
                f"FREQ={freq} with {limit}{also} is searched {unit} by {unit} ({steps} steps "
                f"to cross a day, at most {most}): use FREQ=DAILY (or HOURLY) with BYHOUR, "
                "BYMINUTE and BYSECOND lists"
            )
    per_period = _instants_per_period(rule, freq)
    if per_period > _PER_PERIOD:
        raise ValueError(
            f"up to {per_period} instants in one {freq} period, more than the {_PER_PERIOD} "
            "the search may walk: use a finer FREQ"
        )


def _instants_per_period(rule: Any, freq: str) -> int:
    """An upper bound of the instants one period of `rule` yields."""
    if freq in ("HOURLY", "MINUTELY", "SECONDLY"):
        times = {"HOURLY": ("byminute", "bysecond"), "MINUTELY": ("bysecond",), "SECONDLY": ()}
        count = 1
        for name in times[freq]:
            count *= len(rule._original_rule.get(name) or (0,))
        return count
    days = {"YEARLY": 366, "MONTHLY": 31, "WEEKLY": 7, "DAILY": 1}[freq]
    if freq == "YEARLY" and rule._bymonth:
        days = 31 * len(rule._bymonth)
    if rule._bysetpos:
        days = min(days, len(rule._bysetpos))
        return days
    return days * len(rule._timeset or (0,))


_NONZERO = {"BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS", "INTERVAL", "COUNT"}


def _is_zero(text: str) -> bool:
    try:
        return int(text) == 0
    except ValueError:
        return False


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
        if value > MAX_INTERVAL:
            raise PydanticCustomError(
                "every",
                "every must be at most {high} ({days} days, the search horizon)",
                {"high": f"P{MAX_INTERVAL.days}D", "days": MAX_INTERVAL.days},
            )
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


def check_floor(condition: Condition, floor: timedelta) -> None:
    """Refuse a series that would run more often than `floor` (the node's
    `engine.min_interval`): an interval condition's `every`. RRULEs cannot be finer than a
    second (SECONDLY) nor cron than a minute.

    Raises:
        InvalidParameters: keyed `condition.parameters.every`.
    """
    if isinstance(condition, Interval) and condition.every < floor:
        raise InvalidParameters(
            [
                Problem(
                    f"every must be at least {floor.total_seconds():g} s, the floor of how "
                    "often a series may run",
                    "condition.parameters.every",
                )
            ]
        )


def first_due(condition: Condition, trigger: Trigger, now: datetime) -> datetime:
    """The first due instant of a task with `condition` (and its `trigger`) added at `now`:
    a one-shot's instant, even past (the misfire policy decides); a series' first occurrence
    from `now` on, as occurrences before the task existed are not owed. Found by the bounded
    search, so this is the proof that the rule has an occurrence.

    Raises:
        InvalidParameters: none within the search bound (keyed by the rule's field), or none.
    """
    key = "condition.parameters"
    try:
        # A series' first occurrence at or after both its start and `now`, in one search.
        first = trigger.next_after(None if isinstance(trigger, OneShot) else now - _TICK)
    except Unbounded as error:
        field = condition.rule_field
        raise InvalidParameters(
            [Problem(f"the rule has {error}", f"{key}.{field}" if field else key)]
        ) from None
    if first is None:
        raise InvalidParameters([Problem("the rule has no occurrence", key)])
    return first


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

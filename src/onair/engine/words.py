"""Rules in words: every condition as a sentence a programme director can check at a glance,
e.g. "every weekday at 09:00, America/New_York, 10 times".

Cron expressions are worded by `cron-descriptor` (24-hour clock); RRULEs, recurrences and
intervals by onair, from the fields as they were given (the rule was validated by dateutil
when the task was created). Pure: the words depend on the condition only, never on now.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cron_descriptor import ExpressionDescriptor, Options

from onair.engine.conditions import (
    At,
    Condition,
    CronCondition,
    Interval,
    Now,
    Recurring,
    RRule,
    parse_condition,
)
from onair.errors import InvalidInput

Series = Recurring | CronCondition | RRule | Interval

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_DAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
_WEEKDAYS = {"MO", "TU", "WE", "TH", "FR"}
_ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
_UNITS = {
    "YEARLY": "year",
    "MONTHLY": "month",
    "WEEKLY": "week",
    "DAILY": "day",
    "HOURLY": "hour",
    "MINUTELY": "minute",
    "SECONDLY": "second",
}


def describe(condition: Condition) -> str:
    """`condition` in words: what repeats, then its zone, its start, its end and its count."""
    match condition:
        case Now():
            return "once, as soon as it is added"
        case At():
            return f"once, {_moment(_wall(condition.datetime, condition))}{_zone(condition)}"
        case Recurring():
            head = _recurring(condition)
        case CronCondition():
            head = _cron(condition.expression)
        case RRule():
            head = _rrule(condition.rule, _wall(condition.start, condition))
        case Interval():
            head = f"every {duration(condition.every)}"
        case _:
            return condition.type_name
    return head + _zone(condition) + _bounds(condition)


def _zone(condition: Condition) -> str:
    return f", {condition.zone.key}"


def _bounds(condition: Series) -> str:
    """ ", from 2026-12-01 09:00, until 2027-06-30 00:00, 10 times": what a series adds. The
    start is a day when the words already say the time of day, else a wall time."""
    parts = []
    if condition.start is not None:
        start = _wall(condition.start, condition)
        timed = isinstance(condition, RRule) or (
            isinstance(condition, Recurring) and condition.frequency != "hourly"
        )
        parts.append(f"from {_day(start) if timed else _moment(start)}")
    if condition.until is not None:
        parts.append(f"until {_moment(_wall(condition.until, condition))}")
    elif isinstance(condition, RRule) and "UNTIL" in _fields(condition.rule):
        parts.append(f"until {_rrule_until(_fields(condition.rule)['UNTIL'])}")
    limit = condition.limit
    if limit is not None:
        parts.append("once in all" if limit == 1 else f"{limit} times")
    return "".join(f", {part}" for part in parts)


def _wall(value: datetime, condition: Condition) -> datetime:
    """`value` as naive wall time in the condition's zone (an aware one is converted)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(condition.zone).replace(tzinfo=None)


def _day(value: datetime) -> str:
    return value.date().isoformat()


def _moment(value: datetime) -> str:
    """A date and wall time, `2026-12-24 18:00`."""
    return f"{value.date().isoformat()} {_clock(value.hour, value.minute, value.second)}"


def _clock(hour: int, minute: int, second: int = 0) -> str:
    return f"{hour:02d}:{minute:02d}" + (f":{second:02d}" if second else "")


def duration(delta: timedelta) -> str:
    """`1 hour 30 minutes`, `15 minutes`, `2 days`, `0.5 seconds`."""
    total = delta.total_seconds()
    if total != int(total):
        return f"{total:g} seconds"
    seconds = int(total)
    parts = []
    for name, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and (name != "week" or seconds % size == 0):
            count, seconds = divmod(seconds, size)
            parts.append(_plural(count, name))
    if seconds:
        parts.append(_plural(seconds, "second"))
    return " ".join(parts)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _every(interval: int, unit: str) -> str:
    return f"every {unit}" if interval == 1 else f"every {interval} {unit}s"


def _recurring(condition: Recurring) -> str:
    start, interval = _wall(condition.start, condition), condition.interval
    at = _clock(start.hour, start.minute, start.second)
    match condition.frequency:
        case "hourly":
            return _every(interval, "hour")
        case "daily":
            return f"{_every(interval, 'day')} at {at}"
        case "weekly":
            return f"{_every(interval, 'week')} on {calendar.day_name[start.weekday()]} at {at}"
        case "monthly":
            return f"{_every(interval, 'month')} on day {start.day} at {at}"
        case _:
            month = calendar.month_name[start.month]
            return f"{_every(interval, 'year')} on {start.day} {month} at {at}"


def _cron(expression: str) -> str:
    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    descriptor = ExpressionDescriptor(_MACROS.get(expression, expression), options)
    text = str(descriptor.get_description())
    return text[:1].lower() + text[1:]


def _fields(rule: str) -> dict[str, str]:
    """The RRULE's `NAME=value` parts, names upper-cased (the rule has already parsed)."""
    body = rule.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    pairs = (part.split("=", 1) for part in body.split(";") if "=" in part)
    return {name.strip().upper(): value.strip().upper() for name, value in pairs}


def _rrule_until(value: str) -> str:
    digits = value.rstrip("Z")
    day = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    if "T" not in digits:
        return day
    clock = _clock(int(digits[9:11]), int(digits[11:13]), int(digits[13:15] or 0))
    return f"{day} {clock}" + (" UTC" if value.endswith("Z") else "")


def _rrule(rule: str, start: datetime) -> str:
    """An RRULE's recurrence in words; the time of day comes from BYHOUR/BYMINUTE/BYSECOND or,
    as RFC 5545 says, from DTSTART (`start`)."""
    fields = _fields(rule)
    freq = fields.get("FREQ", "DAILY")
    interval = int(fields.get("INTERVAL", "1"))
    unit = _UNITS.get(freq, freq.lower())
    days = [d for d in fields.get("BYDAY", "").split(",") if d]
    plain = [d for d in days if d in _DAYS]
    words: list[str] = []
    if freq in ("DAILY", "WEEKLY") and interval == 1 and set(plain) == _WEEKDAYS == set(days):
        words.append("every weekday")
    elif freq in ("DAILY", "WEEKLY") and interval == 1 and set(days) == {"SA", "SU"}:
        words.append("every weekend day")
    else:
        words.append(_every(interval, unit))
        if days:
            words.append("on " + _listed(_weekday(d) for d in days))
    if "BYMONTHDAY" in fields:
        monthdays = [_monthday(int(d)) for d in fields["BYMONTHDAY"].split(",")]
        words.append("on " + _listed(monthdays) + " of the month")
    if "BYYEARDAY" in fields:
        words.append(f"on day {_listed(fields['BYYEARDAY'].split(','))} of the year")
    if "BYWEEKNO" in fields:
        words.append(f"in week {_listed(fields['BYWEEKNO'].split(','))}")
    if "BYMONTH" in fields:
        months = [calendar.month_name[int(m)] for m in fields["BYMONTH"].split(",")]
        words.append("in " + _listed(months))
    if freq not in ("MINUTELY", "SECONDLY"):
        words.append(_times(fields, start, freq))
    if "BYSETPOS" in fields:
        positions = [_ORDINALS.get(int(p), f"number {p}") for p in fields["BYSETPOS"].split(",")]
        words.append(f"(only the {_listed(positions)} of those in each {unit})")
    return " ".join(w for w in words if w)


def _times(fields: dict[str, str], start: datetime, freq: str) -> str:
    def numbers(name: str, default: int) -> list[int]:
        return [int(v) for v in fields[name].split(",")] if name in fields else [default]

    minutes, seconds = numbers("BYMINUTE", start.minute), numbers("BYSECOND", start.second)
    if freq == "HOURLY" and "BYHOUR" not in fields:
        listed = _listed(str(m) for m in minutes)
        return f"at minute {listed}" if minutes != [0] or seconds != [0] else "on the hour"
    hours = numbers("BYHOUR", start.hour)
    clocks = [_clock(h, m, s) for h in hours for m in minutes for s in seconds]
    if len(clocks) > 6:
        return f"at {len(clocks)} times a day, from {clocks[0]} to {clocks[-1]}"
    return "at " + _listed(clocks)


def _weekday(text: str) -> str:
    name = calendar.day_name[_DAYS[text[-2:]]]
    if text[:-2] in ("", "+"):
        return name
    number = int(text[:-2])
    ordinal = _ORDINALS.get(number, f"{number}th" if number > 0 else f"{-number}th last")
    return f"the {ordinal} {name}"


def _monthday(day: int) -> str:
    if day == -1:
        return "the last day"
    if day < 0:
        return f"the {-day}th last day"
    return f"day {day}"


def _listed(items: Any) -> str:
    """`a`, `a and b`, `a, b and c`."""
    values = [str(i) for i in items]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def describe_spec(kind: str, parameters: Mapping[str, Any]) -> str:
    """A stored condition in words; one this version no longer accepts is named by its type
    (a task's answer must not fail because an old rule cannot be read)."""
    try:
        return describe(parse_condition(kind, dict(parameters)))
    except InvalidInput:
        return kind

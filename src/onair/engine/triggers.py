"""Triggers: when a task's runs are due. Pure functions of an instant; no clock is read here.

Every instant in and out is an aware UTC datetime. Wall-clock rules are evaluated on naive wall
time in their zone and then placed on the UTC line by `resolve` (docs/scheduling.md):

- a wall time that does not exist (spring-forward gap) runs at the first instant after the gap;
- an ambiguous wall time (fall-back fold) runs once, at its first occurrence (fold=0);
- an instant is never produced twice, so wall times that a gap collapses onto one instant run once.

Each call does a bounded amount of work: patterns are asked for the next wall time after a given
wall time, never enumerated from the start of the series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from dateutil import rrule as _rrule

_TICK = timedelta(microseconds=1)


class Trigger(Protocol):
    """The instants a task is due at, in increasing order."""

    def next_after(self, instant: datetime | None) -> datetime | None:
        """The first due instant strictly after `instant`, or the series' first one when
        `instant` is None. None means the series has ended."""
        ...


@dataclass(frozen=True)
class Occurrence:
    """A due instant and, for wall-clock rules, the wall time the rule asked for (naive, in the
    trigger's zone); the two differ in local terms when a DST gap moved the run."""

    utc: datetime
    wall: datetime | None = None


@dataclass(frozen=True)
class OneShot:
    """Due once, at `instant` (which may already be past: the misfire policy decides).
    `wall` is the naive wall time it was given as, if any (for previews)."""

    instant: datetime
    wall: datetime | None = None

    def occurrence_after(self, instant: datetime | None) -> Occurrence | None:
        if instant is None or self.instant > instant:
            return Occurrence(self.instant, self.wall)
        return None

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc


@dataclass(frozen=True)
class Every:
    """Due at `start + k * step` for k = 0, 1, ... up to `until` (inclusive): absolute time, so
    DST changes never stretch or shrink a step."""

    start: datetime
    step: timedelta
    until: datetime | None = None

    def occurrence_after(self, instant: datetime | None) -> Occurrence | None:
        k = (
            0
            if instant is None or instant < self.start
            else (instant - self.start) // self.step + 1
        )
        try:
            due = self.start + k * self.step
        except OverflowError:
            return None
        if self.until is not None and due > self.until:
            return None
        return Occurrence(due)

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc


class Pattern(Protocol):
    """A calendar rule on naive wall time, with no zone and no DST."""

    def after(self, wall: datetime) -> datetime | None:
        """The first wall time of the rule strictly after `wall`; None when there is none."""
        ...


@dataclass(frozen=True)
class WallClock:
    """A wall-clock `pattern` in `zone`, from `start` (aware UTC, inclusive) to `until` (aware UTC,
    inclusive, None for no end)."""

    pattern: Pattern
    zone: ZoneInfo
    start: datetime
    until: datetime | None = None

    def occurrence_after(self, instant: datetime | None) -> Occurrence | None:
        floor = self.start - _TICK
        after = floor if instant is None or instant < floor else instant
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        if local.fold:
            # The second pass of a fold: every wall time left in the fold resolves to its first
            # pass, which is already behind us.
            wall = _fold_end(local, self.zone) - _TICK
        while True:
            found = self.pattern.after(wall)
            if found is None:
                return None
            due = resolve(found, self.zone)
            if due > after:
                break
            wall = found  # collapsed into a gap we already ran at
        if self.until is not None and due > self.until:
            return None
        return Occurrence(due, found)

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc


Calendar = OneShot | Every | WallClock
"""The triggers built here; each also tells the wall time behind an instant (`occurrence_after`)."""


def resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant at which the clock in `zone` first shows `wall` (naive) or later: the
    wall time itself when it exists (the first of two in a fold), else the end of its gap."""
    wall = wall.replace(tzinfo=None, fold=0)
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # In a gap, fold=0 applies the offset from before the gap and lands after it; fold=1
    # applies the later offset and lands before it. The gap's end lies between the two.
    return _offset_change(zone, wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first)


def is_ambiguous(wall: datetime, zone: ZoneInfo) -> bool:
    """Whether the clock in `zone` shows `wall` (naive) twice."""
    early = wall.replace(tzinfo=zone, fold=0)
    late = wall.replace(tzinfo=zone, fold=1)
    return early.utcoffset() != late.utcoffset() and resolve(wall, zone) == early.astimezone(UTC)


def _offset_change(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    """The instant in (low, high] where the offset becomes the one in force at `high`, given that
    `low` has another one and a single change lies between. Transitions fall on whole seconds."""
    target = high.astimezone(zone).utcoffset()
    lo, hi = math.floor(low.timestamp()), math.ceil(high.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _fold_end(local: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall time at which the fold that `local` (fold=1) lies in ends."""
    instant = local.astimezone(UTC)
    first = local.replace(fold=0).astimezone(UTC)
    change = _offset_change(zone, first, instant)
    return change.astimezone(zone).replace(tzinfo=None) + (instant - first)


@dataclass(frozen=True)
class Steps:
    """Every `step` days or months from `anchor` (naive wall time). A month step keeps the
    anchor's day and skips months (or years) without it, as RFC 5545 does."""

    anchor: datetime
    step: int
    months: bool = False

    def after(self, wall: datetime) -> datetime | None:
        if wall < self.anchor:
            return self.anchor
        try:
            if not self.months:
                days = timedelta(days=self.step)
                return self.anchor + ((wall - self.anchor) // days + 1) * days
            return self._month_after(wall)
        except OverflowError:
            return None

    def _month_after(self, wall: datetime) -> datetime | None:
        a = self.anchor
        k = ((wall.year - a.year) * 12 + wall.month - a.month) // self.step
        # Bounded: the anchor's own month comes back every 12 steps, and its leap status
        # every 400 years (4800 months).
        for _ in range(4800):
            year, month = divmod(a.month - 1 + k * self.step, 12)
            year += a.year
            if year > 9999:
                return None
            try:
                candidate = a.replace(year=year, month=month + 1)
            except ValueError:  # no such day in that month
                candidate = None
            if candidate is not None and candidate > wall:
                return candidate
            k += 1
        return None


@dataclass(frozen=True)
class Cron:
    """A 5-field cron expression (or a macro such as `@daily`), as croniter reads it: when both
    day of month and day of week are restricted, either one matching is enough."""

    expression: str

    def after(self, wall: datetime) -> datetime | None:
        try:
            found: datetime = croniter(self.expression, wall).get_next(datetime)
        except (CroniterBadDateError, OverflowError, ValueError):
            return None
        return found


_PERIODS = {
    _rrule.HOURLY: timedelta(hours=1),
    _rrule.MINUTELY: timedelta(minutes=1),
    _rrule.SECONDLY: timedelta(seconds=1),
}


class Rule:
    """An RFC 5545 recurrence rule (dateutil) on naive wall time, without COUNT or UNTIL (the
    trigger and the engine hold those).

    dateutil's `after` walks the series from DTSTART, so each query restarts the rule at the
    start of the period holding the queried wall time, with every BYxxx part that dateutil would
    have taken from DTSTART written out. The restarted rule has the same periods and so the same
    occurrences from there on.
    """

    def __init__(self, rule: Any) -> None:
        self.rule = rule
        start: datetime = rule._dtstart
        self.freq: int = rule._freq
        self.interval: int = rule._interval
        self.wkst: int = rule._wkst
        self.start = start
        fixed = {k: v for k, v in rule._original_rule.items() if v is not None}
        if not any(
            k in fixed for k in ("byweekno", "byyearday", "bymonthday", "byweekday", "byeaster")
        ):
            if self.freq == _rrule.YEARLY:
                fixed.setdefault("bymonth", start.month)
                fixed["bymonthday"] = start.day
            elif self.freq == _rrule.MONTHLY:
                fixed["bymonthday"] = start.day
            elif self.freq == _rrule.WEEKLY:
                fixed["byweekday"] = start.weekday()
        for name, freq, value in (
            ("byhour", _rrule.HOURLY, start.hour),
            ("byminute", _rrule.MINUTELY, start.minute),
            ("bysecond", _rrule.SECONDLY, start.second),
        ):
            if self.freq < freq:
                fixed.setdefault(name, value)
        self.fixed = fixed

    def after(self, wall: datetime) -> datetime | None:
        try:
            found: datetime | None = self._near(wall).after(wall)
        except (OverflowError, ValueError):
            return None
        return found

    def _near(self, wall: datetime) -> Any:
        """The rule restarted at the start of the period that holds `wall`."""
        start, n = self.start, self.interval
        if wall <= start:
            return self.rule
        if self.freq == _rrule.YEARLY:
            restart = datetime(start.year + (wall.year - start.year) // n * n, 1, 1)
        elif self.freq == _rrule.MONTHLY:
            months = ((wall.year - start.year) * 12 + wall.month - start.month) // n * n
            year, month = divmod(start.month - 1 + months, 12)
            restart = datetime(start.year + year, month + 1, 1)
        elif self.freq == _rrule.WEEKLY:
            first = start.date() - timedelta(days=(start.weekday() - self.wkst) % 7)
            weeks = (wall.date() - first).days // 7 // n * n
            restart = datetime.combine(first + timedelta(weeks=weeks), datetime.min.time())
        elif self.freq == _rrule.DAILY:
            days = (wall.date() - start.date()).days // n * n
            restart = datetime.combine(start.date() + timedelta(days=days), datetime.min.time())
        else:
            unit = _PERIODS[self.freq]
            base = start.replace(microsecond=0)
            if self.freq <= _rrule.MINUTELY:
                base = base.replace(second=0)
            if self.freq == _rrule.HOURLY:
                base = base.replace(minute=0)
            restart = base + (wall - base) // (unit * n) * (unit * n)
        if restart <= start:
            return self.rule
        return _rrule.rrule(self.freq, dtstart=restart, interval=n, wkst=self.wkst, **self.fixed)

"""Triggers: when a task's runs are due. Pure functions of an instant; no clock is read here.

Every instant in and out is an aware UTC datetime. Wall-clock rules are evaluated on naive wall
time in their zone and then placed on the UTC line by `resolve` (docs/scheduling.md):

- a wall time that does not exist (spring-forward gap) runs at the first instant after the gap;
- an ambiguous wall time (fall-back fold) runs once, at its first occurrence (fold=0);
- an instant is never produced twice, so wall times that a gap collapses onto one instant run once.

Each call does a bounded amount of work: patterns are asked for the next wall time after a given
wall time, never enumerated from the start of the series, and a search for it looks at most
`HORIZON_YEARS` ahead and examines at most `MAX_CANDIDATES` candidates (docs/scheduling.md,
"Search bounds"). A search that reaches its bound raises `Unbounded`: the rule's next occurrence,
if it has one, is too far or too costly to find, and the caller refuses or fails the rule.
"""

from __future__ import annotations

import contextlib
import math
import threading
import types
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter
from croniter.croniter import CroniterBadDateError
from dateutil import rrule as _rrule

_TICK = timedelta(microseconds=1)

HORIZON_YEARS = 50
"""How far ahead of the instant it is asked about a search for a rule's next occurrence looks.
Long enough for the sparsest rules people write (29 February on a given weekday comes back
within 40 years), short enough that no search walks the calendar to year 9999."""

MAX_CANDIDATES = 10_000
"""How many candidates one search may examine: periods of an RRULE's FREQ (a day of a DAILY
rule, a year of a YEARLY one), the steps a sub-daily rule takes to its next matching hour or
minute, and the instants it yields on the way. A few tens of milliseconds of CPU at most (about
3 µs each); whichever of this and `HORIZON_YEARS` comes first ends the search, so a DAILY or
finer rule looks about 27 years ahead."""


class Unbounded(Exception):
    """No occurrence was found within the search bound (`HORIZON_YEARS`, `MAX_CANDIDATES`):
    the rule's next one after `after` (naive wall time), if any, lies beyond it."""

    def __init__(self, after: datetime, reason: str) -> None:
        super().__init__(
            f"no occurrence after {after.isoformat()} within the search bound "
            f"({HORIZON_YEARS} years, {MAX_CANDIDATES} candidates): {reason}"
        )
        self.after = after
        self.reason = reason


@dataclass
class _Budget:
    """What a search may still examine: `candidates`, and wall times up to the end of
    `last_year` (`ended` says whether that year is the series' own end, not the horizon)."""

    candidates: int
    last_year: int
    ended: bool = False

    def spend(self) -> None:
        self.candidates -= 1
        if self.candidates < 0:
            raise _Spent(f"more than {MAX_CANDIDATES} candidates examined")


class _Spent(Exception):
    """Raised inside dateutil's iteration to stop it at the bound."""

    def __init__(self, reason: str, ended: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ended = ended


_shared: ContextVar[_Budget | None] = ContextVar("onair_search_budget", default=None)


@contextlib.contextmanager
def search_budget(candidates: int) -> Iterator[None]:
    """Within the block, every search draws on one budget of `candidates` in all (a preview of
    many instants, or a page of them, is bounded as one search is); past it, `Unbounded`.
    Nested, the inner budget is also held to what is left of the outer one, and spends it."""
    outer = _shared.get()
    allowed = candidates if outer is None else min(candidates, max(outer.candidates, 0))
    budget = _Budget(allowed, MAXYEAR)
    token = _shared.set(budget)
    try:
        yield
    finally:
        _shared.reset(token)
        if outer is not None:
            outer.candidates -= allowed - max(budget.candidates, 0)


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

    def after(self, wall: datetime, end: datetime | None = None) -> datetime | None:
        """The first wall time of the rule strictly after `wall`; None when there is none, or
        none up to `end` (a wall time the caller needs nothing after).

        Raises:
            Unbounded: none found within the search bound.
        """
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
        """Raises: Unbounded, as `Pattern.after`."""
        floor = self.start - _TICK
        after = floor if instant is None or instant < floor else instant
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None, fold=0)
        if local.fold:
            # The second pass of a fold: every wall time left in the fold resolves to its first
            # pass, which is already behind us.
            wall = _fold_end(local, self.zone) - _TICK
        end = None
        if self.until is not None:
            end = _wall_or_edge(self.until, self.zone, timedelta(days=1))
        while True:
            found = self.pattern.after(wall, end)
            if found is None:
                return None
            due = resolve(found, self.zone)
            if due > after:
                break
            # Collapsed into a gap we already ran at: every wall time left in the gap resolves
            # to the same instant, so go on from the gap's end.
            wall = max(found, due.astimezone(self.zone).replace(tzinfo=None) - _TICK)
        if self.until is not None and due > self.until:
            return None
        return Occurrence(due, found)

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc


def following(trigger: Trigger, instant: datetime) -> datetime | None:
    """The trigger's next instant after `instant`, None when there is none or none within the
    search bound: for what only needs to know how long a span lasts (None: open-ended)."""
    try:
        return trigger.next_after(instant)
    except Unbounded:
        return None


Calendar = OneShot | Every | WallClock
"""The triggers built here; each also tells the wall time behind an instant (`occurrence_after`)."""


def _wall_or_edge(instant: datetime, zone: ZoneInfo, margin: timedelta) -> datetime:
    """`instant + margin` as naive wall time in `zone`, or the calendar's last wall time when
    that is past it."""
    try:
        return (instant + margin).astimezone(zone).replace(tzinfo=None)
    except OverflowError:
        return datetime.max


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

    def after(self, wall: datetime, end: datetime | None = None) -> datetime | None:
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

    def after(self, wall: datetime, end: datetime | None = None) -> datetime | None:
        """croniter's own search, held to `HORIZON_YEARS` (it walks days and months, not
        seconds, so its cost is bounded by the horizon). `wall` goes in to the second: cron
        instants are whole minutes, and croniter counts in float timestamps, which past the
        year 2500 round 00:00:59.999999 up to the next minute and skip it."""
        try:
            found: datetime = _croniter(self.expression, wall.replace(microsecond=0)).get_next(
                datetime
            )
        except CroniterBadDateError:
            if wall.year + HORIZON_YEARS >= MAXYEAR or (
                end is not None and end.year - wall.year < HORIZON_YEARS
            ):
                return None  # the calendar, or the series, ends first
            raise Unbounded(wall, f"none in {HORIZON_YEARS} years") from None
        except (OverflowError, ValueError):
            return None
        return found


_CRONS = threading.local()
"""Per thread (rules are evaluated off the event loop too), one croniter per expression."""
CRONS_KEPT = 256


def _croniter(expression: str, wall: datetime) -> croniter:
    """A croniter for `expression` set at `wall`. Building one parses and expands the
    expression, which costs four times a search (270-350 µs against 73 µs here), and a
    claim, a preview or a simulation asks for the next instant again and again: the parsed
    croniter is kept, and set to each new start."""
    kept: dict[str, croniter] | None = getattr(_CRONS, "kept", None)
    if kept is None:
        kept = _CRONS.kept = {}
    found = kept.get(expression)
    if found is None:
        found = croniter(expression, wall, max_years_between_matches=HORIZON_YEARS)
        if len(kept) >= CRONS_KEPT:
            kept.clear()
        kept[expression] = found
    else:
        found.set_current(wall, force=True)
    return found


_PERIODS = {
    _rrule.HOURLY: timedelta(hours=1),
    _rrule.MINUTELY: timedelta(minutes=1),
    _rrule.SECONDLY: timedelta(seconds=1),
}


class _BoundedInfo(_rrule._iterinfo):  # type: ignore[misc]
    """dateutil's per-period bookkeeping, which its iteration asks for every period it walks
    (`*dayset`) and every month or year it enters (`rebuild`): here each of those draws on the
    search's budget, so that a rule that yields nothing stops at the bound instead of walking
    to year 9999 (seconds of CPU) or, with INTERVAL=0, forever."""

    def __init__(self, rule: Any) -> None:
        super().__init__(rule)
        self.budget: _Budget = rule.budget

    def rebuild(self, year: int, month: int) -> None:
        if year > self.budget.last_year:
            raise _Spent(f"none in {HORIZON_YEARS} years", ended=self.budget.ended)
        super().rebuild(year, month)

    def ydayset(self, year: int, month: int, day: int) -> Any:
        self.budget.spend()
        return super().ydayset(year, month, day)

    def mdayset(self, year: int, month: int, day: int) -> Any:
        self.budget.spend()
        return super().mdayset(year, month, day)

    def wdayset(self, year: int, month: int, day: int) -> Any:
        self.budget.spend()
        return super().wdayset(year, month, day)

    def ddayset(self, year: int, month: int, day: int) -> Any:
        self.budget.spend()
        return super().ddayset(year, month, day)


class _BoundedRRule(_rrule.rrule):  # type: ignore[misc]
    """dateutil's rrule, iterated by dateutil's own code with `_BoundedInfo` in place of its
    bookkeeping. The iteration is dateutil's function itself, not a copy: only the global it
    looks the bookkeeping class up by is changed (tests/unit/test_rule_bounds.py holds it)."""

    budget: _Budget

    def _rrule__mod_distance(self, value: int, byxxx: Any, base: int) -> Any:
        """dateutil's step to the next BYHOUR / BYMINUTE / BYSECOND value of a sub-daily rule
        (its name as Python mangles it): counted too, since a rule whose day or hour seldom
        matches takes its steps here, one second or minute at a time."""
        self.budget.spend()
        return _rrule.rrule._rrule__mod_distance(self, value, byxxx, base)

    _iter = types.FunctionType(
        _rrule.rrule._iter.__code__,
        {**vars(_rrule), "_iterinfo": _BoundedInfo},
        "_iter",
        _rrule.rrule._iter.__defaults__,
        _rrule.rrule._iter.__closure__,
    )


class Rule:
    """An RFC 5545 recurrence rule (dateutil) on naive wall time, without COUNT or UNTIL (the
    trigger and the engine hold those).

    dateutil's `after` walks the series from DTSTART, so each query restarts the rule at the
    start of the period holding the queried wall time, with every BYxxx part that dateutil would
    have taken from DTSTART written out. The restarted rule has the same periods and so the same
    occurrences from there on. The walk is bounded (`_BoundedInfo`): `HORIZON_YEARS` past the
    queried wall time and `MAX_CANDIDATES` periods and instants.
    """

    def __init__(self, rule: Any) -> None:
        self.rule = rule
        start: datetime = rule._dtstart
        self.freq: int = rule._freq
        self.interval: int = rule._interval
        self.wkst: int = rule._wkst
        self.start = start
        fixed = {k: v for k, v in rule._original_rule.items() if v is not None}
        self.original = dict(fixed)
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
        # A MINUTELY or SECONDLY rule steps through its minutes or seconds by dateutil's
        # `__mod_distance` when the BY part of its own unit is given, and by plain arithmetic
        # otherwise; naming every value the interval reaches changes no occurrence and makes
        # every step one that `_BoundedRRule` counts.
        for name, freq, first in (
            ("byminute", _rrule.MINUTELY, start.minute),
            ("bysecond", _rrule.SECONDLY, start.second),
        ):
            if self.freq == freq and name not in self.original:
                step = math.gcd(self.interval, 60)
                values = tuple(v for v in range(60) if (v - first) % step == 0)
                self.original[name] = fixed[name] = values
        self.fixed = fixed

    def after(self, wall: datetime, end: datetime | None = None) -> datetime | None:
        shared = _shared.get()
        allowed = MAX_CANDIDATES if shared is None else min(MAX_CANDIDATES, shared.candidates)
        last_year = min(wall.year + HORIZON_YEARS, MAXYEAR)
        ended = end is not None and end.year < last_year
        budget = _Budget(allowed, end.year if end is not None and ended else last_year, ended)
        try:
            rule = self._near(wall)
            rule.budget = budget
            found: datetime
            for found in rule:
                if found > wall:
                    return found
                budget.spend()
        except _Spent as stop:
            if stop.ended or budget.last_year >= MAXYEAR:
                return None  # the series, or the calendar, ends before the bound
            raise Unbounded(wall, stop.reason) from None
        except (OverflowError, ValueError):
            return None
        finally:
            if shared is not None:
                shared.candidates -= allowed - max(budget.candidates, 0)
        return None

    def _near(self, wall: datetime) -> _BoundedRRule:
        """The rule restarted at the start of the period that holds `wall` (at DTSTART when
        `wall` is before it), as a bounded rule."""
        start, n = self.start, self.interval
        if wall <= start:
            return _BoundedRRule(
                self.freq, dtstart=start, interval=n, wkst=self.wkst, **self.original
            )
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
            return _BoundedRRule(
                self.freq, dtstart=start, interval=n, wkst=self.wkst, **self.original
            )
        return _BoundedRRule(self.freq, dtstart=restart, interval=n, wkst=self.wkst, **self.fixed)

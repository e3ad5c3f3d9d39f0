"""Triggers against an independent oracle, across zones with unusual DST, over two years.

The oracle builds wall times with dateutil or plain date arithmetic and places them on the UTC
line with its own reading of the rule, "the first instant at which the wall clock shows w or
later", computed from the zone's transitions (found here by scanning, not by the engine's code).
"""

from __future__ import annotations

import bisect
import calendar
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st

from onair.engine.triggers import Cron, Every, Rule, Steps, Unbounded, WallClock

ZONES = [
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "America/Santiago",
    "Asia/Tehran",
    "Pacific/Chatham",
    "Europe/Warsaw",
    "America/New_York",
]
WINDOW = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
YEARS = timedelta(days=731)
SETTINGS = settings(max_examples=25, deadline=None)


@cache
def _segments(name: str) -> list[tuple[datetime, timedelta]]:
    """(start, offset) of each stretch of constant offset in the window, found by scanning
    every six hours and bisecting to the second (no zone changes its offset twice within six
    hours; scanning every hour took 6 s for 30 zones, in each test process)."""
    zone = ZoneInfo(name)

    def offset(instant: datetime) -> timedelta:
        value = instant.astimezone(zone).utcoffset()
        assert value is not None
        return value

    start, end = WINDOW[0] - timedelta(days=2), WINDOW[1] + timedelta(days=2)
    segments = [(start, offset(start))]
    step = timedelta(hours=6)
    at = start
    while at < end:
        nxt = at + step
        if offset(nxt) != offset(at):
            low, high = at, nxt
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if offset(mid) == offset(at):
                    low = mid
                else:
                    high = mid
            segments.append((high, offset(high)))
        at = nxt
    return segments


def oracle_resolve(wall: datetime, name: str) -> datetime:
    segments = _segments(name)
    candidates = []
    for i, (begin, offset) in enumerate(segments):
        end = segments[i + 1][0] if i + 1 < len(segments) else datetime.max.replace(tzinfo=UTC)
        aware = wall.replace(tzinfo=UTC) - offset  # the instant showing `wall` at this offset
        if begin <= aware < end:
            candidates.append(aware)
        elif aware < begin and i > 0:
            candidates.append(begin)  # the clock jumps past `wall` at this segment's start
    return min(candidates)


def oracle_series(walls: Iterator[datetime], name: str, start: datetime) -> list[datetime]:
    """Walls placed on the UTC line, from `start` on, each instant once, increasing."""
    end = start + YEARS
    out: list[datetime] = []
    for wall in walls:
        instant = oracle_resolve(wall, name)
        if instant > end:
            break
        if instant >= start and (not out or instant > out[-1]):
            out.append(instant)
    return out


def engine_series(trigger: WallClock | Every, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    instant = trigger.next_after(None)
    while instant is not None and instant <= end:
        assert instant.tzinfo is UTC
        assert not out or instant > out[-1]
        out.append(instant)
        instant = trigger.next_after(instant)
    return out


def check_queries(trigger: WallClock | Every, expected: list[datetime], probes: list[int]) -> None:
    """next_after(x) for arbitrary x (including instants in folds) is the first expected > x."""
    for seconds in probes:
        probe = expected[0] - timedelta(days=1) + timedelta(seconds=seconds)
        i = bisect.bisect_right(expected, probe)
        if i < len(expected):
            assert trigger.next_after(probe) == expected[i], probe


zones = st.sampled_from(ZONES)
starts = st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0)
)
# Hours around DST changes (0-4) are drawn often so gaps and folds are hit.
hours = st.one_of(st.integers(0, 4), st.integers(0, 23))
probes = st.lists(st.integers(0, 800 * 86400), min_size=1, max_size=8)


@st.composite
def cron_fields(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    minutes = sorted(draw(st.sets(st.sampled_from([0, 15, 30, 45, 59]), min_size=1, max_size=2)))
    hour_set = sorted(draw(st.sets(hours, min_size=1, max_size=2)))
    kwargs: dict[str, object] = {"byminute": minutes, "byhour": hour_set, "bysecond": 0}
    day, month, weekday = "*", "*", "*"
    which = draw(st.sampled_from(["none", "monthday", "weekday"]))
    if which == "monthday":
        days = sorted(draw(st.sets(st.integers(1, 31), min_size=1, max_size=3)))
        day, kwargs["bymonthday"] = ",".join(map(str, days)), days
    elif which == "weekday":
        weekdays = sorted(draw(st.sets(st.integers(0, 6), min_size=1, max_size=3)))
        # cron counts Sunday as 0, dateutil Monday as 0
        weekday = ",".join(str((w + 1) % 7) for w in weekdays)
        kwargs["byweekday"] = weekdays
    if draw(st.booleans()):
        months = sorted(draw(st.sets(st.integers(1, 12), min_size=1, max_size=6)))
        month, kwargs["bymonth"] = ",".join(map(str, months)), months
    minute = ",".join(map(str, minutes))
    hour = ",".join(map(str, hour_set))
    return f"{minute} {hour} {day} {month} {weekday}", kwargs


@SETTINGS
@given(zones, starts, cron_fields(), probes)
def test_cron_matches_rrule_oracle(
    name: str, start: datetime, fields: tuple[str, dict[str, object]], probe: list[int]
) -> None:
    expression, kwargs = fields
    zone = ZoneInfo(name)
    begin = oracle_resolve(start, name)
    walls = du.rrule(du.DAILY, dtstart=start - timedelta(days=1), cache=False, **kwargs)  # type: ignore[arg-type]
    expected = oracle_series(iter(walls), name, begin)
    trigger = WallClock(Cron(expression), zone, begin)
    assert engine_series(trigger, begin + YEARS) == expected
    if expected:
        check_queries(trigger, expected, probe)


@SETTINGS
@given(zones, starts, st.sampled_from([1, 7]), st.integers(1, 3), hours, probes)
def test_daily_and_weekly_match_stepped_dates(
    name: str, start: datetime, days: int, interval: int, hour: int, probe: list[int]
) -> None:
    anchor = start.replace(hour=hour)
    step = timedelta(days=days * interval)
    begin = oracle_resolve(anchor, name)
    walls = (anchor + k * step for k in range(2000))
    expected = oracle_series(walls, name, begin)
    trigger = WallClock(Steps(anchor, days * interval), ZoneInfo(name), begin)
    assert engine_series(trigger, begin + YEARS) == expected
    check_queries(trigger, expected, probe)


def _months(anchor: datetime, step: int) -> Iterator[datetime]:
    for k in range(400):
        year, month = divmod(anchor.month - 1 + k * step, 12)
        year += anchor.year
        if anchor.day <= calendar.monthrange(year, month + 1)[1]:
            yield anchor.replace(year=year, month=month + 1)


@SETTINGS
@given(
    zones,
    starts,
    st.sampled_from([1, 12]),
    st.integers(1, 3),
    st.integers(28, 31) | st.integers(1, 31),
    hours,
)
def test_monthly_and_yearly_skip_missing_days(
    name: str, start: datetime, months: int, interval: int, day: int, hour: int
) -> None:
    month = 2 if months == 12 and day == 29 else start.month
    try:
        anchor = start.replace(month=month, day=day, hour=hour)
    except ValueError:  # no such day in that month: 29 February 2028, or a 31-day January
        month = 2 if day == 29 else 1
        anchor = start.replace(year=2028, month=month, day=day, hour=hour)
    begin = oracle_resolve(anchor, name)
    expected = oracle_series(_months(anchor, months * interval), name, begin)
    trigger = WallClock(Steps(anchor, months * interval, months=True), ZoneInfo(name), begin)
    assert engine_series(trigger, begin + YEARS) == expected
    # RFC 5545 says the same as the stepped oracle.
    freq = du.MONTHLY if months == 1 else du.YEARLY
    rfc = du.rrule(freq, dtstart=anchor, interval=interval, cache=False)
    assert expected == oracle_series(iter(rfc), name, begin)


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]
    days = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
    if draw(st.booleans()):
        prefix = "" if freq in ("WEEKLY", "DAILY") else draw(st.sampled_from(["", "1", "-1", "2"]))
        chosen = draw(st.lists(st.sampled_from(days), min_size=1, max_size=2, unique=True))
        parts.append("BYDAY=" + ",".join(prefix + d for d in chosen))
    elif freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(f"BYMONTHDAY={draw(st.sampled_from([1, 15, 29, 30, 31, -1]))}")
    if freq == "YEARLY" and draw(st.booleans()):
        parts.append(f"BYMONTH={draw(st.integers(1, 12))}")
    if draw(st.booleans()):
        parts.append(
            f"BYHOUR={','.join(map(str, sorted(draw(st.sets(hours, min_size=1, max_size=2)))))}"
        )
    if freq == "WEEKLY" and draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(days))}")
    return ";".join(parts)


@SETTINGS
@given(zones, starts, rules(), probes)
def test_rrule_matches_dateutil_enumeration(
    name: str, start: datetime, text: str, probe: list[int]
) -> None:
    """The restart-near-the-query shortcut gives what dateutil gives walking from DTSTART."""
    walls = du.rrulestr(text, dtstart=start, cache=False)
    begin = oracle_resolve(start, name)
    expected = oracle_series(iter(walls), name, begin)
    trigger = WallClock(Rule(du.rrulestr(text, dtstart=start)), ZoneInfo(name), begin)
    try:
        series = engine_series(trigger, begin + YEARS)
    except Unbounded:  # none within the search bound (such a rule is refused at creation)
        assert expected == []  # and dateutil, walking on to year 9999, finds none here either
        return
    assert series == expected
    if expected:
        check_queries(trigger, expected, probe)


@SETTINGS
@given(
    st.datetimes(datetime(2025, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)),
    st.integers(1, 3 * 86400).map(lambda s: timedelta(seconds=s)),
    st.lists(st.integers(0, 400 * 86400), min_size=1, max_size=20),
)
def test_every_is_exact_and_increasing(
    start: datetime, step: timedelta, offsets: list[int]
) -> None:
    trigger = Every(start, step)
    instant = trigger.next_after(None)
    assert instant == start
    for _ in range(50):
        following = trigger.next_after(instant)
        assert following is not None
        assert following - instant == step  # type: ignore[operator]
        instant = following
    for seconds in offsets:
        probe = start - timedelta(days=1) + timedelta(seconds=seconds, microseconds=seconds % 7)
        found = trigger.next_after(probe)
        assert found is not None
        assert found > probe
        assert found == start or found - step <= probe
        assert (found - start) % step == timedelta(0)


@pytest.mark.parametrize("name", ZONES)
def test_oracle_sees_the_zone_transitions(name: str) -> None:
    """Guards the oracle itself: every zone but Tehran (no DST since 2022) changes offset."""
    changes = len(_segments(name)) - 1
    assert changes == 0 if name == "Asia/Tehran" else changes >= 6

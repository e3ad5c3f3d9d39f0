"""Every DST policy against an independent oracle, over every DST change of 2026 in 30 zones.

The oracle finds the instants that show a wall time from the zone's offsets alone (scanned by
tests/unit/test_trigger_oracle.py, not read from `fold`): none in a gap, two in a fold. Then a
policy is a plain choice among them: `shift` takes the oracle's first instant at or after the
wall time, `skip` none; `first`, `second` or `both` passes of a fold.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from onair.engine.dst import with_dst
from onair.engine.triggers import Cron, Steps, WallClock
from tests.unit.test_trigger_oracle import _segments, engine_series, oracle_resolve

ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Anchorage",
    "America/Halifax",
    "America/St_Johns",
    "America/Havana",
    "America/Santiago",
    "America/Miquelon",
    "America/Nuuk",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Kyiv",
    "Europe/Chisinau",
    "Asia/Beirut",
    "Asia/Jerusalem",
    "Africa/Cairo",
    "Australia/Sydney",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Norfolk",
    "Antarctica/Troll",
]
POLICIES = [(gap, fold) for gap in ("shift", "skip") for fold in ("first", "second", "both")]


def changes(name: str) -> list[tuple[datetime, timedelta, timedelta]]:
    """(instant, offset before, offset after) of each change of 2026."""
    segments = _segments(name)
    found = []
    for (_, before), (start, after) in zip(segments, segments[1:], strict=False):
        if start.year == 2026:
            found.append((start, before, after))
    return found


CASES = [
    pytest.param(name, when, before, after, id=f"{name}_{when:%m%d}")
    for name in ZONES
    for when, before, after in changes(name)
]


def showing(wall: datetime, name: str) -> list[datetime]:
    """Every instant at which the clock in `name` shows `wall`, by the scanned offsets."""
    segments = _segments(name)
    out = []
    for i, (begin, offset) in enumerate(segments):
        end = segments[i + 1][0] if i + 1 < len(segments) else datetime.max.replace(tzinfo=UTC)
        aware = wall.replace(tzinfo=UTC) - offset
        if begin <= aware < end:
            out.append(aware)
    return sorted(out)


def oracle(walls: list[datetime], name: str, gap: str, fold: str) -> list[datetime]:
    instants: set[datetime] = set()
    for wall in walls:
        shown = showing(wall, name)
        if not shown:
            if gap == "shift":
                instants.add(oracle_resolve(wall, name))
        elif len(shown) == 1 or fold == "first":
            instants.add(shown[0])
        elif fold == "second":
            instants.add(shown[-1])
        else:
            instants.update(shown)
    return sorted(instants)


def test_thirty_zones_each_change_their_clocks_in_2026() -> None:
    assert len(ZONES) == 30
    assert all(len(changes(name)) >= 1 for name in ZONES)


@pytest.mark.parametrize(("name", "when", "before", "after"), CASES)
def test_every_policy_matches_the_oracle(
    name: str, when: datetime, before: timedelta, after: timedelta
) -> None:
    zone = ZoneInfo(name)
    # Wall clock just before the change, read with the offset in force before it.
    edge = (when + before).replace(tzinfo=None)
    day, hour = edge.date(), edge.hour
    first_hour, last_hour = max(hour - 1, 0), min(hour + 2, 23)
    cron = Cron(f"*/15 {first_hour}-{last_hour} {day.day} {day.month} *")
    cron_walls = [
        datetime(day.year, day.month, day.day, h, m)
        for h in range(first_hour, last_hour + 1)
        for m in (0, 15, 30, 45)
    ]
    # A daily rule at a wall time inside the gap or the fold (the middle of the change).
    middle = edge + abs(after - before) / 2
    middle = middle.replace(second=0, microsecond=0)
    anchor = middle - timedelta(days=2)
    daily_walls = [anchor + timedelta(days=k) for k in range(10)]
    begin = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=3)
    end = begin + timedelta(days=7)
    for pattern, walls in ((cron, cron_walls), (Steps(anchor, 1), daily_walls)):
        for gap, fold in POLICIES:
            trigger = with_dst(WallClock(pattern, zone, begin), {"dst_gap": gap, "dst_fold": fold})
            expected = [i for i in oracle(walls, name, gap, fold) if begin <= i <= end]
            assert engine_series(trigger, end) == expected, (pattern, gap, fold)
            for instant in expected:  # queries from just before, and inside folds
                i = bisect.bisect_right(expected, instant - timedelta(seconds=1))
                assert trigger.next_after(instant - timedelta(seconds=1)) == expected[i]
                nxt = expected[i + 1] if i + 1 < len(expected) else None
                got = trigger.next_after(instant)
                assert got == nxt or (nxt is None and (got is None or got > end)), (
                    pattern,
                    gap,
                    fold,
                    instant,
                )

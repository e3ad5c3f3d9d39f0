"""Triggers as pure functions: named DST and calendar cases, comparing wall fields and fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from onair.engine.triggers import (
    Cron,
    Every,
    OneShot,
    Rule,
    Steps,
    WallClock,
    is_ambiguous,
    resolve,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_fields(instant: datetime, zone: str) -> tuple[int, int, int, int, int, int]:
    value = instant.astimezone(ZoneInfo(zone))
    return (value.month, value.day, value.hour, value.minute, value.fold, instant.tzinfo is UTC)


@pytest.mark.parametrize(
    ("zone", "wall", "expected_local", "fold"),
    [
        pytest.param(
            "Europe/Paris",
            datetime(2026, 3, 29, 2, 30),
            (3, 29, 3, 0),
            0,
            id="spring_gap_moved_to_gap_end",
        ),
        pytest.param(
            "Europe/Paris",
            datetime(2026, 3, 29, 2, 0),
            (3, 29, 3, 0),
            0,
            id="spring_gap_start_moved_to_gap_end",
        ),
        pytest.param(
            "Europe/Paris",
            datetime(2026, 3, 29, 3, 0),
            (3, 29, 3, 0),
            0,
            id="spring_gap_end_itself",
        ),
        pytest.param(
            "Europe/Paris",
            datetime(2026, 10, 25, 2, 30),
            (10, 25, 2, 30),
            0,
            id="autumn_fold_first_only",
        ),
        pytest.param(
            "America/New_York", datetime(2026, 3, 8, 2, 15), (3, 8, 3, 0), 0, id="new_york_gap"
        ),
        pytest.param(
            "America/New_York",
            datetime(2026, 11, 1, 1, 30),
            (11, 1, 1, 30),
            0,
            id="new_york_fold_first",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            datetime(2026, 10, 4, 2, 10),
            (10, 4, 2, 30),
            0,
            id="lord_howe_half_hour_gap",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            datetime(2026, 4, 5, 1, 45),
            (4, 5, 1, 45),
            0,
            id="lord_howe_half_hour_fold",
        ),
        pytest.param(
            "Europe/Dublin",
            datetime(2026, 3, 29, 1, 30),
            (3, 29, 2, 0),
            0,
            id="dublin_negative_dst_gap",
        ),
        pytest.param(
            "Europe/Dublin",
            datetime(2026, 10, 25, 1, 30),
            (10, 25, 1, 30),
            0,
            id="dublin_negative_dst_fold",
        ),
        pytest.param(
            "America/Santiago",
            datetime(2026, 9, 6, 0, 30),
            (9, 6, 1, 0),
            0,
            id="santiago_midnight_gap",
        ),
        pytest.param(
            "Pacific/Chatham", datetime(2026, 9, 27, 3, 0), (9, 27, 3, 45), 0, id="chatham_2_45_gap"
        ),
        pytest.param(
            "Europe/Warsaw", datetime(2026, 7, 1, 9, 0), (7, 1, 9, 0), 0, id="ordinary_summer_time"
        ),
    ],
)
def test_resolve(zone: str, wall: datetime, expected_local: tuple[int, ...], fold: int) -> None:
    instant = resolve(wall, ZoneInfo(zone))
    assert instant.tzinfo is UTC
    assert local_fields(instant, zone)[:5] == (*expected_local, fold)


def test_gap_end_is_the_transition_instant() -> None:
    assert resolve(datetime(2026, 3, 29, 2, 30), ZoneInfo("Europe/Paris")) == utc(2026, 3, 29, 1)


@pytest.mark.parametrize(
    ("wall", "ambiguous"),
    [
        pytest.param(datetime(2026, 10, 25, 2, 30), True, id="in_fold"),
        pytest.param(datetime(2026, 3, 29, 2, 30), False, id="in_gap"),
        pytest.param(datetime(2026, 10, 25, 3, 0), False, id="fold_end"),
    ],
)
def test_is_ambiguous(wall: datetime, ambiguous: bool) -> None:
    assert is_ambiguous(wall, ZoneInfo("Europe/Paris")) is ambiguous


PARIS = ZoneInfo("Europe/Paris")


def run(
    trigger: WallClock | Every | OneShot, n: int, after: datetime | None = None
) -> list[datetime]:
    out = []
    for _ in range(n):
        after = trigger.next_after(after)
        if after is None:
            break
        out.append(after)
    return out


def walls(instants: list[datetime], zone: ZoneInfo = PARIS) -> list[tuple[int, int, int, int, int]]:
    return [
        (
            i.astimezone(zone).month,
            i.astimezone(zone).day,
            i.astimezone(zone).hour,
            i.astimezone(zone).minute,
            i.astimezone(zone).fold,
        )
        for i in instants
    ]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        pytest.param(
            "30 2 * * *",
            datetime(2026, 3, 28),
            [(3, 28, 2, 30, 0), (3, 29, 3, 0, 0), (3, 30, 2, 30, 0)],
            id="daily_in_gap_moved_to_gap_end",
        ),
        pytest.param(
            "*/20 2 * * *",
            datetime(2026, 3, 29),
            [(3, 29, 3, 0, 0), (3, 30, 2, 0, 0)],
            id="gap_collapses_to_one_run",
        ),
        pytest.param(
            "30 2 * * *",
            datetime(2026, 10, 24),
            [(10, 24, 2, 30, 0), (10, 25, 2, 30, 0), (10, 26, 2, 30, 0)],
            id="autumn_fold_first_only",
        ),
        pytest.param(
            "0 * * * *",
            datetime(2026, 10, 25, 1),
            [(10, 25, 1, 0, 0), (10, 25, 2, 0, 0), (10, 25, 3, 0, 0)],
            id="hourly_cron_skips_repeated_hour",
        ),
        pytest.param(
            "0 9 * * MON-FRI",
            datetime(2026, 1, 2),
            [(1, 2, 9, 0, 0), (1, 5, 9, 0, 0), (1, 6, 9, 0, 0)],
            id="weekday_range",
        ),
        pytest.param(
            "@monthly",
            datetime(2026, 1, 15),
            [(2, 1, 0, 0, 0), (3, 1, 0, 0, 0)],
            id="macro_monthly",
        ),
        pytest.param(
            "0 0 29 2 *",
            datetime(2026, 1, 1),
            [(2, 29, 0, 0, 0), (2, 29, 0, 0, 0)],
            id="feb_29_leap_years_only",
        ),
    ],
)
def test_cron_wall_clock(expression: str, start: datetime, expected: list[tuple[int, ...]]) -> None:
    trigger = WallClock(Cron(expression), PARIS, resolve(start, PARIS))
    got = run(trigger, len(expected))
    assert walls(got) == expected
    if expression == "0 0 29 2 *":
        assert [i.year for i in got] == [2028, 2032]


def test_query_inside_second_pass_of_fold_skips_to_fold_end() -> None:
    """At 02:10 (second pass, UTC+1) the 02:30 of that morning already ran at its first pass."""
    trigger = WallClock(Cron("30 2 * * *"), PARIS, utc(2026, 1, 1))
    probe = datetime(2026, 10, 25, 2, 10, tzinfo=PARIS).replace(fold=1).astimezone(UTC)
    assert walls([trigger.next_after(probe)]) == [(10, 26, 2, 30, 0)]  # type: ignore[list-item]


def test_query_between_collapsed_gap_walls_does_not_repeat() -> None:
    trigger = WallClock(Cron("*/20 2 * * *"), PARIS, utc(2026, 1, 1))
    gap_end = utc(2026, 3, 29, 1)
    assert trigger.next_after(gap_end - timedelta(microseconds=1)) == gap_end
    assert walls([trigger.next_after(gap_end)]) == [(3, 30, 2, 0, 0)]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("anchor", "step", "months", "expected"),
    [
        pytest.param(
            datetime(2026, 1, 31, 9),
            1,
            True,
            [(1, 31), (3, 31), (5, 31), (7, 31), (8, 31)],
            id="monthly_31st_skips_short_months",
        ),
        pytest.param(
            datetime(2024, 2, 29, 9), 12, True, [(2, 29), (2, 29)], id="yearly_feb_29_leap_only"
        ),
        pytest.param(
            datetime(2026, 1, 30, 9),
            1,
            True,
            [(1, 30), (3, 30), (4, 30)],
            id="monthly_30th_skips_february",
        ),
        pytest.param(
            datetime(2026, 3, 27, 2, 30),
            1,
            False,
            [(3, 27), (3, 28), (3, 29), (3, 30)],
            id="daily_through_gap",
        ),
        pytest.param(
            datetime(2026, 3, 22, 2, 30),
            7,
            False,
            [(3, 22), (3, 29), (4, 5)],
            id="weekly_through_gap",
        ),
    ],
)
def test_steps(anchor: datetime, step: int, months: bool, expected: list[tuple[int, int]]) -> None:
    trigger = WallClock(Steps(anchor, step, months), PARIS, resolve(anchor, PARIS))
    got = run(trigger, len(expected))
    assert [(w[0], w[1]) for w in walls(got)] == expected
    if anchor.month == 2:
        assert [i.year for i in got] == [2024, 2028]


def test_start_and_until_are_inclusive() -> None:
    start = utc(2026, 5, 1, 7)  # 09:00 in Paris
    trigger = WallClock(Steps(datetime(2026, 5, 1, 9), 1), PARIS, start, until=utc(2026, 5, 3, 7))
    assert run(trigger, 5) == [utc(2026, 5, 1, 7), utc(2026, 5, 2, 7), utc(2026, 5, 3, 7)]
    assert trigger.next_after(utc(2020, 1, 1)) == start


def test_cron_start_between_matches() -> None:
    trigger = WallClock(Cron("0 9 * * *"), PARIS, utc(2026, 5, 1, 7, 0, 1))
    assert trigger.next_after(None) == utc(2026, 5, 2, 7)


def test_rrule_last_friday() -> None:
    rule = Rule(rrulestr("FREQ=MONTHLY;BYDAY=-1FR", dtstart=datetime(2026, 1, 1, 20)))
    trigger = WallClock(rule, PARIS, resolve(datetime(2026, 1, 1, 20), PARIS))
    assert [(w[0], w[1], w[2]) for w in walls(run(trigger, 4))] == [
        (1, 30, 20),
        (2, 27, 20),
        (3, 27, 20),
        (4, 24, 20),
    ]
    # Far from the start the rule restarts near the query and still agrees.
    assert trigger.next_after(utc(2030, 6, 1)) == datetime(
        2030, 6, 28, 20, tzinfo=PARIS
    ).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "step", "after", "expected"),
    [
        pytest.param(
            utc(2026, 1, 1), timedelta(minutes=90), None, utc(2026, 1, 1), id="first_is_start"
        ),
        pytest.param(
            utc(2026, 1, 1),
            timedelta(minutes=90),
            utc(2026, 1, 1),
            utc(2026, 1, 1, 1, 30),
            id="strictly_after",
        ),
        pytest.param(
            utc(2026, 1, 1),
            timedelta(minutes=90),
            utc(2026, 1, 1, 2),
            utc(2026, 1, 1, 3),
            id="between_ticks",
        ),
        pytest.param(
            utc(2026, 3, 29, 0, 30),
            timedelta(hours=1),
            utc(2026, 3, 29, 0, 30),
            utc(2026, 3, 29, 1, 30),
            id="hourly_is_absolute_across_gap",
        ),
    ],
)
def test_every(
    start: datetime, step: timedelta, after: datetime | None, expected: datetime
) -> None:
    assert Every(start, step).next_after(after) == expected


def test_every_until_inclusive() -> None:
    trigger = Every(utc(2026, 1, 1), timedelta(hours=1), until=utc(2026, 1, 1, 2))
    assert run(trigger, 10) == [utc(2026, 1, 1), utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)]


def test_one_shot() -> None:
    trigger = OneShot(utc(2026, 1, 1))
    assert trigger.next_after(None) == utc(2026, 1, 1)
    assert trigger.next_after(utc(2025, 12, 31)) == utc(2026, 1, 1)
    assert trigger.next_after(utc(2026, 1, 1)) is None

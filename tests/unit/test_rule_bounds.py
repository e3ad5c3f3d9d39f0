"""Every rule is evaluated within a bound: degenerate rules are refused, quickly, with a message
naming the field; condition fields stay inside what the calendar and the store hold; and any
accepted rule gives its next instant within the bound (a Hypothesis property)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
from dateutil import rrule as dateutil_rrule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onair.engine import triggers
from onair.engine.conditions import check_floor, first_due, parse_condition
from onair.engine.preview import preview, upcoming
from onair.engine.triggers import (
    HORIZON_YEARS,
    MAX_CANDIDATES,
    Trigger,
    Unbounded,
    WallClock,
    _BoundedRRule,
    search_budget,
)
from onair.errors import InvalidParameters

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC)
# seconds: the bound makes a refusal take ~100 ms at most (docs/scheduling.md); a test on a
# loaded 2-core machine allows 1 s, the time the issue gives any answer, so it fails on a
# search that is unbounded, not on a busy neighbour.
REFUSAL_BUDGET = 1.0


def refusal(type_: str, parameters: dict[str, Any]) -> tuple[dict[str | None, str], float]:
    """The problems a new task with this condition is refused with, and how long that took
    (the best of three: a loaded machine may stall any one of them)."""
    times = []
    for _ in range(3):
        began = time.perf_counter()
        with pytest.raises(InvalidParameters) as caught:
            _admit(type_, parameters)
        times.append(time.perf_counter() - began)
    return {p.key: p.message for p in caught.value.problems}, min(times)


def _admit(type_: str, parameters: dict[str, Any]) -> datetime:
    condition = parse_condition(type_, parameters)
    return first_due(condition, condition.trigger(NOW), NOW)


def rrule(rule: str, **more: Any) -> dict[str, Any]:
    return {"rule": rule, "start": "2026-12-03T00:00:00", **more}


# Rules that never (or not within the bound) give an occurrence. Before the bound, each took
# from 0.2 s (YEARLY) to 5.8 s (MINUTELY) of CPU to refuse, INTERVAL=0 never ended.
NEVER = [
    pytest.param("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", id="daily_feb_30"),
    pytest.param("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", id="secondly_feb_30"),
    pytest.param("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31", id="hourly_feb_31"),
    pytest.param("FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31", id="minutely_april_31"),
    pytest.param("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", id="yearly_feb_30"),
    pytest.param("FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30", id="monthly_feb_30"),
    pytest.param("FREQ=DAILY;INTERVAL=7;BYDAY=MO", id="interval_never_aligned"),
    pytest.param("FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6", id="week_53_in_june"),
    pytest.param("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", id="28_years_day_by_day"),
    pytest.param("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", id="leap_day_off_by_a_year"),
]


@pytest.mark.parametrize("rule", NEVER)
def test_a_rule_with_no_occurrence_within_the_bound_is_refused_quickly(rule: str) -> None:
    # From March 2044, 29 February is next a Monday in 2072: 10,227 days, past the cap.
    start = "2044-03-01T00:00:00" if "BYMONTHDAY=29;BYDAY=MO" in rule else "2026-12-03T00:00:00"
    problems, elapsed = refusal("rrule", rrule(rule, start=start))
    message = problems["condition.parameters.rule"]
    assert "within the search bound" in message
    assert f"{HORIZON_YEARS} years" in message
    assert elapsed < REFUSAL_BUDGET, f"refused in {elapsed:.3f} s"


STATIC = [
    pytest.param("FREQ=YEARLY;INTERVAL=0", "INTERVAL takes no 0", id="interval_zero"),
    pytest.param("FREQ=DAILY;INTERVAL=-1", "INTERVAL must be between 1", id="interval_negative"),
    pytest.param("FREQ=YEARLY;INTERVAL=51", "between 1 and 50", id="interval_past_horizon"),
    pytest.param(
        "FREQ=DAILY;INTERVAL=100000000000000000000", "INTERVAL must be", id="interval_huge"
    ),
    pytest.param("FREQ=YEARLY;BYSETPOS=1", "BYSETPOS needs another", id="bysetpos_alone"),
    pytest.param("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY=32 is out of range", id="day_32"),
    pytest.param("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY takes no 0", id="day_0"),
    pytest.param("FREQ=YEARLY;BYMONTH=13", "BYMONTH=13", id="month_13"),
    pytest.param("FREQ=YEARLY;BYYEARDAY=367", "BYYEARDAY=367", id="yearday_367"),
    pytest.param("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO=54", id="week_54"),
    pytest.param("FREQ=YEARLY;BYDAY=+54MO", "BYDAY=+54MO", id="nth_weekday_54"),
    pytest.param("FREQ=SECONDLY;BYHOUR=9", "second by second", id="secondly_by_hour"),
    pytest.param(
        "FREQ=MINUTELY;BYHOUR=9;BYMONTHDAY=1",
        "FREQ=MINUTELY with BYHOUR and BYMONTHDAY is searched minute by minute (1440 steps",
        id="minutely_by_hour_on_some_days",
    ),
    pytest.param(
        "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1,2,3,4,5,6,7,8,9,10;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,"
        "12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
        "17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,"
        "46,47,48,49,50,51,52,53,54,55,56,57,58,59",
        "instants in one YEARLY period",
        id="too_dense_per_period",
    ),
    pytest.param("FREQ=DAILY;COUNT=9223372036854775808", "COUNT must be", id="count_past_int64"),
    pytest.param(
        "FREQ=DAILY;UNTIL=99991231T235959Z",
        "UNTIL 9999-12-31T23:59:59+00:00 is out",
        id="until_past_9999",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("rule", "fragment"), STATIC)
def test_parts_that_make_no_series_are_refused(rule: str, fragment: str) -> None:
    problems, elapsed = refusal("rrule", rrule(rule))
    assert fragment in problems["condition.parameters.rule"]
    assert elapsed < REFUSAL_BUDGET


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param("0 0 30 2 *", id="feb_30"),
        pytest.param("0 0 31 4,6,9,11 *", id="31_in_30_day_months"),
        pytest.param("* * 31 2 1#5", id="feb_31_fifth_monday"),
    ],
)
def test_a_cron_expression_that_matches_no_date_is_refused(expression: str) -> None:
    problems, elapsed = refusal("cron", {"expression": expression})
    assert "matches no date" in problems["condition.parameters.expression"]
    assert elapsed < REFUSAL_BUDGET


OUT_OF_RANGE = [
    pytest.param("at", {"datetime": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"}, "datetime",
                 id="year_1_east_of_utc"),
    pytest.param("at", {"datetime": "9999-12-31T20:00:00", "timezone": "America/Los_Angeles"},
                 "datetime", id="year_9999_west_of_utc"),
    pytest.param("at", {"datetime": "0001-01-01T03:00:00+05:00"}, "datetime",
                 id="aware_offset_before_year_1"),
    pytest.param("at", {"datetime": "9999-12-31T23:00:00-05:00"}, "datetime",
                 id="aware_offset_after_9999"),
    pytest.param("recurring", {"start": "0001-01-01T00:00", "frequency": "daily",
                               "timezone": "Pacific/Kiritimati"}, "start", id="series_start"),
    pytest.param("cron", {"expression": "0 0 * * *", "until": "9999-12-31T23:59:59",
                          "timezone": "Pacific/Pago_Pago"}, "until", id="until"),
    pytest.param("interval", {"every": 60, "count": 2**63}, "count", id="count_past_int64"),
    pytest.param("interval", {"every": "P20000D"}, "every", id="every_past_horizon"),
    pytest.param("interval", {"every": 1e20}, "every", id="every_past_timedelta"),
    pytest.param("recurring", {"start": "2026-01-01T00:00", "frequency": "yearly",
                               "interval": 10**30}, "interval", id="interval_huge"),
    pytest.param("recurring", {"start": "2026-01-01T00:00", "frequency": "hourly",
                               "interval": 50 * 366 * 24 + 1}, "interval", id="hours_past_horizon"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "parameters", "field"), OUT_OF_RANGE)
def test_fields_beyond_what_the_calendar_or_store_hold_are_refused(
    type_: str, parameters: dict[str, Any], field: str
) -> None:
    problems, _ = refusal(type_, parameters)
    assert f"condition.parameters.{field}" in problems, problems


def test_the_same_series_written_daily_is_accepted() -> None:
    """What `minutely_by_hour_on_some_days` is refused for: each minute of 09:00 on the 1st,
    written as the refusal says, is found at once, as is the next one a month later."""
    minutes = ",".join(str(m) for m in range(60))
    rule = f"FREQ=DAILY;BYMONTHDAY=1;BYHOUR=9;BYMINUTE={minutes}"
    assert _admit("rrule", rrule(rule)) == datetime(2027, 1, 1, 9, tzinfo=UTC)
    trigger = parse_condition("rrule", rrule(rule)).trigger(NOW)
    assert trigger.next_after(datetime(2027, 1, 1, 9, 59, tzinfo=UTC)) == datetime(
        2027, 2, 1, 9, tzinfo=UTC
    )


def test_the_edges_of_the_range_are_accepted() -> None:
    early = parse_condition("at", {"datetime": "0001-01-02T09:00:00+09:00"})
    assert early.trigger(NOW).next_after(None) == datetime(1, 1, 2, tzinfo=UTC)
    late = parse_condition("at", {"datetime": "9999-12-29T12:00:00-05:00"})
    assert late.trigger(NOW).next_after(None) == datetime(9999, 12, 29, 17, tzinfo=UTC)


def test_the_floor_of_how_often_a_series_runs() -> None:
    fast = parse_condition("interval", {"every": "PT0.5S"})
    with pytest.raises(InvalidParameters) as caught:
        check_floor(fast, timedelta(seconds=1))
    (problem,) = caught.value.problems
    assert problem.key == "condition.parameters.every"
    assert problem.message == "every must be at least 1 s, the floor of how often a series may run"
    check_floor(parse_condition("interval", {"every": "PT1S"}), timedelta(seconds=1))
    with pytest.raises(InvalidParameters):
        upcoming(fast, NOW, 3)  # a preview refuses what creating the task would


def test_the_bounded_iteration_is_dateutils_own() -> None:
    """The bound swaps only the bookkeeping class dateutil's iteration looks up; if dateutil
    renames it, this fails rather than the bound silently lapsing."""
    assert _BoundedRRule._iter.__code__ is dateutil_rrule.rrule._iter.__code__
    assert "_iterinfo" in dateutil_rrule.rrule._iter.__code__.co_names
    assert "_rrule__mod_distance" in dateutil_rrule.rrule._iter.__code__.co_names


def test_a_stored_rule_past_the_bound_raises_instead_of_walking_to_9999() -> None:
    condition = parse_condition("rrule", rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"))
    trigger = condition.trigger(NOW)
    assert isinstance(trigger, WallClock)
    assert trigger.next_after(None) == datetime(2044, 2, 29, tzinfo=UTC)
    assert trigger.next_after(datetime(2044, 2, 29, tzinfo=UTC)) == datetime(
        2072, 2, 29, tzinfo=UTC
    )
    began = time.perf_counter()
    ended = trigger.next_after(datetime(9990, 1, 1, tzinfo=UTC))  # the calendar ends first
    assert ended is None
    assert time.perf_counter() - began < REFUSAL_BUDGET


def test_until_ends_a_search_without_an_error() -> None:
    condition = parse_condition(
        "rrule",
        rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", until="2030-01-01T00:00:00"),
    )
    assert condition.trigger(NOW).next_after(None) is None  # over, not unbounded


def test_a_preview_of_a_sparse_rule_stops_at_its_budget() -> None:
    # One occurrence every 28 years or so, searched day by day: each costs ~10,000 periods, so
    # a preview of 50 of them stops at its budget with what it found, in bounded time.
    condition = parse_condition("rrule", rrule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"))
    began = time.perf_counter()
    items = upcoming(condition, NOW, 50)
    assert 1 <= len(items) < 50
    assert items[0].utc == datetime(2044, 2, 29, tzinfo=UTC)
    assert time.perf_counter() - began < 4 * REFUSAL_BUDGET


# The property ------------------------------------------------------------------------------

FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]
PARTS = {
    "BYMONTH": st.integers(-1, 14),
    "BYMONTHDAY": st.integers(-32, 32),
    "BYYEARDAY": st.integers(-367, 367),
    "BYWEEKNO": st.integers(-54, 54),
    "BYHOUR": st.integers(0, 23),
    "BYMINUTE": st.integers(0, 59),
    "BYSECOND": st.integers(0, 59),
    "BYSETPOS": st.integers(-3, 3),
}


@st.composite
def rules(draw: st.DrawFn) -> str:
    parts = [f"FREQ={draw(st.sampled_from(FREQS))}"]
    interval = draw(st.one_of(st.integers(-1, 12), st.integers(13, 10**6)))
    parts.append(f"INTERVAL={interval}")
    for name in draw(st.lists(st.sampled_from(sorted(PARTS)), max_size=3, unique=True)):
        values = draw(st.lists(PARTS[name], min_size=1, max_size=3, unique=True))
        parts.append(f"{name}={','.join(map(str, values))}")
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(["MO", "TU", "FR", "1MO", "-1FR", "5SU"]),
                             min_size=1, max_size=2, unique=True))  # fmt: skip
        parts.append(f"BYDAY={','.join(days)}")
    return ";".join(parts)


starts = st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1)).map(
    lambda value: value.replace(microsecond=0).isoformat()
)


RULE_EXAMPLES = int(os.environ.get("ONAIR_FUZZ_RULES", "200"))
"""Rules the property is tried on: 200 in CI (a few seconds); `make fuzz` tries 5,000."""


@settings(
    max_examples=RULE_EXAMPLES,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(rule=rules(), start=starts, zone=st.sampled_from(["UTC", "Europe/Paris", "Pacific/Chatham"]))
def test_any_accepted_rule_gives_its_next_instant_within_the_bound(
    rule: str, start: str, zone: str
) -> None:
    """Accepted means: it parses, and `first_due` finds its first instant (what `POST /tasks`
    does). Then that instant, and the one after it, come within the bound: an instant, the
    end of the series, or `Unbounded`; never a hang, an overflow or another error."""
    began = time.perf_counter()
    try:
        condition = parse_condition("rrule", {"rule": rule, "start": start, "timezone": zone})
        trigger = condition.trigger(NOW)
        first = first_due(condition, trigger, NOW)
    except InvalidParameters as error:
        refused = error
    else:
        refused = None
    if refused is not None:
        assert all(p.key and p.key.startswith("condition.parameters") for p in refused.problems)
        assert time.perf_counter() - began < 1.0
        return
    assert first >= NOW
    assert first.tzinfo is UTC
    begin = max(NOW, datetime.fromisoformat(start).replace(tzinfo=UTC) - timedelta(days=1))
    assert first < begin + timedelta(days=366 * (HORIZON_YEARS + 1))
    following = _next_or_far(trigger, first)
    if following is not None:
        assert following > first
    _next_or_far(trigger, first + timedelta(hours=1, minutes=1))  # past the end of its hour
    assert time.perf_counter() - began < 2.0


def _next_or_far(trigger: Trigger, instant: datetime) -> datetime | None:
    """The next instant after `instant`; when that is past the bound, it must really be far:
    not one that a search ten times as long finds within a year (accepted, then failing)."""
    try:
        return trigger.next_after(instant)
    except Unbounded:
        pass
    with patch.object(triggers, "MAX_CANDIDATES", 10 * MAX_CANDIDATES):
        try:
            further = trigger.next_after(instant)
        except Unbounded:
            return None
    assert further is None or further - instant > timedelta(days=366), (instant, further)
    return None


def test_the_bound_is_documented() -> None:
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "scheduling.md").read_text()
    assert f"{HORIZON_YEARS} years" in text
    assert f"{MAX_CANDIDATES:,}" in text


def test_a_nested_budget_spends_the_outer_one() -> None:
    """The dashboard's timeline draws every task's preview from one budget: once it is spent,
    a preview answers nothing (the page shows each task's next instant instead)."""
    sparse = parse_condition("rrule", rrule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO"))
    with search_budget(7_000):  # one first occurrence costs ~6,300 candidates
        assert len(preview(sparse, NOW, 1)) == 1
        assert preview(sparse, NOW, 1) == []  # what is left does not reach 2044
    assert len(preview(sparse, NOW, 1)) == 1  # outside, a preview has its own budget again


def test_a_preview_stops_at_until() -> None:
    hourly = parse_condition("rrule", rrule("FREQ=HOURLY"))
    items = preview(hourly, NOW, 200, until=NOW + timedelta(hours=24))
    assert len(items) == 35  # from DTSTART, 00:00 on the 3rd, to 10:00 on the 4th, inclusive
    assert items[-1].utc == NOW + timedelta(hours=24)


def test_a_start_with_a_fraction_of_a_second_keeps_its_first_occurrence() -> None:
    condition = parse_condition("rrule", rrule("FREQ=HOURLY", start="2026-12-03T11:00:00.5"))
    assert condition.trigger(NOW).next_after(None) == datetime(2026, 12, 3, 11, tzinfo=UTC)


CRON_FIELDS = [
    st.sampled_from(["*", "0", "*/7", "5,35", "59"]),
    st.sampled_from(["*", "0", "9-17", "*/5", "23"]),
    st.sampled_from(["*", "1", "29", "30", "31", "L", "15-31/4"]),
    st.sampled_from(["*", "2", "4,6,9,11", "1-3", "*/2"]),
    st.sampled_from(["*", "1", "MON-FRI", "0,6", "5#5", "1L"]),
]
instants = st.one_of(
    st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59)),
    st.sampled_from([datetime(1, 1, 1), datetime(1, 1, 2, 12), datetime(9999, 12, 31, 23)]),
).map(lambda value: value.isoformat())
ZONES = st.sampled_from(["UTC", "Asia/Tokyo", "America/Los_Angeles", "Pacific/Kiritimati"])


@st.composite
def conditions(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["at", "recurring", "cron", "interval"]))
    parameters: dict[str, Any] = {"timezone": draw(ZONES)}
    if kind == "at":
        parameters["datetime"] = draw(instants)
    elif kind == "cron":
        parameters["expression"] = " ".join(draw(field) for field in CRON_FIELDS)
    elif kind == "recurring":
        parameters["frequency"] = draw(st.sampled_from(["hourly", "daily", "monthly", "yearly"]))
        parameters["interval"] = draw(st.one_of(st.integers(-1, 30), st.integers(0, 2**70)))
    else:
        parameters["every"] = draw(
            st.one_of(st.floats(allow_nan=True), st.integers(-10, 2**70), st.just("P18301D"))
        )
    if kind != "at":
        for name in ("start", "until"):
            if draw(st.booleans()):
                parameters[name] = draw(instants)
        if draw(st.booleans()):
            parameters["count"] = draw(st.one_of(st.integers(0, 5), st.just(2**63)))
    return kind, parameters


@settings(max_examples=RULE_EXAMPLES, deadline=timedelta(seconds=2))
@given(condition=conditions())
def test_any_accepted_condition_gives_its_first_instant_within_the_bound(
    condition: tuple[str, dict[str, Any]],
) -> None:
    """Every other condition type, with instants to the calendar's edges and integers beyond
    64 bits: refused with a problem keyed under `condition.parameters`, or its first instant
    (and a preview of the next ones) comes at once, never another error."""
    kind, parameters = condition
    began = time.perf_counter()
    try:
        first = _admit(kind, parameters)
        items = upcoming(parse_condition(kind, parameters), NOW, 5)
    except InvalidParameters as error:
        refused = error
    else:
        refused = None
    if refused is not None:
        assert all(p.key and p.key.startswith("condition.parameters") for p in refused.problems)
    else:
        assert first.tzinfo is UTC
        assert items[0].utc == first
        assert [i.utc for i in items] == sorted({i.utc for i in items})
    assert time.perf_counter() - began < 1.0


def test_cron_keeps_its_minutes_far_ahead() -> None:
    """Found by the property above: in 2515, a tick before 00:01 was 00:01 to croniter's float
    timestamps, and the preview skipped it."""
    condition = parse_condition("cron", {"expression": "* * * * *", "start": "2515-01-01T00:00:30"})
    assert _admit("cron", {"expression": "* * * * *", "start": "2515-01-01T00:00:30"}) == datetime(
        2515, 1, 1, 0, 1, tzinfo=UTC
    )
    assert [i.utc.minute for i in upcoming(condition, NOW, 3)] == [1, 2, 3]

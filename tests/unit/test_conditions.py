"""Condition parameters: validation at creation, keyed problems, and the triggers they build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from onair.engine.conditions import CONDITIONS, Condition, parse_condition
from onair.errors import InvalidParameters, UnknownCondition

CREATED = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def series(condition: Condition, n: int) -> list[datetime]:
    trigger = condition.trigger(CREATED)
    out: list[datetime] = []
    instant = trigger.next_after(None)
    while instant is not None and len(out) < n:
        out.append(instant)
        instant = trigger.next_after(instant)
    return out


def local(instants: list[datetime], zone: str) -> list[str]:
    return [i.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M%z") for i in instants]


def test_registry_names() -> None:
    assert sorted(CONDITIONS) == ["at", "cron", "interval", "now", "recurring", "rrule"]


@pytest.mark.parametrize(
    ("type_", "parameters", "key", "fragment"),
    [
        pytest.param(
            "at",
            {"datetime": "2026-01-01T00:00", "timezone": "Mars/Base"},
            "timezone",
            "Mars/Base",
            id="at_unknown_zone",
        ),
        pytest.param(
            "cron",
            {"expression": "61 * * * *", "timezone": "UTC"},
            "expression",
            "out of range",
            id="cron_out_of_range",
        ),
        pytest.param(
            "cron",
            {"expression": "* * * *", "timezone": "UTC"},
            "expression",
            "expected 5 fields",
            id="cron_four_fields",
        ),
        pytest.param(
            "cron",
            {"expression": "0 0 * * * *", "timezone": "UTC"},
            "expression",
            "got 6",
            id="cron_seconds_field_refused",
        ),
        pytest.param(
            "cron",
            {"expression": "0 0 30 2 *", "timezone": "UTC"},
            "expression",
            "matches no date",
            id="cron_never_matches",
        ),
        pytest.param(
            "rrule",
            {"rule": "FREQ=FOO", "start": "2026-01-01T09:00", "timezone": "UTC"},
            "rule",
            "FOO",
            id="rrule_bad_freq",
        ),
        pytest.param(
            "rrule",
            {"rule": "BYDAY=MO", "start": "2026-01-01T09:00", "timezone": "UTC"},
            "rule",
            "FREQ is required",
            id="rrule_no_freq",
        ),
        pytest.param(
            "recurring",
            {"start": "2026-01-01T09:00", "timezone": "UTC", "frequency": "daily", "interval": 0},
            "interval",
            "greater than or equal to 1",
            id="interval_below_one",
        ),
        pytest.param(
            "recurring",
            {"start": "2026-01-01T09:00", "timezone": "UTC", "frequency": "daily", "count": 0},
            "count",
            "greater than or equal to 1",
            id="count_below_one",
        ),
        pytest.param(
            "recurring",
            {"start": "2026-01-01T09:00", "timezone": "UTC", "frequency": "fortnightly"},
            "frequency",
            "daily",
            id="unknown_frequency",
        ),
        pytest.param(
            "recurring",
            {
                "start": "2026-01-01T09:00",
                "timezone": "UTC",
                "frequency": "daily",
                "until": "2025-12-31T09:00",
            },
            "until",
            "before start",
            id="until_before_start",
        ),
        pytest.param("interval", {"every": 0}, "every", "longer than zero", id="every_zero"),
        pytest.param(
            "interval", {"every": "-PT5M"}, "every", "longer than zero", id="every_negative"
        ),
        pytest.param(
            "interval", {"every": "P1M"}, "every", "no fixed length", id="every_in_months_refused"
        ),
    ],
)
def test_invalid_parameters(
    type_: str, parameters: dict[str, Any], key: str, fragment: str
) -> None:
    with pytest.raises(InvalidParameters) as caught:
        parse_condition(type_, parameters)
    problems = {p.key: p.message for p in caught.value.problems}
    assert fragment in problems[f"condition.parameters.{key}"]


def test_unknown_type() -> None:
    with pytest.raises(UnknownCondition):
        parse_condition("sometimes", {})


@pytest.mark.parametrize(
    ("type_", "parameters", "limit"),
    [
        pytest.param("now", {}, None, id="now"),
        pytest.param("at", {"datetime": "2026-05-01T09:00"}, None, id="at"),
        pytest.param("interval", {"every": 60, "count": 3}, 3, id="interval_count"),
        pytest.param("cron", {"expression": "@daily", "timezone": "UTC"}, None, id="cron_no_count"),
        pytest.param(
            "rrule",
            {
                "rule": "FREQ=DAILY;COUNT=4",
                "start": "2026-01-01T09:00",
                "timezone": "UTC",
                "count": 9,
            },
            4,
            id="rrule_count_in_rule_stricter",
        ),
        pytest.param(
            "rrule",
            {
                "rule": "FREQ=DAILY;COUNT=4",
                "start": "2026-01-01T09:00",
                "timezone": "UTC",
                "count": 2,
            },
            2,
            id="rrule_count_parameter_stricter",
        ),
    ],
)
def test_limit(type_: str, parameters: dict[str, Any], limit: int | None) -> None:
    assert parse_condition(type_, parameters).limit == limit


def test_zone() -> None:
    assert parse_condition("now", {}).zone == ZoneInfo("UTC")
    assert parse_condition(
        "cron", {"expression": "@daily", "timezone": "Asia/Tehran"}
    ).zone == ZoneInfo("Asia/Tehran")


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"datetime": "2026-03-29T02:30", "timezone": "Europe/Paris"},
            "2026-03-29 03:00+0200",
            id="naive_in_gap_moved_to_gap_end",
        ),
        pytest.param(
            {"datetime": "2026-10-25T02:30", "timezone": "Europe/Paris"},
            "2026-10-25 02:30+0200",
            id="naive_in_fold_first",
        ),
        pytest.param(
            {"datetime": "2026-10-25T02:30+01:00", "timezone": "Europe/Paris"},
            "2026-10-25 02:30+0100",
            id="aware_taken_as_is",
        ),
        pytest.param(
            {"datetime": "2026-05-01T09:00"}, "2026-05-01 11:00+0200", id="naive_defaults_to_utc"
        ),
    ],
)
def test_at(parameters: dict[str, Any], expected: str) -> None:
    assert local(series(parse_condition("at", parameters), 2), "Europe/Paris") == [expected]


@pytest.mark.parametrize(
    ("type_", "parameters", "zone", "expected"),
    [
        pytest.param(
            "recurring",
            {"start": "2026-03-28T02:30", "timezone": "Europe/Paris", "frequency": "daily"},
            "Europe/Paris",
            ["2026-03-28 02:30+0100", "2026-03-29 03:00+0200", "2026-03-30 02:30+0200"],
            id="daily_spring_gap",
        ),
        pytest.param(
            "recurring",
            {
                "start": "2026-03-29T00:30",
                "timezone": "Europe/Paris",
                "frequency": "hourly",
                "interval": 1,
            },
            "Europe/Paris",
            ["2026-03-29 00:30+0100", "2026-03-29 01:30+0100", "2026-03-29 03:30+0200"],
            id="hourly_is_absolute",
        ),
        pytest.param(
            "recurring",
            {
                "start": "2026-01-31T09:00",
                "timezone": "Europe/Warsaw",
                "frequency": "monthly",
                "interval": 1,
            },
            "Europe/Warsaw",
            ["2026-01-31 09:00+0100", "2026-03-31 09:00+0200", "2026-05-31 09:00+0200"],
            id="monthly_31st",
        ),
        pytest.param(
            "recurring",
            {
                "start": "2026-01-05T09:00:00+00:00",
                "timezone": "Europe/Warsaw",
                "frequency": "weekly",
                "interval": 2,
            },
            "Europe/Warsaw",
            ["2026-01-05 10:00+0100", "2026-01-19 10:00+0100", "2026-02-02 10:00+0100"],
            id="aware_start_read_as_wall_time",
        ),
        pytest.param(
            "recurring",
            {
                "start": "2026-01-01T09:00",
                "timezone": "UTC",
                "frequency": "daily",
                "until": "2026-01-02T09:00",
            },
            "UTC",
            ["2026-01-01 09:00+0000", "2026-01-02 09:00+0000"],
            id="until_inclusive",
        ),
        pytest.param(
            "cron",
            {"expression": "0 * * * *", "timezone": "UTC"},
            "UTC",
            ["2026-03-01 13:00+0000", "2026-03-01 14:00+0000"],
            id="cron_starts_at_creation",
        ),
        pytest.param(
            "cron",
            {
                "expression": "0 9 * * sat,sun",
                "timezone": "America/New_York",
                "start": "2026-03-07T00:00",
            },
            "America/New_York",
            ["2026-03-07 09:00-0500", "2026-03-08 09:00-0400", "2026-03-14 09:00-0400"],
            id="cron_weekday_names",
        ),
        pytest.param(
            "rrule",
            {
                "rule": "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
                "start": "2026-03-03T20:00",
                "timezone": "Europe/Dublin",
            },
            "Europe/Dublin",
            ["2026-03-03 20:00+0000", "2026-03-17 20:00+0000", "2026-03-31 20:00+0100"],
            id="rrule_biweekly",
        ),
        pytest.param(
            "rrule",
            {
                "rule": "FREQ=DAILY;UNTIL=20260103T090000",
                "start": "2026-01-01T09:00",
                "timezone": "UTC",
            },
            "UTC",
            ["2026-01-01 09:00+0000", "2026-01-02 09:00+0000", "2026-01-03 09:00+0000"],
            id="rrule_until_in_rule",
        ),
        pytest.param(
            "interval",
            {"every": "PT90M", "start": "2026-03-29T01:00", "timezone": "Europe/Paris"},
            "Europe/Paris",
            ["2026-03-29 01:00+0100", "2026-03-29 03:30+0200", "2026-03-29 05:00+0200"],
            id="interval_absolute_across_gap",
        ),
        pytest.param(
            "interval",
            {"every": 3600},
            "UTC",
            ["2026-03-01 12:00+0000", "2026-03-01 13:00+0000"],
            id="interval_seconds_from_creation",
        ),
    ],
)
def test_series(type_: str, parameters: dict[str, Any], zone: str, expected: list[str]) -> None:
    assert local(series(parse_condition(type_, parameters), len(expected)), zone) == expected


def test_interval_from_creation_keeps_creation_seconds() -> None:
    got = series(parse_condition("interval", {"every": "PT1M"}), 2)
    assert got == [CREATED, CREATED + timedelta(minutes=1)]


def test_cron_macros() -> None:
    for macro in ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight"):
        assert series(parse_condition("cron", {"expression": macro, "timezone": "UTC"}), 1)

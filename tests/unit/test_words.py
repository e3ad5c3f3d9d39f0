"""Rules in words: each condition type's sentence, as a named table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from onair.engine.conditions import parse_condition
from onair.engine.words import describe, describe_spec, duration

CASES = [
    pytest.param("now", {}, "once, as soon as it is added", id="now"),
    pytest.param(
        "at",
        {"datetime": "2099-07-01T10:00:00", "timezone": "Europe/Warsaw"},
        "once, 2099-07-01 10:00, Europe/Warsaw",
        id="at_wall_time",
    ),
    pytest.param(
        "at",
        {"datetime": "2099-07-01T10:00:00Z", "timezone": "Europe/Warsaw"},
        "once, 2099-07-01 12:00, Europe/Warsaw",
        id="at_aware_shown_in_its_zone",
    ),
    pytest.param(
        "recurring",
        {"start": "2026-12-01T09:00", "frequency": "weekly", "timezone": "America/New_York"},
        "every week on Tuesday at 09:00, America/New_York, from 2026-12-01",
        id="recurring_weekly",
    ),
    pytest.param(
        "recurring",
        {"start": "2026-12-01T09:00", "frequency": "hourly", "interval": 3},
        "every 3 hours, UTC, from 2026-12-01 09:00",
        id="recurring_hourly_interval",
    ),
    pytest.param(
        "recurring",
        {"start": "2026-01-31T18:30", "frequency": "monthly", "count": 1},
        "every month on day 31 at 18:30, UTC, from 2026-01-31, once in all",
        id="recurring_monthly_once",
    ),
    pytest.param(
        "recurring",
        {"start": "2026-03-15T09:30", "frequency": "yearly", "interval": 2},
        "every 2 years on 15 March at 09:30, UTC, from 2026-03-15",
        id="recurring_yearly",
    ),
    pytest.param(
        "cron",
        {"expression": "0 9 * * 1-5", "timezone": "America/New_York", "count": 10},
        "at 09:00, Monday through Friday, America/New_York, 10 times",
        id="cron_weekdays",
    ),
    pytest.param("cron", {"expression": "@daily"}, "at 00:00, UTC", id="cron_macro"),
    pytest.param(
        "cron",
        {"expression": "*/15 * * * *", "start": "2026-12-01T00:00Z", "timezone": "Europe/Paris"},
        "every 15 minutes, Europe/Paris, from 2026-12-01 01:00",
        id="cron_start_in_its_zone",
    ),
    pytest.param(
        "cron",
        {"expression": "30 14 1 * *", "until": "2027-06-30T00:00"},
        "at 14:30, on day 1 of the month, UTC, until 2027-06-30 00:00",
        id="cron_until",
    ),
    pytest.param(
        "rrule",
        {
            "start": "2026-12-01T09:00",
            "rule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10",
            "timezone": "America/New_York",
        },
        "every weekday at 09:00, America/New_York, from 2026-12-01, 10 times",
        id="rrule_weekdays_count",
    ),
    pytest.param(
        "rrule",
        {
            "start": "2026-12-01T09:00",
            "rule": "RRULE:FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=18;BYMINUTE=30",
        },
        "every month on the last Friday at 18:30, UTC, from 2026-12-01",
        id="rrule_last_friday",
    ),
    pytest.param(
        "rrule",
        {"start": "2026-12-06T10:00", "rule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=SA,SU;COUNT=4"},
        "every 2 weeks on Saturday and Sunday at 10:00, UTC, from 2026-12-06, 4 times",
        id="rrule_fortnightly_weekend",
    ),
    pytest.param(
        "rrule",
        {"start": "2026-12-01T09:00", "rule": "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1"},
        "every month on Monday, Tuesday, Wednesday, Thursday and Friday at 09:00 "
        "(only the last of those in each month), UTC, from 2026-12-01",
        id="rrule_setpos",
    ),
    pytest.param(
        "rrule",
        {"start": "2026-12-01T09:00", "rule": "FREQ=DAILY;BYHOUR=7,19;UNTIL=20271231T100000Z"},
        "every day at 07:00 and 19:00, UTC, from 2026-12-01, until 2027-12-31 10:00 UTC",
        id="rrule_two_times_until_utc",
    ),
    pytest.param(
        "rrule",
        {"start": "2026-12-01T09:15", "rule": "FREQ=HOURLY;INTERVAL=2"},
        "every 2 hours at minute 15, UTC, from 2026-12-01",
        id="rrule_hourly",
    ),
    pytest.param(
        "rrule",
        {"start": "2026-01-01T08:00", "rule": "FREQ=YEARLY;BYMONTH=3,9;BYMONTHDAY=-1"},
        "every year on the last day of the month in March and September at 08:00, UTC, "
        "from 2026-01-01",
        id="rrule_last_day_of_months",
    ),
    pytest.param("interval", {"every": "PT1H30M"}, "every 1 hour 30 minutes, UTC", id="interval"),
    pytest.param(
        "interval",
        {"every": "PT15M", "start": "2026-12-01T00:00", "until": "2026-12-02T00:00"},
        "every 15 minutes, UTC, from 2026-12-01 00:00, until 2026-12-02 00:00",
        id="interval_bounded",
    ),
]


@pytest.mark.parametrize(("kind", "parameters", "words"), CASES)
def test_words(kind: str, parameters: dict[str, Any], words: str) -> None:
    assert describe(parse_condition(kind, parameters)) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(1, "1 second"), (90, "1 minute 30 seconds"), (86400 * 14, "2 weeks"), (0.5, "0.5 seconds")],
)
def test_durations(seconds: float, words: str) -> None:
    assert duration(timedelta(seconds=seconds)) == words


def test_a_stored_rule_no_longer_accepted_is_named_by_its_type() -> None:
    assert describe_spec("cron", {"expression": "not a cron"}) == "cron"
    assert describe_spec("weekly", {}) == "weekly"

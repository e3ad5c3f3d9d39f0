"""The feed round-trips: what two independent RFC 5545 readers (`recurring-ical-events` over
`icalendar`, and `ical`) expand it to equals onair's own preview over a year, in zones that
change their clocks, with a skipped and a moved occurrence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import icalendar
import pytest
import recurring_ical_events
from ical.calendar_stream import IcsCalendarStream

from onair.engine.calendar import Changes
from onair.engine.conditions import parse_condition
from onair.engine.models import Spec, Status, Task
from onair.engine.preview import remaining
from onair.ical import HORIZON, MAX_INSTANTS, feed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def task(kind: str, parameters: dict[str, Any], **fields: Any) -> Task:
    """A pending task created at NOW, due at its first occurrence."""
    made = Task(
        id=uuid4(),
        operation=Spec("test"),
        condition=Spec(kind, parameters),
        dependencies={},
        status=Status.PENDING,
        owner=None,
        name=f"{kind} task",
        policy=None,
        created_at=NOW,
        updated_at=NOW,
        next_at=None,
        occurrences=0,
        runs=0,
        started_at=None,
        finished_at=None,
        last_outcome=None,
        result=None,
        error=None,
    )
    trigger = parse_condition(kind, parameters).trigger(NOW)
    return replace(made, next_at=trigger.next_after(NOW - TICK), **fields)


def with_changes(made: Task) -> Task:
    """`made` with its 3rd occurrence skipped and its 5th moved 3 hours and 7 minutes later."""
    trigger = parse_condition(made.condition.type, dict(made.condition.parameters)).trigger(NOW)
    found, after = [], NOW - TICK
    while len(found) < 5:
        instant = trigger.next_after(after)
        assert instant is not None
        found.append(instant)
        after = instant
    changes = Changes().skip(found[2]).move(found[4], found[4] + timedelta(hours=3, minutes=7))
    return replace(made, changes=changes.as_json())


def onair(made: Task) -> list[datetime]:
    return [i.utc for i in remaining(made, MAX_INSTANTS) if i.utc <= NOW + HORIZON]


def by_recurring_ical_events(data: bytes) -> list[datetime]:
    calendar = icalendar.Calendar.from_ical(data)
    events = recurring_ical_events.of(calendar).between(NOW, NOW + HORIZON + TICK)
    return sorted(event.start.astimezone(UTC) for event in events)


def by_ical(data: bytes) -> list[datetime]:
    calendar = IcsCalendarStream.calendar_from_ics(data.decode())
    timeline = calendar.timeline_tz(UTC)
    return sorted(e.start.astimezone(UTC) for e in timeline.overlapping(NOW, NOW + HORIZON + TICK))


ZONES = [
    "America/New_York",
    "Europe/Paris",
    "Europe/London",
    "Australia/Sydney",
    "America/Santiago",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Havana",
]
"""Each changes its clocks twice a year; the rules below meet their gaps or folds."""

CASES = [
    *(
        pytest.param(
            "recurring",
            {"start": f"2026-01-01T{at}", "frequency": "daily"},
            zone,
            id=f"daily_{at}_{zone}",
        )
        for zone in ZONES
        for at in ("02:30", "01:30", "00:15")
    ),
    *(
        pytest.param(
            "rrule",
            {"start": "2026-01-04T02:30", "rule": "FREQ=WEEKLY;BYDAY=SU,WE;BYHOUR=2,10"},
            zone,
            id=f"rrule_{zone}",
        )
        for zone in ZONES
    ),
    pytest.param("cron", {"expression": "30 2 * * *"}, "Europe/Paris", id="cron_daily_gap"),
    pytest.param("cron", {"expression": "*/30 1-3 * * 0"}, "America/New_York", id="cron_sundays"),
    pytest.param(
        "recurring",
        {"start": "2026-01-31T09:00", "frequency": "monthly"},
        "Europe/Warsaw",
        id="monthly_31st",
    ),
    pytest.param(
        "recurring",
        {"start": "2026-01-01T00:30", "frequency": "hourly", "interval": 5},
        "Europe/Paris",
        id="hourly_absolute",
    ),
    pytest.param("interval", {"every": "PT7H30M"}, "Europe/London", id="interval"),
    pytest.param(
        "rrule",
        {"start": "2026-01-01T02:00", "rule": "FREQ=MONTHLY;BYDAY=-1SU;COUNT=8"},
        "Europe/London",
        id="rrule_count_last_sunday",
    ),
]


@pytest.mark.parametrize(("kind", "parameters", "zone"), CASES)
def test_the_feed_expands_to_onairs_preview(
    kind: str, parameters: dict[str, Any], zone: str
) -> None:
    made = with_changes(task(kind, {**parameters, "timezone": zone}))
    expected = onair(made)
    assert len(expected) >= 5
    data = feed([made], NOW, "test")
    assert by_recurring_ical_events(data) == expected
    assert by_ical(data) == expected


def test_skips_are_exdates_and_moves_are_overrides() -> None:
    made = with_changes(task("recurring", {"start": "2026-01-01T09:00", "frequency": "daily"}))
    calendar = icalendar.Calendar.from_ical(feed([made], NOW, "test"))
    main, moved = calendar.walk("VEVENT")
    assert str(main["rrule"].to_ical().decode()).startswith("FREQ=DAILY")
    assert [d.dt for d in main["exdate"].dts] == [datetime(2026, 1, 3, 9, tzinfo=UTC)]
    assert moved["recurrence-id"].dt.replace(tzinfo=None) == datetime(2026, 1, 5, 9)
    assert moved.start.astimezone(UTC) == datetime(2026, 1, 5, 12, 7, tzinfo=UTC)
    assert "Moved from 2026-01-05T09:00:00" in moved["description"]
    assert main["uid"] == moved["uid"] == f"{made.id}@onair"
    assert main["description"].startswith("every day at 09:00, UTC")


def test_a_dst_move_is_an_override_that_says_why() -> None:
    made = task(
        "recurring",
        {"start": "2026-03-01T02:30", "frequency": "daily", "timezone": "America/New_York"},
    )
    calendar = icalendar.Calendar.from_ical(feed([made], NOW, "test"))
    [_, override] = calendar.walk("VEVENT")
    assert override["recurrence-id"].dt.replace(tzinfo=None) == datetime(2026, 3, 8, 2, 30)
    assert override.start.astimezone(UTC) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert "in America/New_York (DST): by onair's DST rule it runs at" in override["description"]
    assert calendar.walk("VTIMEZONE")[0]["tzid"] == "America/New_York"


def test_a_paused_task_is_tentative_and_finished_ones_are_absent() -> None:
    paused = task(
        "at",
        {"datetime": "2026-02-01T10:00"},
        paused_at=NOW,
        paused_by="Ola",
        pause_note="no host",
    )
    done = replace(task("at", {"datetime": "2026-02-01T11:00"}), status=Status.COMPLETED)
    calendar = icalendar.Calendar.from_ical(feed([paused, done], NOW, "test"))
    [event] = calendar.walk("VEVENT")
    assert event["status"] == "TENTATIVE"
    assert "Paused by Ola since 2026-01-01T00:00:00+00:00: no host" in event["description"]
    assert event.start == datetime(2026, 2, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "policy",
    [{"dst_gap": "skip"}, {"dst_fold": "second"}, {"dst_fold": "both", "dst_gap": "skip"}],
    ids=["gap_skip", "fold_second", "fold_both"],
)
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "Australia/Lord_Howe"])
@pytest.mark.parametrize("at", ["01:30", "02:30", "02:15"])
def test_the_feed_follows_a_dst_policy(policy: dict[str, str], zone: str, at: str) -> None:
    made = with_changes(
        task(
            "recurring",
            {"start": f"2026-01-01T{at}", "frequency": "daily", "timezone": zone},
            policy=policy,
        )
    )
    expected = onair(made)
    data = feed([made], NOW, "test")
    assert by_recurring_ical_events(data) == expected
    assert by_ical(data) == expected

"""The simulated window, pure: DST notes, overlap and misfire policies, resources held by two
tasks at once, pauses and skipped occurrences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from onair.engine.calendar import Changes
from onair.engine.policies import Policy
from onair.engine.simulation import simulate
from tests.unit.test_ical import NOW, task

DAY = timedelta(days=1)


def policy_of(**fields: Any) -> Any:
    return lambda _task: Policy(**fields)


def test_a_dst_gap_is_noted_and_the_week_is_in_order() -> None:
    show = task(
        "recurring",
        {"start": "2026-03-05T02:30", "frequency": "daily", "timezone": "America/New_York"},
    )
    start = datetime(2026, 3, 7, tzinfo=UTC)
    week = simulate([show], start, start + 3 * DAY, NOW, policy_of())
    assert [(o.due, o.outcome) for o in week.occurrences] == [
        (datetime(2026, 3, 7, 7, 30, tzinfo=UTC), "run"),
        (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "run"),
        (datetime(2026, 3, 9, 6, 30, tzinfo=UTC), "run"),
    ]
    assert week.occurrences[1].note == (
        "02:30 does not exist on 2026-03-08 in America/New_York; moved to 03:00"
    )
    assert week.occurrences[1].local.isoformat() == "2026-03-08T03:00:00-04:00"
    assert week.conflicts == []


def test_overlapping_sounds_conflict_and_a_long_run_makes_the_next_missed() -> None:
    sound = {"resource": "output:default", "hold": 5400.0}  # 90 minutes
    first = task("recurring", {"start": "2026-01-01T10:00", "frequency": "hourly"}, **sound)
    second = task("at", {"datetime": "2026-01-01T10:30"}, resource="output:default", hold=60.0)
    week = simulate([first, second], NOW, NOW + timedelta(hours=12, minutes=1), NOW, policy_of())
    runs = [(o.task.id, o.due.hour, o.due.minute, o.outcome) for o in week.occurrences][:4]
    assert runs == [
        (first.id, 10, 0, "run"),
        (second.id, 10, 30, "run"),
        (first.id, 11, 0, "missed"),  # its 10:00 run would still be in progress
        (first.id, 12, 0, "run"),
    ]
    assert week.occurrences[2].note == "its previous run would still be in progress"
    [conflict] = [c for c in week.conflicts if c.first.task.id == first.id]
    assert (conflict.resource, conflict.second.task.id) == ("output:default", second.id)
    assert conflict.first.until == datetime(2026, 1, 1, 11, 30, tzinfo=UTC)
    allowed = simulate(
        [first], NOW, NOW + timedelta(hours=12, minutes=1), NOW, policy_of(overlap="allow")
    )
    assert [o.outcome for o in allowed.occurrences] == ["run", "run", "run"]


def test_pauses_skips_and_misfires() -> None:
    daily = task("recurring", {"start": "2026-01-01T09:00", "frequency": "daily"})
    paused = replace(daily, paused_at=NOW, paused_by="Ola", pause_note="holiday")
    skipping = replace(daily, changes=Changes().skip(datetime(2026, 1, 2, 9, tzinfo=UTC)).as_json())
    window = (NOW, NOW + 3 * DAY)
    assert {o.outcome for o in simulate([paused], *window, NOW, policy_of()).occurrences} == {
        "paused"
    }
    assert simulate([paused], *window, NOW, policy_of()).occurrences[0].note == (
        "paused by Ola: holiday"
    )
    found = simulate([skipping], *window, NOW, policy_of()).occurrences
    assert [(o.due.day, o.outcome) for o in found] == [(1, "run"), (2, "skipped"), (3, "run")]
    late = NOW + timedelta(hours=9, minutes=10)  # the first is 10 minutes late by then
    graced = simulate([daily], NOW, NOW + 2 * DAY, late, policy_of(misfire_grace="PT5M"))
    assert [o.outcome for o in graced.occurrences] == ["missed", "run"]
    assert graced.occurrences[0].note == "beyond its misfire grace"

"""The synchronizer's matching as pure functions: what is expected in a window, which tasks are
cancelled and which are added (contracts/emischeduler.md §1.10, with the duplicate bug fixed)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from onair.broadcast.models import Event, Instance, Schedule
from onair.broadcast.synchronizer import Plan, expected_instances, new_task, plan
from onair.engine.models import Spec, Status, Task

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LEAD = timedelta(minutes=15)


def event(
    *starts: datetime, type: str = "replay", timezone: str = "Europe/Warsaw", id: UUID | None = None
) -> Schedule:
    """A schedule of an event with one-hour instances at `starts` (naive, in `timezone`)."""
    first = starts[0] if starts else datetime(2026, 1, 1)
    wire = Event(
        id=id or uuid.uuid4(), type=type, show_id=uuid.uuid4(),  # type: ignore[arg-type]
        start=first, end=first + timedelta(hours=1), timezone=timezone,
    )  # fmt: skip
    return Schedule(
        event=wire, instances=[Instance(start=s, end=s + timedelta(hours=1)) for s in starts]
    )


_created = iter(range(10_000))


def task(
    event_id: UUID | str,
    start: datetime | str,
    status: Status = Status.PENDING,
    **extra: Any,
) -> Task:
    parameters = {
        "id": str(event_id),
        "start": start.isoformat() if isinstance(start, datetime) else start,
    }
    created = NOW - timedelta(hours=1) + timedelta(seconds=next(_created))
    return Task(
        id=uuid.uuid4(), operation=Spec("stream", parameters | extra),
        condition=Spec("at", {"datetime": "2026-03-28T12:00:00"}), dependencies={},
        status=status, owner=None, name=None, policy=None, created_at=created,
        updated_at=created, next_at=None, occurrences=0, runs=0, started_at=None,
        finished_at=None, last_outcome=None, result=None, error=None,
    )  # fmt: skip


def planned(
    schedules: Sequence[Schedule],
    tasks: Sequence[Task] = (),
    extra_events: Sequence[Event] = (),
    now: datetime = NOW,
) -> Plan:
    """The plan, with emishows knowing every event of `schedules` and `extra_events`."""
    events = {s.event.id: s.event for s in schedules} | {e.id: e for e in extra_events}
    return plan(schedules, tasks, events, now, now + DAY)


def keys(plan: Plan) -> list[tuple[UUID, datetime]]:
    return [e.key for e in plan.add]


# -- what is expected --


def test_two_instances_of_one_event_in_the_window_are_two_tasks() -> None:
    first, second = datetime(2026, 3, 28, 20), datetime(2026, 3, 29, 8)
    show = event(first, second)

    result = planned([show])

    assert keys(result) == [(show.event.id, first), (show.event.id, second)]
    assert result.cancel == []


@pytest.mark.parametrize(
    "existing",
    [pytest.param([0], id="first_exists"), pytest.param([1], id="second_exists"),
     pytest.param([1, 0], id="both_exist_reversed"), pytest.param([0, 1], id="both_exist")],
)  # fmt: skip
def test_instances_of_one_event_never_produce_a_duplicate(existing: list[int]) -> None:
    """The reference's `filter` iterator bug: whatever the order of the tasks, an instance that
    has its task gets no second one."""
    starts = [datetime(2026, 3, 28, 20), datetime(2026, 3, 29, 8)]
    show = event(*starts)
    tasks = [task(show.event.id, starts[i]) for i in existing]

    result = planned([show], tasks)

    missing = [s for i, s in enumerate(starts) if i not in existing]
    assert keys(result) == [(show.event.id, s) for s in missing]
    assert result.cancel == []


def test_the_plan_applied_plans_nothing_more() -> None:
    schedules = [event(datetime(2026, 3, 28, 20), datetime(2026, 3, 29, 8)), event(
        datetime(2026, 3, 28, 14), type="prerecorded", timezone="America/New_York")]  # fmt: skip
    first = planned(schedules)
    tasks = [
        task(e.event.id, e.instance.start, condition=None) for e in first.add
    ]  # extra keys in parameters are ignored

    again = planned(schedules, tasks)

    assert len(first.add) == 3
    assert (again.add, again.cancel) == ([], [])


def test_live_events_are_not_streamed() -> None:
    assert planned([event(datetime(2026, 3, 28, 20), type="live")]).add == []


@pytest.mark.parametrize(
    ("wall", "included"),
    [
        pytest.param(datetime(2026, 3, 28, 13, 0), True, id="starts_at_now"),
        pytest.param(datetime(2026, 3, 28, 12, 59, 59), False, id="started_a_second_ago"),
        pytest.param(datetime(2026, 3, 29, 13, 59, 59), True, id="last_second_of_window"),
        pytest.param(datetime(2026, 3, 29, 14, 0), False, id="starts_at_window_end"),
    ],
)
def test_window_edges_are_start_inclusive_end_exclusive(wall: datetime, included: bool) -> None:
    """Warsaw is UTC+1 on 2026-03-28 and UTC+2 from 2026-03-29 02:00 (spring forward): the
    window [12:00, +1 day) UTC is [13:00 CET, 14:00 CEST) in local time."""
    show = event(wall)

    assert (planned([show]).add != []) is included


@pytest.mark.parametrize(
    ("timezone", "wall", "at"),
    [
        pytest.param("Europe/Warsaw", datetime(2026, 3, 28, 22), "2026-03-28T20:45:00",
                     id="warsaw_winter_utc_plus_1"),
        pytest.param("Europe/Warsaw", datetime(2026, 3, 29, 3), "2026-03-29T00:45:00",
                     id="warsaw_after_spring_forward_utc_plus_2"),
        pytest.param("Europe/Warsaw", datetime(2026, 3, 29, 2, 30), "2026-03-29T01:15:00",
                     id="warsaw_spring_gap_read_with_the_earlier_offset"),
        pytest.param("America/New_York", datetime(2026, 3, 28, 20), "2026-03-28T23:45:00",
                     id="new_york_edt_utc_minus_4"),
        pytest.param("Australia/Lord_Howe", datetime(2026, 3, 29, 9), "2026-03-28T21:45:00",
                     id="lord_howe_half_hour_dst_utc_plus_11"),
        pytest.param("UTC", datetime(2026, 3, 28, 12), "2026-03-28T11:45:00",
                     id="utc_starting_now_is_due_in_the_past"),
    ],
)  # fmt: skip
def test_new_tasks_are_due_lead_before_the_utc_start_and_keep_the_local_start(
    timezone: str, wall: datetime, at: str
) -> None:
    show = event(wall, timezone=timezone)

    (expected,) = planned([show]).add
    new = new_task(expected, LEAD)

    assert new.operation == Spec("stream", {"id": str(show.event.id), "start": wall.isoformat()})
    assert new.condition == Spec("at", {"datetime": at})
    assert dict(new.dependencies) == {}


def test_an_autumn_fold_wall_time_is_one_instance_at_its_first_occurrence() -> None:
    """Warsaw falls back on 2026-10-25 at 03:00 CEST: 02:30 happens twice, and the naive wire
    cannot tell which; onair schedules one task, at the first (00:30 UTC)."""
    now = datetime(2026, 10, 24, 12, tzinfo=UTC)
    fold = datetime(2026, 10, 25, 2, 30)
    show = event(fold, fold, datetime(2026, 10, 25, 3, 30))

    result = planned([show], now=now)

    assert keys(result) == [(show.event.id, fold), (show.event.id, datetime(2026, 10, 25, 3, 30))]
    assert new_task(result.add[0], LEAD).condition.parameters == {"datetime": "2026-10-25T00:15:00"}


def test_an_event_in_an_unknown_zone_is_a_problem_not_a_task() -> None:
    show = event(datetime(2026, 3, 28, 20), timezone="Mars/Olympus_Mons")

    result = planned([show])

    assert result.add == []
    assert result.problems == [
        f"event {show.event.id} cannot be scheduled: unknown time zone 'Mars/Olympus_Mons': "
        "use an IANA name such as 'Europe/Warsaw'"
    ]


def test_expected_instances_are_sorted_by_utc_start() -> None:
    late_local = event(datetime(2026, 3, 28, 21), timezone="Europe/Warsaw")  # 20:00 UTC
    early_local = event(datetime(2026, 3, 28, 15), timezone="America/New_York")  # 19:00 UTC

    expected, problems = expected_instances([late_local, early_local], NOW, NOW + DAY)

    assert [e.event.id for e in expected] == [early_local.event.id, late_local.event.id]
    assert [e.utc_start.hour for e in expected] == [19, 20]
    assert problems == []


# -- what is cancelled --


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param({"start": "2026-03-28T20:00:00"}, id="no_id"),
        pytest.param({"id": "not-a-uuid", "start": "2026-03-28T20:00:00"}, id="bad_id"),
        pytest.param({"id": str(uuid.UUID(int=1))}, id="no_start"),
        pytest.param({"id": str(uuid.UUID(int=1)), "start": "tomorrow"}, id="bad_start"),
        pytest.param({"id": str(uuid.UUID(int=1)), "start": "2026-03-28T20:00:00+02:00"},
                     id="aware_start"),
    ],
)  # fmt: skip
def test_tasks_with_invalid_parameters_are_cancelled(parameters: dict[str, Any]) -> None:
    invalid = replace(
        task(uuid.UUID(int=1), "2026-03-28T20:00:00"), operation=Spec("stream", parameters)
    )

    result = planned([], [invalid])

    assert [(c.task, c.reason) for c in result.cancel] == [
        (invalid.id, "its parameters are invalid")
    ]


def test_a_task_whose_event_emishows_does_not_return_is_cancelled_even_outside_the_window() -> None:
    gone = uuid.uuid4()
    orphan = task(gone, datetime(2026, 5, 1, 20))

    result = planned([], [orphan])

    assert [(c.task, c.reason) for c in result.cancel] == [
        (orphan.id, f"emishows has no event {gone}")
    ]


def test_a_task_whose_instance_is_no_longer_planned_is_cancelled() -> None:
    moved_from, moved_to = datetime(2026, 3, 28, 20), datetime(2026, 3, 28, 21)
    show = event(moved_to)
    stale = task(show.event.id, moved_from, status=Status.RUNNING)

    result = planned([show], [stale])

    assert [(c.task, c.reason) for c in result.cancel] == [
        (stale.id, f"event {show.event.id} no longer plans 2026-03-28T20:00:00")
    ]
    assert keys(result) == [(show.event.id, moved_to)]


def test_a_task_of_an_event_that_became_live_is_cancelled() -> None:
    live = event(datetime(2026, 3, 28, 20), type="live")
    stale = task(live.event.id, datetime(2026, 3, 28, 20))

    result = planned([live], [stale])

    assert [c.task for c in result.cancel] == [stale.id]
    assert result.add == []


def test_tasks_outside_the_window_are_left_alone() -> None:
    far = datetime(2026, 4, 10, 20)
    show = event(datetime(2026, 3, 28, 20))
    manual = task(show.event.id, far)
    past = task(show.event.id, datetime(2026, 3, 28, 12, 30), status=Status.RUNNING)

    result = planned([show], [manual, past])

    assert result.cancel == []
    assert keys(result) == [(show.event.id, datetime(2026, 3, 28, 20))]


def test_duplicates_are_cancelled_keeping_the_running_one() -> None:
    start = datetime(2026, 3, 28, 20)
    show = event(start)
    older = task(show.event.id, start)
    running = task(show.event.id, start, status=Status.RUNNING)
    newer = task(show.event.id, start)

    result = planned([show], [newer, running, older])

    assert sorted(c.task for c in result.cancel) == sorted([older.id, newer.id])
    assert {c.reason for c in result.cancel} == {f"it duplicates task {running.id}"}
    assert result.add == []


def test_duplicates_keep_the_oldest_when_none_runs() -> None:
    start = datetime(2026, 3, 28, 20)
    show = event(start)
    older, newer = task(show.event.id, start), task(show.event.id, start)

    result = planned([show], [newer, older])

    assert [c.task for c in result.cancel] == [newer.id]


def test_a_task_read_twice_counts_once() -> None:
    start = datetime(2026, 3, 28, 20)
    show = event(start)
    once = task(show.event.id, start)

    result = planned([show], [once, once])

    assert (result.cancel, result.add) == ([], [])


def test_invalid_cancels_come_before_unexpected_ones() -> None:
    show = event(datetime(2026, 3, 28, 20))
    unexpected = task(show.event.id, datetime(2026, 3, 28, 22))
    orphan = task(uuid.uuid4(), datetime(2026, 3, 28, 20))

    result = planned([show], [unexpected, orphan])

    assert [c.task for c in result.cancel] == [orphan.id, unexpected.id]

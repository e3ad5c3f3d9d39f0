"""Misfire, coalescing and retry rules as pure functions of explicit instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onair.engine.policies import Policy, Retry, decide

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def every_minute(instant: datetime) -> datetime | None:
    return instant + MINUTE


def once(instant: datetime) -> datetime | None:
    return None


def test_on_time_occurrence_runs_and_advances() -> None:
    decision = decide(every_minute, None, T0, T0 - timedelta(milliseconds=40), Policy())
    assert decision.run
    assert decision.due == T0
    assert decision.missed == 0
    assert decision.next_at == T0 + MINUTE
    assert decision.consumed == 1


def test_late_within_grace_runs_late() -> None:
    policy = Policy(misfire_grace=timedelta(seconds=30))
    decision = decide(every_minute, None, T0, T0 + timedelta(seconds=20), policy)
    assert decision.run
    assert decision.missed == 0


def test_one_shot_beyond_grace_expires_with_how_late() -> None:
    policy = Policy(misfire_grace=timedelta(seconds=30))
    decision = decide(once, None, T0, T0 + timedelta(seconds=90), policy)
    assert not decision.run
    assert decision.missed == 1
    assert decision.next_at is None
    assert decision.reason == (
        "Expired: due at 2026-03-01T12:00:00+00:00, 1 minute 30 seconds late, "
        "beyond the misfire grace of 30 seconds."
    )


def test_downtime_gives_one_run_for_the_latest_occurrence() -> None:
    """Ten minutes down: nine overtaken occurrences are missed, the tenth runs (no grace)."""
    decision = decide(every_minute, None, T0, T0 + 9 * MINUTE + timedelta(seconds=5), Policy())
    assert decision.run
    assert decision.due == T0 + 9 * MINUTE
    assert decision.missed == 9
    assert decision.first_missed == T0
    assert decision.next_at == T0 + 10 * MINUTE
    assert decision.consumed == 10


def test_downtime_beyond_grace_misses_everything_without_catch_up() -> None:
    policy = Policy(misfire_grace=timedelta(seconds=5))
    decision = decide(every_minute, None, T0, T0 + 3 * MINUTE + timedelta(seconds=30), policy)
    assert not decision.run
    assert decision.missed == 4
    assert decision.next_at == T0 + 4 * MINUTE


def test_catch_up_runs_once_for_all_missed() -> None:
    policy = Policy(misfire_grace=timedelta(seconds=5), catch_up=True)
    decision = decide(every_minute, None, T0, T0 + 3 * MINUTE + timedelta(seconds=30), policy)
    assert decision.run
    assert decision.due == T0 + 3 * MINUTE
    assert decision.missed == 3


def test_count_stops_coalescing_at_the_end_of_the_series() -> None:
    decision = decide(every_minute, 3, T0, T0 + 10 * MINUTE, Policy())
    assert decision.due == T0 + 2 * MINUTE
    assert decision.missed == 2
    assert decision.next_at is None
    assert decision.consumed == 3


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (6, None)],
    ids=["first", "second", "third", "fourth", "capped", "exhausted"],
)
def test_retry_backoff_grows_and_is_capped(attempt: int, expected: float | None) -> None:
    retry = Retry(attempts=6, backoff=timedelta(seconds=1), factor=2, cap=timedelta(seconds=10))
    delay = retry.delay(attempt)
    assert (delay.total_seconds() if delay else None) == expected


def test_task_overrides_merge_into_the_operation_defaults() -> None:
    base = Policy(retry=Retry(attempts=3), misfire_grace=timedelta(minutes=5))
    merged = base.merged({"retry": {"backoff": "PT2S"}, "overlap": "allow"})
    assert merged.retry.attempts == 3
    assert merged.retry.backoff == timedelta(seconds=2)
    assert merged.overlap == "allow"
    assert merged.misfire_grace == timedelta(minutes=5)


def every_second_from_t0(instant: datetime) -> datetime | None:
    """An every-second rule's `next_after`: the first whole second after `instant`."""
    return T0 + timedelta(seconds=(instant - T0) // timedelta(seconds=1) + 1)


def test_a_day_of_missed_seconds_is_skipped_not_walked() -> None:
    """A node back after a day: 86,400 occurrences of an every-second rule are not walked one
    by one (which kept the event loop for seconds); the latest runs, the rest are estimated."""
    import time

    now = T0 + timedelta(days=1, milliseconds=300)
    began = time.perf_counter()
    decision = decide(every_second_from_t0, None, T0, now, Policy())
    assert time.perf_counter() - began < 0.05
    assert decision.run
    assert decision.due == T0 + timedelta(days=1)
    assert decision.next_at == T0 + timedelta(days=1, seconds=1)
    assert decision.missed == 86_400
    assert decision.consumed == 86_401
    assert decision.reason is not None
    assert decision.reason.startswith("Missed: about 86400 occurrences from 2026-03-01T12:00:00")


def test_a_count_that_runs_out_in_what_was_skipped_ends_the_series() -> None:
    now = T0 + timedelta(days=1, milliseconds=300)
    decision = decide(every_second_from_t0, 1_000, T0, now, Policy())
    assert decision.consumed == 1_000
    assert decision.next_at is None
    assert decision.due == T0 + timedelta(seconds=999)  # the count's last occurrence
    assert decision.missed == 999

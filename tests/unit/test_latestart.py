"""Late-start decisions (`onair.engine.latestart`): pure functions of the planned instant and the
clock's reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onair.engine.latestart import LatePolicy, decide, join_tracks

PLANNED = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "late", "duration", "action", "offset"),
    [
        pytest.param("join", 0.4, None, "on_time", 0.0, id="join_within_grace_plays_from_top"),
        pytest.param("join", -2.0, None, "on_time", 0.0, id="early_is_on_time"),
        pytest.param("join", 40.0, 3600.0, "joined", 40.0, id="join_seeks_by_the_lateness"),
        pytest.param("join", 40.0, None, "joined", 40.0, id="join_unknown_duration"),
        pytest.param("join", 40.0, 30.0, "skipped", 0.0, id="join_past_the_end_skips"),
        pytest.param("full", 40.0, 30.0, "played_full", 0.0, id="full_plays_all_late"),
        pytest.param("skip", 40.0, 3600.0, "skipped", 0.0, id="skip_past_grace"),
        pytest.param("skip", 1.0, 3600.0, "on_time", 0.0, id="skip_at_the_grace_plays"),
    ],
)
def test_decide(
    policy: LatePolicy, late: float, duration: float | None, action: str, offset: float
) -> None:
    decision = decide(policy, 1.0, PLANNED, PLANNED + timedelta(seconds=late), duration)

    assert (decision.action, decision.offset) == (action, offset)
    assert decision.lateness == late
    assert decision.plays is (action != "skipped")
    assert decision.as_json() == {
        "policy": policy,
        "grace_seconds": 1.0,
        "lateness_seconds": late,
        "action": action,
        "offset_seconds": offset,
    }


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        pytest.param(0.0, (0, 0.0), id="from_the_top"),
        pytest.param(1.5, (0, 1.5), id="into_the_first"),
        pytest.param(2.0, (1, 0.0), id="at_a_track_boundary"),
        pytest.param(4.25, (2, 0.25), id="into_the_third"),
        pytest.param(9.0, (3, 0.0), id="past_the_last"),
    ],
)
def test_join_tracks(offset: float, expected: tuple[int, float]) -> None:
    assert join_tracks([2.0, 2.0, 3.0], offset) == expected

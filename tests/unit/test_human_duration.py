"""Durations in the words people use (refusals of past instants, missed runs, bounds)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from onair.timeutil import human_duration


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        pytest.param(timedelta(milliseconds=50), "50 ms", id="milliseconds"),
        pytest.param(timedelta(seconds=1), "1 second", id="one_second"),
        pytest.param(timedelta(seconds=1.5), "1.5 seconds", id="fractional_seconds"),
        pytest.param(timedelta(seconds=90), "1 minute 30 seconds", id="minute_and_seconds"),
        pytest.param(timedelta(hours=2, seconds=5), "2 hours", id="two_largest_units_only"),
        pytest.param(timedelta(days=1, hours=1), "1 day 1 hour", id="day_and_hour"),
        # The refusal the issue quotes: "… is already 1534949.8 min past".
        pytest.param(timedelta(minutes=1534949.8), "2 years 335 days", id="years"),
        pytest.param(timedelta(seconds=-90), "1 minute 30 seconds", id="sign_dropped"),
    ],
)
def test_human_duration(delta: timedelta, words: str) -> None:
    assert human_duration(delta) == words

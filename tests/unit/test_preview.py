"""Previews: the next runs with DST notes, respecting the series' limit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from onair.engine.conditions import parse_condition
from onair.engine.preview import preview

CREATED = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("type_", "parameters", "wanted", "expected"),
    [
        pytest.param(
            "cron",
            {"expression": "30 2 * * *", "timezone": "Europe/Paris", "start": "2026-03-28T00:00"},
            3,
            [
                ("2026-03-28 02:30+0100", None),
                (
                    "2026-03-29 03:00+0200",
                    "02:30 does not exist on 2026-03-29 in Europe/Paris; moved to 03:00",
                ),
                ("2026-03-30 02:30+0200", None),
            ],
            id="spring_gap_moved_to_gap_end",
        ),
        pytest.param(
            "recurring",
            {"start": "2026-10-25T02:30", "timezone": "Europe/Paris", "frequency": "daily"},
            2,
            [
                (
                    "2026-10-25 02:30+0200",
                    "02:30 occurs twice on 2026-10-25 in Europe/Paris"
                    " (UTC+02:00, then UTC+01:00); the first is used",
                ),
                ("2026-10-26 02:30+0100", None),
            ],
            id="autumn_fold_first_only",
        ),
        pytest.param(
            "at",
            {"datetime": "2026-10-04T02:10", "timezone": "Australia/Lord_Howe"},
            5,
            [
                (
                    "2026-10-04 02:30+1100",
                    "02:10 does not exist on 2026-10-04 in Australia/Lord_Howe; moved to 02:30",
                )
            ],
            id="one_shot_in_half_hour_gap",
        ),
        pytest.param(
            "interval",
            {"every": "PT1H", "timezone": "Europe/Warsaw", "count": 2},
            10,
            [("2026-03-01 01:00+0100", None), ("2026-03-01 02:00+0100", None)],
            id="limit_respected",
        ),
    ],
)
def test_preview(
    type_: str, parameters: dict[str, Any], wanted: int, expected: list[tuple[str, str | None]]
) -> None:
    condition = parse_condition(type_, parameters)
    items = preview(condition, CREATED, wanted)
    assert [(i.local.strftime("%Y-%m-%d %H:%M%z"), i.note) for i in items] == expected
    for item in items:
        assert item.utc.tzinfo is UTC
        assert item.local.astimezone(UTC) == item.utc  # == across zones is False in a fold
        assert item.local.tzinfo == condition.zone


def test_preview_count() -> None:
    condition = parse_condition("cron", {"expression": "@hourly", "timezone": "Asia/Tehran"})
    items = preview(condition, CREATED)
    assert len(items) == 10
    assert items[0].local.tzinfo == ZoneInfo("Asia/Tehran")
    assert all(b.utc > a.utc for a, b in zip(items, items[1:], strict=False))

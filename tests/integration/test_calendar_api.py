"""Every condition type through `POST /tasks` of a real server, and the errors it gives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.integration.helpers import body, wait_status


async def create(client: httpx.AsyncClient, condition: str, **parameters: Any) -> dict[str, Any]:
    request = body(condition={"type": condition, "parameters": parameters})
    response = await client.post("/tasks", json=request)
    assert response.status_code == 201, response.text
    task_id = response.json()["task"]["id"]
    task = (await client.get(f"/tasks/{task_id}")).json()
    await client.delete(f"/tasks/{task_id}")
    return dict(task)


def next_local(zone: str, hour: int, minute: int = 0) -> datetime:
    """The next wall time hour:minute in `zone` as naive UTC, computed independently."""
    tz = ZoneInfo(zone)
    now = datetime.now(tz)
    candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= now:
        candidate = (candidate + timedelta(days=1)).replace(hour=hour, minute=minute)
        candidate = candidate.replace(tzinfo=None).replace(tzinfo=tz)
    return candidate.astimezone(UTC).replace(tzinfo=None)


async def test_at_with_a_zone_is_wall_time_there(client: httpx.AsyncClient) -> None:
    task = await create(client, "at", datetime="2099-07-01T10:00:00", timezone="Europe/Warsaw")
    assert task["next"] == "2099-07-01T08:00:00"
    assert task["description"] == "once, 2099-07-01 10:00, Europe/Warsaw"


async def test_a_rrule_is_answered_in_words(client: httpx.AsyncClient) -> None:
    rule = "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10"
    task = await create(
        client, "rrule", start="2099-01-05T09:00", rule=rule, timezone="America/New_York"
    )
    assert (
        task["description"] == "every weekday at 09:00, America/New_York, from 2099-01-05, 10 times"
    )


async def test_recurring_daily_in_a_zone(client: httpx.AsyncClient) -> None:
    task = await create(
        client,
        "recurring",
        start="2026-01-01T06:30:00",
        timezone="Asia/Tokyo",
        frequency="daily",
        count=5,
    )
    assert datetime.fromisoformat(task["next"]) == next_local("Asia/Tokyo", 6, 30)


async def test_cron_in_a_zone(client: httpx.AsyncClient) -> None:
    task = await create(client, "cron", expression="15 4 * * *", timezone="America/Santiago")
    assert datetime.fromisoformat(task["next"]) == next_local("America/Santiago", 4, 15)


async def test_rrule_last_friday_of_the_month(client: httpx.AsyncClient) -> None:
    task = await create(
        client, "rrule", rule="FREQ=MONTHLY;BYDAY=-1FR", start="2099-01-01T20:00:00"
    )
    assert task["next"] == "2099-01-30T20:00:00"  # 30 January 2099 is the last Friday


async def test_interval_runs_its_count_with_history(client: httpx.AsyncClient) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat()
    request = body(
        condition={"type": "interval", "parameters": {"every": 0.4, "start": start, "count": 2}}
    )
    task_id = (await client.post("/tasks", json=request)).json()["task"]["id"]
    done = await wait_status(client, task_id, "completed")
    assert done["result"]["parameters"] == {}
    summary = (await client.get(f"/tasks/{task_id}")).json()
    assert summary["runs"] == 2
    assert summary["outcome"] == "completed"
    assert summary["next"] is None
    page = (await client.get(f"/tasks/{task_id}/runs", params={"limit": 1})).json()
    assert page["count"] == 2
    assert len(page["runs"]) == 1
    second = (await client.get(f"/tasks/{task_id}/runs", params={"limit": 1, "offset": 1})).json()
    first_due = datetime.fromisoformat(second["runs"][0]["due"])
    last_due = datetime.fromisoformat(page["runs"][0]["due"])
    assert last_due - first_due == timedelta(seconds=0.4)
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("condition", "parameters", "key", "words"),
    [
        (
            "at",
            {"datetime": "2099-01-01T00:00:00", "timezone": "Mars/Olympus"},
            "timezone",
            "Mars/Olympus",
        ),
        ("cron", {"expression": "61 * * * *"}, "expression", "61"),
        ("cron", {"expression": "0 0 30 2 *"}, "expression", "matches no date"),
        ("rrule", {"rule": "FREQ=SOMETIMES", "start": "2099-01-01T00:00:00"}, "rule", "FREQ"),
        (
            "recurring",
            {"start": "2099-01-02T00:00:00", "frequency": "daily", "until": "2099-01-01T00:00:00"},
            "until",
            "before start",
        ),
        (
            "recurring",
            {"start": "2099-01-01T00:00:00", "frequency": "daily", "count": 0},
            "count",
            "greater than or equal to 1",
        ),
        (
            "recurring",
            {"start": "2099-01-01T00:00:00", "frequency": "fortnightly"},
            "frequency",
            "hourly",
        ),
        ("interval", {"every": 0}, "every", ""),
    ],
    ids=[
        "unknown_zone",
        "cron_out_of_range",
        "cron_never",
        "bad_rrule",
        "until_before_start",
        "count_zero",
        "unknown_frequency",
        "zero_interval",
    ],
)
async def test_bad_rules_are_400_naming_the_field(
    client: httpx.AsyncClient, condition: str, parameters: dict[str, Any], key: str, words: str
) -> None:
    response = await client.post(
        "/tasks", json=body(condition={"type": condition, "parameters": parameters})
    )
    assert response.status_code == 400, response.text
    problems = response.json()["extra"]
    assert [p["key"] for p in problems] == [f"condition.parameters.{key}"]
    assert words in problems[0]["message"]

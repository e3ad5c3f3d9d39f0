"""Rule previews over HTTP (`POST /tasks/preview`, `POST /api/v1/scheduler/preview`) and the
CLI: DST gaps and folds in several zones, each first instant equal to the `next` of the task
the engine then makes from the same condition, a short series the engine really runs at the
previewed instants, and the same 400s as `POST /tasks`; `onair tasks watch` too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import create_token
from onair.config import AuthSettings
from tests.conftest import Server
from tests.integration.helpers import body, schedule, wait_status

Instants = list[tuple[str, str, str | None]]


def condition(type_: str, **parameters: Any) -> dict[str, Any]:
    return {"type": type_, "parameters": parameters}


async def preview(client: httpx.AsyncClient, cond: dict[str, Any], count: int) -> Instants:
    response = await client.post("/tasks/preview", json={"condition": cond, "count": count})
    assert response.status_code == 200, response.text
    return [(i["utc"], i["local"], i["note"]) for i in response.json()["instants"]]


DST = [
    pytest.param(
        condition("cron", expression="30 2 * * *", timezone="Europe/Paris", start="2030-03-30"),
        [
            ("2030-03-30T01:30:00", "2030-03-30T02:30:00+01:00", None),
            (
                "2030-03-31T01:00:00",
                "2030-03-31T03:00:00+02:00",
                "02:30 does not exist on 2030-03-31 in Europe/Paris; moved to 03:00",
            ),
            ("2030-04-01T00:30:00", "2030-04-01T02:30:00+02:00", None),
        ],
        id="paris_spring_gap_moved_to_its_end",
    ),
    pytest.param(
        condition(
            "recurring", start="2030-10-27T02:30", timezone="Europe/Paris", frequency="daily"
        ),
        [
            (
                "2030-10-27T00:30:00",
                "2030-10-27T02:30:00+02:00",
                "02:30 occurs twice on 2030-10-27 in Europe/Paris (UTC+02:00, then UTC+01:00);"
                " the first is used",
            ),
            ("2030-10-28T01:30:00", "2030-10-28T02:30:00+01:00", None),
        ],
        id="paris_autumn_fold_first_pass",
    ),
    pytest.param(
        condition("cron", expression="30 2 * * *", timezone="America/New_York", start="2030-03-09"),
        [
            ("2030-03-09T07:30:00", "2030-03-09T02:30:00-05:00", None),
            (
                "2030-03-10T07:00:00",
                "2030-03-10T03:00:00-04:00",
                "02:30 does not exist on 2030-03-10 in America/New_York; moved to 03:00",
            ),
        ],
        id="new_york_spring_gap",
    ),
    pytest.param(
        condition("at", datetime="2030-10-06T02:10", timezone="Australia/Lord_Howe"),
        [
            (
                "2030-10-05T15:30:00",
                "2030-10-06T02:30:00+11:00",
                "02:10 does not exist on 2030-10-06 in Australia/Lord_Howe; moved to 02:30",
            )
        ],
        id="lord_howe_half_hour_gap",
    ),
]


@pytest.mark.parametrize(("cond", "expected"), DST)
async def test_dst_instants_and_the_engine_agrees(
    client: httpx.AsyncClient, cond: dict[str, Any], expected: Instants
) -> None:
    assert await preview(client, cond, len(expected)) == expected
    task = await schedule(client, condition=cond)
    details = (await client.get(f"/tasks/{task}")).json()
    assert details["next"] == expected[0][0]
    assert (await client.delete(f"/tasks/{task}")).status_code == 200


async def test_a_series_begun_in_the_past_starts_now(client: httpx.AsyncClient) -> None:
    cond = condition(
        "recurring", start="2020-01-01T09:00", timezone="Europe/Paris", frequency="daily", count=3
    )
    instants = await preview(client, cond, 10)
    assert len(instants) == 3  # the count counts from the task's creation
    now = datetime.now(UTC).replace(tzinfo=None)
    first = datetime.fromisoformat(instants[0][0])
    assert now - timedelta(minutes=1) < first <= now + timedelta(days=1)
    assert [local[11:16] for _, local, _ in instants] == ["09:00"] * 3
    task = await schedule(client, condition=cond)
    assert (await client.get(f"/tasks/{task}")).json()["next"] == instants[0][0]
    assert (await client.delete(f"/tasks/{task}")).status_code == 200


async def test_the_engine_runs_at_the_previewed_instants(client: httpx.AsyncClient) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(tzinfo=None, microsecond=0)
    cond = condition("interval", every="PT0.5S", start=start.isoformat(), count=3)
    instants = await preview(client, cond, 10)
    assert len(instants) == 3
    task = await schedule(client, condition=cond)
    await wait_status(client, task, "completed")
    runs = (await client.get(f"/tasks/{task}/runs")).json()["runs"]
    assert sorted(run["due"] for run in runs) == [utc for utc, _, _ in instants]
    assert all(0 <= run["lateness"] < 0.5 for run in runs)


BAD = [
    pytest.param(condition("weekly"), id="unknown_type"),
    pytest.param(condition("cron", expression="99 2 * * *"), id="bad_cron"),
    pytest.param(condition("cron", expression="0 2 * * *", timezone="Mars/Olympus"), id="bad_zone"),
    pytest.param({"type": "at"}, id="no_parameters"),
]


@pytest.mark.parametrize("cond", BAD)
async def test_errors_are_those_of_post_tasks(client: httpx.AsyncClient, cond: Any) -> None:
    previewed = await client.post("/tasks/preview", json={"condition": cond})
    created = await client.post("/tasks", json={**body(), "condition": cond})
    assert previewed.status_code == created.status_code == 400
    assert previewed.json()["extra"] == created.json()["extra"]


async def test_count_is_bounded(client: httpx.AsyncClient) -> None:
    for count in (0, 501):
        answer = await client.post(
            "/tasks/preview", json={"condition": condition("now"), "count": count}
        )
        assert answer.status_code == 400
        assert answer.json()["extra"][0]["key"] == "count"


async def test_user_api_preview_in_the_seeds_words(client: httpx.AsyncClient) -> None:
    token = create_token("preview-user", settings=AuthSettings())
    headers = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/scheduler/preview"
    schedule_ = {
        "scheduled_at": "2030-03-09T02:30:00",
        "timezone": "America/New_York",
        "recurrence_type": "daily",
        "recurrence_count": 5,
        "count": 2,
    }
    assert (await client.post(path, json=schedule_)).status_code == 401
    answer = await client.post(path, json=schedule_, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["description"] == (
        "every day at 02:30, America/New_York, from 2030-03-09, 5 times"
    )
    assert answer.json()["instants"] == [
        {"utc": "2030-03-09T07:30:00+00:00", "local": "2030-03-09T02:30:00-05:00", "note": None},
        {
            "utc": "2030-03-10T07:00:00+00:00",
            "local": "2030-03-10T03:00:00-04:00",
            "note": "02:30 does not exist on 2030-03-10 in America/New_York; moved to 03:00",
        },
    ]
    cron = {
        "scheduled_at": "2030-01-01T00:00:00",
        "recurrence_type": "cron",
        "cron_expression": "61 * * * *",
    }
    refused = await client.post(path, json=cron, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "cron_expression"]


def test_cli_prints_the_table(shared_server: Server) -> None:
    when = '{"expression": "30 2 * * *", "timezone": "Europe/Paris", "start": "2030-03-30"}'
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "onair",
            "tasks",
            "preview",
            "--condition",
            "cron",
            "--when",
            when,
            "--count",
            "2",
        ],
        env={**os.environ, "ONAIR_URL": shared_server.url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "at 02:30, Europe/Paris, from 2030-03-30 00:00" in done.stdout
    assert "2030-03-30T01:30:00" in done.stdout
    assert "2030-03-31T03:00:00+02:00" in done.stdout
    assert "02:30 does not exist on 2030-03-31 in Europe/Paris; moved to 03:00" in done.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "onair",
            "tasks",
            "preview",
            "--condition",
            "cron",
            "--when",
            '{"expression": "x"}',
        ],
        env={**os.environ, "ONAIR_URL": shared_server.url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert "400" in bad.stdout


async def test_cli_watch_shows_running_and_upcoming(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    long = await schedule(client, parameters={"sleep": 30})
    await wait_status(client, long, "running")
    soon = await schedule(client, condition=condition("at", datetime="2999-01-01T00:00:00"))
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    upcoming = await schedule(client, condition=condition("at", datetime=later))
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "onair", "tasks", "watch", "--once", "--limit", "500"),
        env={**os.environ, "ONAIR_URL": shared_server.url, "COLUMNS": "250"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert any("running" in line and long in line for line in lines)
    assert any("upcoming" in line and upcoming in line for line in lines)
    assert not any(soon in line for line in lines)  # beyond the next 24 hours
    for task in (long, soon, upcoming):
        assert (await client.delete(f"/tasks/{task}")).status_code == 200

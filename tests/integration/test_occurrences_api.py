"""Skipping and moving one occurrence over HTTP: the Tasks API (naive instants are UTC), the
user API (naive instants are wall time in the task's zone), the CLI and the dashboard's data;
refusals are 4xx naming the field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from onair.accounts.tokens import Role
from tests.conftest import Server
from tests.integration.helpers import schedule
from tests.integration.test_cli import onair
from tests.integration.test_user_api import cookie, someone


def daily_in_paris() -> tuple[dict[str, object], datetime]:
    """A daily series at 21:00 Paris time from tomorrow, and its first instant (naive UTC)."""
    day = (datetime.now(UTC) + timedelta(days=1)).date()
    start = datetime(day.year, day.month, day.day, 21, 0)
    condition = {
        "type": "recurring",
        "parameters": {
            "start": start.isoformat(),
            "frequency": "daily",
            "timezone": "Europe/Paris",
        },
    }
    first = start.replace(tzinfo=ZoneInfo("Europe/Paris"))
    return condition, first.astimezone(UTC).replace(tzinfo=None)


async def test_tasks_api_skip_and_move(shared_server: Server, client: httpx.AsyncClient) -> None:
    condition, first = daily_in_paris()
    task = await schedule(client, condition=condition)
    second, third = first + timedelta(days=1), first + timedelta(days=2)

    skipped = await client.post(f"/tasks/{task}/skip", json={"at": first.isoformat()})
    assert skipped.status_code == 200, skipped.text
    assert skipped.json()["next"] == second.isoformat()
    assert skipped.json()["changes"] == {"skipped": [first.isoformat()], "moved": []}
    later = third + timedelta(hours=2)
    moved = await client.post(
        f"/tasks/{task}/move", json={"at": third.isoformat(), "to": later.isoformat()}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["changes"]["moved"] == [{"at": third.isoformat(), "to": later.isoformat()}]

    page = (await client.get(f"/ui/api/tasks/{task}")).json()
    assert [i["utc"][:19] for i in page["next"][:3]] == [
        second.isoformat(),
        later.isoformat(),
        (first + timedelta(days=3)).isoformat(),
    ]
    assert page["next"][1]["note"].startswith("moved from ")
    assert page["task"]["changes"]["skipped"] == [first.replace(tzinfo=UTC).isoformat()]

    shown = await asyncio.to_thread(onair, shared_server, "tasks", "show", task)
    assert f"skipped {first.isoformat()}" in shown.stdout
    fourth = first + timedelta(days=3)
    cli = await asyncio.to_thread(onair, shared_server, "tasks", "skip", task, fourth.isoformat())
    assert cli.returncode == 0, cli.stderr
    assert f"skipped {fourth.isoformat()} of {task}" in cli.stdout

    wrong = await client.post(
        f"/tasks/{task}/skip", json={"at": (first + timedelta(minutes=1)).isoformat()}
    )
    assert wrong.status_code == 400
    assert wrong.json()["extra"][0]["key"] == "at"
    assert "is not an occurrence of the task's rule" in wrong.json()["extra"][0]["message"]
    no_to = await client.post(f"/tasks/{task}/move", json={"at": second.isoformat()})
    assert no_to.status_code == 400
    assert no_to.json()["extra"][0]["key"] == "to"
    bad = await client.post(f"/tasks/{task}/skip", json={"at": "tomorrow"})
    assert bad.status_code == 400
    assert bad.json()["extra"][0]["key"] == "at"
    assert (await client.delete(f"/tasks/{task}")).status_code == 200


async def test_user_api_reads_naive_instants_in_the_tasks_zone(client: httpx.AsyncClient) -> None:
    user = someone()
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    created = await client.post(
        "/api/v1/scheduler/tasks",
        headers=cookie(user, Role.ADMIN),
        json={
            "name": "evening",
            "task_type": "credit_recharge",
            "scheduled_at": f"{day.isoformat()}T21:00:00",
            "timezone": "Europe/Paris",
            "recurrence_type": "daily",
            "parameters": {"user_id": None},
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()
    path = f"/api/v1/scheduler/tasks/{task['id']}"
    first = datetime.fromisoformat(task["next_execution_at"])
    moved = await client.post(
        f"{path}/move",
        headers=cookie(user),
        json={"at": f"{day.isoformat()}T21:00:00", "to": f"{day.isoformat()}T22:30:00"},
    )
    assert moved.status_code == 200, moved.text
    answer = moved.json()
    assert answer["moved"] == [
        {"at": first.isoformat(), "to": (first + timedelta(minutes=90)).isoformat()}
    ]
    assert answer["next_execution_at"] == (first + timedelta(minutes=90)).isoformat()
    past = await client.post(
        f"{path}/move",
        headers=cookie(user),
        json={"at": f"{(day + timedelta(days=1)).isoformat()}T21:00:00", "to": "2020-01-01T00:00"},
    )
    assert past.status_code == 422
    assert past.json()["detail"][0]["loc"] == ["body", "to"]
    assert (await client.delete(path, headers=cookie(user, Role.ADMIN))).status_code == 200

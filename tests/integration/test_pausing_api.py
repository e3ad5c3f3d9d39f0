"""Pausing over HTTP: the Tasks API and the user API pause and resume with who and why, the
answers and the event stream show the pause, and the refusals are 409s and 4xx that name the
field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from onair.accounts.tokens import Role
from tests.conftest import Server
from tests.integration.helpers import schedule
from tests.integration.test_cli import onair
from tests.integration.test_events_stream import kinds, listen
from tests.integration.test_user_api import cookie, someone


def hourly() -> dict[str, object]:
    start = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    return {"type": "interval", "parameters": {"every": "PT1H", "start": start.isoformat()}}


async def test_tasks_api_pause_and_resume(client: httpx.AsyncClient) -> None:
    task = await schedule(client, condition=hourly())
    async with listen(client) as stream:
        paused = await client.post(
            f"/tasks/{task}/pause", json={"note": "studio under repair", "by": "Ola"}
        )
        assert paused.status_code == 200, paused.text
        answer = paused.json()
        assert answer["status"] == "pending"
        assert answer["paused"]["by"] == "Ola"
        assert answer["paused"]["note"] == "studio under repair"
        assert answer["next"] is not None
        shown = (await client.get(f"/tasks/{task}")).json()
        assert shown["paused"] == answer["paused"]

        again = await client.post(f"/tasks/{task}/pause", json={})
        assert again.status_code == 409
        assert "already paused (by Ola" in again.text

        resumed = await client.post(f"/tasks/{task}/resume")
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["paused"] is None
        events = await stream.of(task, 2)
    assert kinds(events) == ["paused", "resumed"]
    assert events[0]["note"] == "Ola: studio under repair"

    not_paused = await client.post(f"/tasks/{task}/resume")
    assert not_paused.status_code == 409
    assert f"Task {task} is not paused." in not_paused.text
    long_note = await client.post(f"/tasks/{task}/pause", json={"note": "x" * 1001})
    assert long_note.status_code == 400
    assert "note" in long_note.text
    assert (await client.delete(f"/tasks/{task}")).status_code == 200
    finished = await client.post(f"/tasks/{task}/pause", json={})
    assert finished.status_code == 409
    assert "already cancelled and cannot be paused" in finished.text


async def test_user_api_pause_is_recorded_under_the_user(client: httpx.AsyncClient) -> None:
    user = someone()
    start = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None)
    # Recharges are for admins: an admin schedules it as their own, then pauses it as a user.
    created = await client.post(
        "/api/v1/scheduler/tasks",
        headers=cookie(user, Role.ADMIN),
        json={
            "name": "alarm",
            "task_type": "credit_recharge",
            "scheduled_at": start.isoformat(),
            "recurrence_type": "daily",
            "parameters": {"user_id": None},
        },
    )
    assert created.status_code == 201, created.text
    task = created.json()["id"]
    path = f"/api/v1/scheduler/tasks/{task}"
    paused = await client.post(
        f"{path}/pause", headers=cookie(user), json={"note": "on holiday", "by": "someone else"}
    )
    assert paused.status_code == 200, paused.text
    assert (paused.json()["paused_by"], paused.json()["pause_note"]) == (user, "on holiday")
    assert paused.json()["status"] == "pending"
    other = await client.post(f"{path}/resume", headers=cookie(someone()))
    assert other.status_code == 404
    unknown = await client.post(f"{path}/pause", headers=cookie(user), json={"why": "x"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "why"]
    resumed = await client.post(f"{path}/resume", headers=cookie(user, Role.ADMIN))
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["paused_at"] is None
    assert (await client.delete(path, headers=cookie(user, Role.ADMIN))).status_code == 200


async def test_the_dashboard_data_and_the_command_line_show_the_pause(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    task = await schedule(client, condition=hourly())
    paused = await asyncio.to_thread(
        onair, shared_server, "tasks", "pause", task, "--note", "no host tonight", "--by", "Ola"
    )
    assert paused.returncode == 0, paused.stderr
    assert f"paused {task} at " in paused.stdout
    assert "by Ola" in paused.stdout
    shown = await asyncio.to_thread(onair, shared_server, "tasks", "show", task)
    assert "by Ola: no host tonight" in shown.stdout

    page = (await client.get(f"/ui/api/tasks/{task}")).json()
    assert page["task"]["pause"]["by"] == "Ola"
    assert page["task"]["pause"]["note"] == "no host tonight"
    assert page["viewer"]["pause"] == "/tasks/{id}/pause"
    overview = (await client.get("/ui/api/overview")).json()
    marks = [i["paused"] for i in overview["timeline"] if i["id"] == task]
    assert marks == [True] * 24  # an hourly series, over the next 24 hours

    again = await asyncio.to_thread(onair, shared_server, "tasks", "pause", task)
    assert again.returncode == 1
    assert "409" in again.stdout
    resumed = await asyncio.to_thread(onair, shared_server, "tasks", "resume", task)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {task}; next run at " in resumed.stdout
    assert (await client.get(f"/ui/api/tasks/{task}")).json()["task"]["pause"] is None
    assert (await client.delete(f"/tasks/{task}")).status_code == 200

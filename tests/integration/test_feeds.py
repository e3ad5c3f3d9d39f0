"""The iCalendar feeds over HTTP: a secret URL per owner, made, rotated and revoked through the
Tasks API and the user API; calendar apps read it without a token; each owner's feed holds
what they see."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar

from onair.accounts.tokens import Role
from tests.conftest import Server
from tests.integration.helpers import schedule
from tests.integration.test_cli import onair
from tests.integration.test_user_api import cookie, someone


def _uids(data: bytes) -> set[str]:
    return {str(e["uid"]) for e in icalendar.Calendar.from_ical(data).walk("VEVENT")}


async def test_the_stations_feed_rotates_and_revokes(client: httpx.AsyncClient) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None, microsecond=0)
    condition = {
        "type": "recurring",
        "parameters": {
            "start": start.isoformat(),
            "frequency": "weekly",
            "timezone": "Europe/Paris",
        },
    }
    task = await schedule(client, condition=condition)
    made = await client.post("/tasks/feed")
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(str(client.base_url).rstrip("/") + "/calendar/")
    assert url.endswith(".ics")
    path = url.removeprefix(str(client.base_url).rstrip("/"))

    read = await client.get(path)
    assert read.status_code == 200, read.text
    assert read.headers["content-type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(read.content)
    [event] = [e for e in calendar.walk("VEVENT") if e["uid"] == f"{task}@onair"]
    assert event["rrule"]["FREQ"] == ["WEEKLY"]
    assert event["dtstart"].params["TZID"] == "Europe/Paris"
    assert "every week on" in event["description"]
    assert "Europe/Paris" in {str(z["tzid"]) for z in calendar.walk("VTIMEZONE")}

    rotated = await client.post("/tasks/feed")
    new_path = rotated.json()["url"].removeprefix(str(client.base_url).rstrip("/"))
    assert new_path != path
    gone = await client.get(path)
    assert gone.status_code == 404
    assert "rotated or revoked" in gone.text
    assert (await client.get(new_path)).status_code == 200
    assert (await client.delete("/tasks/feed")).status_code == 204
    assert (await client.get(new_path)).status_code == 404
    assert (await client.get("/calendar/not-a-secret.ics")).status_code == 404
    assert (await client.delete(f"/tasks/{task}")).status_code == 200


async def test_a_users_feed_holds_only_their_tasks(client: httpx.AsyncClient) -> None:
    ola, ala = someone(), someone()
    day = (datetime.now(UTC) + timedelta(days=3)).date()
    ids = {}
    for user in (ola, ala):
        created = await client.post(
            "/api/v1/scheduler/tasks",
            headers=cookie(user, Role.ADMIN),
            json={
                "name": f"recharge of {user}",
                "task_type": "credit_recharge",
                "scheduled_at": f"{day.isoformat()}T08:00:00",
                "timezone": "America/New_York",
                "parameters": {"user_id": None},
            },
        )
        assert created.status_code == 201, created.text
        ids[user] = created.json()["id"]
    assert (await client.post("/api/v1/scheduler/feed")).status_code == 401
    made = await client.post("/api/v1/scheduler/feed", headers=cookie(ola))
    assert made.status_code == 201, made.text
    path = made.json()["url"].removeprefix(str(client.base_url).rstrip("/"))
    read = await client.get(path)  # no token: the secret is the credential
    assert read.status_code == 200
    assert _uids(read.content) == {f"{ids[ola]}@onair"}
    [event] = icalendar.Calendar.from_ical(read.content).walk("VEVENT")
    assert event["summary"] == f"recharge of {ola}"
    wall = datetime(day.year, day.month, day.day, 8, tzinfo=ZoneInfo("America/New_York"))
    assert event.start == wall
    assert (await client.delete("/api/v1/scheduler/feed", headers=cookie(ola))).status_code == 204
    assert (await client.get(path)).status_code == 404
    for user, task_id in ids.items():
        path = f"/api/v1/scheduler/tasks/{task_id}"
        assert (await client.delete(path, headers=cookie(user, Role.ADMIN))).status_code == 200


async def test_the_command_line_makes_and_revokes_the_feed(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    made = await asyncio.to_thread(onair, shared_server, "tasks", "feed")
    assert made.returncode == 0, made.stderr
    url = made.stdout.strip()
    assert url.startswith(f"{shared_server.url}/calendar/")
    assert (await client.get(url)).status_code == 200
    revoked = await asyncio.to_thread(onair, shared_server, "tasks", "feed", "--revoke")
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.get(url)).status_code == 404

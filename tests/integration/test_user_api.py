"""The user-facing scheduler API (`/api/v1`, seed 004) against real `onair serve` processes on
SQLite and PostgreSQL: the seed's examples replayed with minted tokens, ownership and roles,
validation in FastAPI's error shape, and the start-up system task on several nodes."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Role, create_token
from onair.app import build
from onair.config import AuthSettings, Settings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.credit_recharge import DAILY_RECHARGE_ID, CreditRecharge
from onair.store.database import Store
from onair.tasks import SchedulerService
from onair.wire import RecurrenceType, TaskType
from tests.conftest import Server
from tests.integration.helpers import schedule, wait_status
from tests.integration.tones import tone, upload

DEV = AuthSettings()
"""The servers of this module run with the development secret (the default)."""

UNKNOWN = "85478e12-fd0d-4de3-a26b-cd1ec7f94f2b"
SOUND = "0b6c4e4e-4a55-4d2e-9a53-0b1a9a6c3c11"
PLAYLIST = "5d1f3b0e-7f43-4a39-9b8e-2f3a8c1d9e77"


def token(user: str, role: Role = Role.USER, **kwargs: Any) -> str:
    return create_token(user, role=role, settings=kwargs.pop("settings", DEV), **kwargs)


def cookie(user: str, role: Role = Role.USER) -> dict[str, str]:
    """The seed's way: `Cookie: access_token=...`."""
    return {"Cookie": f"access_token={token(user, role)}"}


def bearer(user: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, role)}"}


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def available(task_type: TaskType) -> bool:
    """Whether a node built from the default settings runs `task_type` (the audio operations
    are another issue; until they are registered the API refuses their types)."""
    return task_type.value in build(Settings()).registry


@contextlib.asynccontextmanager
async def service(server: Server) -> AsyncIterator[SchedulerService]:
    """The Python API's service on the server's database, without a worker of its own: for
    tasks owned by regular users, who cannot create the one type this node runs."""
    async with Store(server.env["ONAIR__STORE__URL"]) as store:
        yield SchedulerService(Engine(store, Registry([CreditRecharge(Accounts(store))])))


async def user_task(server: Server, user: str, name: str = "a user's task") -> str:
    async with service(server) as scheduler:
        task = await scheduler.create_task(
            name=name,
            task_type=TaskType.CREDIT_RECHARGE,
            scheduled_at=datetime.now(UTC) + timedelta(days=30),
            parameters={"user_id": user},
            user_id=user,
        )
    return str(task.id)


def in_hours(hours: float, zone_naive: bool = True) -> str:
    at = datetime.now(UTC) + timedelta(hours=hours)
    return (at.replace(tzinfo=None) if zone_naive else at).isoformat(timespec="seconds")


def next_midnight_utc() -> str:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today + timedelta(days=1)).isoformat()


# The seed's examples --------------------------------------------------------------------------


async def test_seed_one_shot_play_sound(client: httpx.AsyncClient, tmp_path: Path) -> None:
    user = someone()
    sound = await upload(client, cookie(user), tone(tmp_path / "alarm.wav", 0.5))
    response = await client.post(
        "/api/v1/scheduler/tasks",
        headers={"Content-Type": "application/json", **cookie(user)},
        json={
            "name": "Play Morning Alarm",
            "task_type": "play_sound",
            "scheduled_at": "2030-01-01T10:00:00",
            "timezone": "America/New_York",
            "parameters": {"sound_id": sound["id"]},
        },
    )
    if not available(TaskType.PLAY_SOUND):
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [
            {
                "type": "value_error",
                "loc": ["body", "task_type"],
                "msg": "task type play_sound is not available on this server",
            }
        ]
        return
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["scheduled_at"] == "2030-01-01T15:00:00+00:00"
    assert task["timezone"] == "America/New_York"
    assert task["recurrence_type"] == "none"


async def test_seed_daily_credit_recharge_system_task(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/scheduler/admin/system-tasks",
        headers={"Content-Type": "application/json", **cookie(someone(), Role.ADMIN)},
        json={
            "name": "Daily Credit Recharge",
            "task_type": "credit_recharge",
            "scheduled_at": "2024-01-01T00:00:00",
            "timezone": "UTC",
            "recurrence_type": "daily",
            "parameters": {},
        },
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["name"] == "Daily Credit Recharge"
    assert task["task_type"] == "credit_recharge"
    assert task["status"] == "pending"
    assert task["user_id"] is None
    assert task["recurrence_type"] == "daily"
    assert task["scheduled_at"] == "2024-01-01T00:00:00+00:00"
    assert task["timezone"] == "UTC"
    assert task["parameters"] == {}
    assert task["next_execution_at"] == next_midnight_utc()
    assert task["executions_count"] == 0
    assert task["last_executed_at"] is None
    assert task["error_message"] is None
    assert task["id"] != str(DAILY_RECHARGE_ID)  # an admin's own, beside the start-up one


async def test_seed_cron_playlist(client: httpx.AsyncClient, tmp_path: Path) -> None:
    user = someone()
    sound = await upload(client, cookie(user), tone(tmp_path / "track.wav", 0.5))
    created = await client.post(
        "/api/v1/playlists", headers=cookie(user), json={"name": "Work", "sound_ids": [sound["id"]]}
    )
    response = await client.post(
        "/api/v1/scheduler/tasks",
        headers={"Content-Type": "application/json", **cookie(user)},
        json={
            "name": "Workday Playlist",
            "task_type": "play_playlist",
            # A year of its own on this module's server: the loop holds the output until
            # the next weekday.
            "scheduled_at": "2036-01-01T09:00:00",
            "timezone": "America/New_York",
            "recurrence_type": "cron",
            "cron_expression": "0 9 * * 1-5",
            "parameters": {
                "playlist_id": created.json()["id"],
                "play_mode": "loop",
                "shuffle": True,
            },
        },
    )
    if not available(TaskType.PLAY_PLAYLIST):
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", "task_type"]
        assert error["msg"] == "task type play_playlist is not available on this server"
        return
    assert response.status_code == 201, response.text
    task = response.json()
    assert task["cron_expression"] == "0 9 * * 1-5"
    assert task["next_execution_at"] == "2036-01-01T14:00:00+00:00"


async def test_seed_monitoring_calls(shared_server: Server, client: httpx.AsyncClient) -> None:
    """Get status, list (status=pending&limit=10), admin view (limit=50), cancel: the seed's
    curls with a user's token and an admin's."""
    alice = someone()
    task_id = await user_task(shared_server, alice, "Play Morning Alarm")
    response = await client.get(f"/api/v1/scheduler/tasks/{task_id}", headers=cookie(alice))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == task_id
    assert response.json()["status"] == "pending"
    assert response.json()["user_id"] == alice

    response = await client.get(
        "/api/v1/scheduler/tasks?status=pending&limit=10", headers=cookie(alice)
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert [t["id"] for t in page["tasks"]] == [task_id]
    assert (page["total"], page["limit"], page["offset"]) == (1, 10, 0)

    response = await client.get(
        "/api/v1/scheduler/admin/tasks?limit=50", headers=cookie(someone(), Role.ADMIN)
    )
    assert response.status_code == 200, response.text
    page = response.json()
    ids = [t["id"] for t in page["tasks"]]
    assert task_id in ids
    assert str(DAILY_RECHARGE_ID) in ids or page["total"] > 50
    assert page["limit"] == 50

    response = await client.delete(f"/api/v1/scheduler/tasks/{task_id}", headers=cookie(alice))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["next_execution_at"] is None


# Auth -----------------------------------------------------------------------------------------


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/scheduler/tasks")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "detail": "Not authenticated: send a JWT as `Authorization: Bearer <token>` or the "
        "access_token cookie."
    }


async def test_forged_token_is_401(client: httpx.AsyncClient) -> None:
    other = AuthSettings(secret="not-the-server-secret-at-all-really")  # type: ignore[arg-type]
    forged = token(someone(), Role.ADMIN, settings=other)
    response = await client.get(
        "/api/v1/scheduler/admin/tasks", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == (
        "Not authenticated: invalid token (Signature verification failed)."
    )


async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    old = token(someone(), now=datetime.now(UTC) - timedelta(hours=2))
    response = await client.get("/api/v1/users/me", headers={"Cookie": f"access_token={old}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Not authenticated: the token has expired."


async def test_bearer_header_works_and_wins_over_the_cookie(client: httpx.AsyncClient) -> None:
    alice, bob = someone(), someone()
    response = await client.get("/api/v1/users/me", headers={**bearer(alice), **cookie(bob)})
    assert response.status_code == 200, response.text
    assert response.json()["id"] == alice


async def test_users_are_created_on_first_use(client: httpx.AsyncClient) -> None:
    alice = someone()
    response = await client.get("/api/v1/users/me", headers=cookie(alice))
    assert response.status_code == 200, response.text
    me = response.json()
    assert (me["id"], me["role"], me["credits"]) == (alice, "user", 100)
    assert me["plan"] == {"credits": 100, "max_credits": 500}
    assert datetime.fromisoformat(me["created_at"]).utcoffset() == timedelta(0)
    # The role follows the token.
    response = await client.get("/api/v1/users/me", headers=cookie(alice, Role.ADMIN))
    assert response.json()["role"] == "admin"
    assert response.json()["credits"] == 100


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/scheduler/admin/tasks"),
        ("POST", "/api/v1/scheduler/admin/system-tasks"),
    ],
)
async def test_admin_routes_need_the_admin_role(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {
        "name": "x",
        "task_type": "credit_recharge",
        "scheduled_at": in_hours(1),
        "parameters": {},
    }
    response = await client.request(
        method, path, headers=cookie(someone()), json=body if method == "POST" else None
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Forbidden: this needs an admin token."}


async def test_users_may_not_schedule_recharges(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/scheduler/tasks",
        headers=cookie(someone()),
        json={
            "name": "free money",
            "task_type": "credit_recharge",
            "scheduled_at": in_hours(1),
            "parameters": {},
        },
    )
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Forbidden: only admins may schedule credit_recharge tasks."
    }


# Ownership ------------------------------------------------------------------------------------


async def test_a_user_reaches_only_their_own_tasks(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    alice, bob, admin = someone(), someone(), someone()
    task_id = await user_task(shared_server, alice)
    url = f"/api/v1/scheduler/tasks/{task_id}"

    response = await client.get(url, headers=cookie(bob))
    assert response.status_code == 404
    assert response.json() == {"detail": f"Task not found: {task_id}."}

    response = await client.delete(url, headers=cookie(bob))
    assert response.status_code == 404
    assert (await client.get(url, headers=cookie(alice))).json()["status"] == "pending"

    listed = (await client.get("/api/v1/scheduler/tasks", headers=cookie(bob))).json()
    assert (listed["tasks"], listed["total"]) == ([], 0)

    # Admins reach any task by id, and see it among alice's.
    response = await client.get(url, headers=cookie(admin, Role.ADMIN))
    assert response.status_code == 200
    response = await client.get(
        f"/api/v1/scheduler/admin/tasks?user_id={alice}", headers=cookie(admin, Role.ADMIN)
    )
    assert [t["id"] for t in response.json()["tasks"]] == [task_id]
    # ... but their own list holds their own tasks only.
    listed = (await client.get("/api/v1/scheduler/tasks", headers=cookie(admin, Role.ADMIN))).json()
    assert listed["total"] == 0

    response = await client.delete(url, headers=cookie(alice))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    response = await client.delete(url, headers=cookie(alice))
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Task {task_id} is already cancelled and cannot be cancelled."
    }


async def test_system_tasks_are_not_users_tasks(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/api/v1/scheduler/tasks/{DAILY_RECHARGE_ID}", headers=cookie(someone())
    )
    assert response.status_code == 404
    response = await client.delete(
        f"/api/v1/scheduler/tasks/{DAILY_RECHARGE_ID}", headers=cookie(someone())
    )
    assert response.status_code == 404
    response = await client.get(
        f"/api/v1/scheduler/tasks/{DAILY_RECHARGE_ID}", headers=cookie(someone(), Role.ADMIN)
    )
    assert response.json()["status"] == "pending"


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    headers = cookie(someone(), Role.ADMIN)
    response = await client.get(f"/api/v1/scheduler/tasks/{UNKNOWN}", headers=headers)
    assert response.status_code == 404
    response = await client.get("/api/v1/scheduler/tasks/not-an-id", headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]


# Listing --------------------------------------------------------------------------------------


async def test_listing_pages_newest_first_with_a_total(client: httpx.AsyncClient) -> None:
    admin = cookie(someone(), Role.ADMIN)
    ids = []
    for i in range(5):
        response = await client.post(
            "/api/v1/scheduler/tasks",
            headers=admin,
            json={
                "name": f"task {i}",
                "task_type": "credit_recharge",
                "scheduled_at": in_hours(10 + i),
                "parameters": {},
            },
        )
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    await client.delete(f"/api/v1/scheduler/tasks/{ids[0]}", headers=admin)

    page = (await client.get("/api/v1/scheduler/tasks?limit=2&offset=1", headers=admin)).json()
    assert [t["id"] for t in page["tasks"]] == [ids[3], ids[2]]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 1)

    page = (await client.get("/api/v1/scheduler/tasks?status=cancelled", headers=admin)).json()
    assert [t["id"] for t in page["tasks"]] == [ids[0]]
    assert page["total"] == 1

    response = await client.get("/api/v1/scheduler/tasks?status=sleeping", headers=admin)
    assert response.status_code == 422
    response = await client.get("/api/v1/scheduler/tasks?limit=0", headers=admin)
    assert response.status_code == 422


async def test_admin_filters(client: httpx.AsyncClient) -> None:
    admin_id = someone()
    admin = cookie(admin_id, Role.ADMIN)
    test_id = await schedule(
        client, condition={"type": "at", "parameters": {"datetime": in_hours(48)}}
    )
    response = await client.get(
        "/api/v1/scheduler/admin/tasks?task_type=test&status=pending&limit=500", headers=admin
    )
    assert test_id in [t["id"] for t in response.json()["tasks"]]
    assert {t["task_type"] for t in response.json()["tasks"]} == {"test"}

    response = await client.get(
        f"/api/v1/scheduler/admin/tasks?task_type=credit_recharge&user_id={admin_id}",
        headers=admin,
    )
    assert response.json()["total"] == 0


# Instants, zones and validation ---------------------------------------------------------------


async def test_naive_times_are_wall_time_in_the_zone(client: httpx.AsyncClient) -> None:
    admin = cookie(someone(), Role.ADMIN)
    body = {
        "name": "zoned",
        "task_type": "credit_recharge",
        "scheduled_at": "2031-07-01T09:30:00",
        "timezone": "Europe/Warsaw",
        "parameters": {},
    }
    task = (await client.post("/api/v1/scheduler/tasks", headers=admin, json=body)).json()
    assert task["scheduled_at"] == "2031-07-01T07:30:00+00:00"  # CEST is UTC+2
    assert task["next_execution_at"] == "2031-07-01T07:30:00+00:00"
    assert task["timezone"] == "Europe/Warsaw"

    body |= {"scheduled_at": "2031-07-01T09:30:00-04:00"}  # aware: taken as is
    task = (await client.post("/api/v1/scheduler/tasks", headers=admin, json=body)).json()
    assert task["scheduled_at"] == "2031-07-01T13:30:00+00:00"
    assert task["timezone"] == "Europe/Warsaw"


async def test_recurring_with_a_count(client: httpx.AsyncClient) -> None:
    body = {
        "name": "weekly",
        "task_type": "credit_recharge",
        "scheduled_at": "2031-01-06T09:00:00",
        "timezone": "America/New_York",
        "recurrence_type": "weekly",
        "recurrence_count": 10,
        "parameters": {"user_id": None},
    }
    response = await client.post(
        "/api/v1/scheduler/tasks", headers=cookie(someone(), Role.ADMIN), json=body
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert (task["recurrence_type"], task["recurrence_count"]) == ("weekly", 10)
    assert task["next_execution_at"] == "2031-01-06T14:00:00+00:00"
    assert task["description"] == (
        "every week on Monday at 09:00, America/New_York, from 2031-01-06, 10 times"
    )


def _problem(response: httpx.Response) -> tuple[int, list[tuple[list[str], str]]]:
    return response.status_code, [(e["loc"], e["msg"]) for e in response.json()["detail"]]


@pytest.mark.parametrize(
    ("change", "loc", "message"),
    [
        pytest.param(
            {"task_type": "play_sound", "parameters": {}},
            ["body", "parameters", "sound_id"],
            "Field required",
            id="missing_sound_id",
        ),
        pytest.param(
            {
                "task_type": "play_playlist",
                "parameters": {"playlist_id": PLAYLIST, "play_mode": "shuffle_all"},
            },
            ["body", "parameters", "play_mode"],
            "Input should be 'continuous', 'single', 'loop', 'loop_one' or 'random'",
            id="unknown_play_mode",
        ),
        pytest.param(
            {"parameters": {"user": "alice"}},
            ["body", "parameters", "user"],
            "Extra inputs are not permitted",
            id="unknown_recharge_parameter",
        ),
        pytest.param(
            {"timezone": "Mars/Olympus_Mons"},
            ["body", "timezone"],
            "unknown time zone 'Mars/Olympus_Mons': use an IANA name such as 'Europe/Warsaw'",
            id="unknown_zone",
        ),
        pytest.param(
            {"recurrence_type": "cron"},
            ["body", "cron_expression"],
            "cron_expression is required with cron",
            id="cron_without_expression",
        ),
        pytest.param(
            {"cron_expression": "0 9 * * *"},
            ["body", "cron_expression"],
            "cron_expression is only for recurrence_type cron",
            id="expression_without_cron",
        ),
        pytest.param(
            {"recurrence_type": "cron", "cron_expression": "0 25 * * *"},
            ["body", "cron_expression"],
            "invalid cron expression '0 25 * * *': [0 25 * * *] is not acceptable, out of range",
            id="bad_cron",
        ),
        pytest.param(
            {"recurrence_count": 3},
            ["body", "recurrence_count"],
            "recurrence_count is for recurring tasks only",
            id="count_of_a_one_shot",
        ),
        pytest.param(
            {"recurrence_type": "daily", "recurrence_count": 0},
            ["body", "recurrence_count"],
            "Input should be greater than or equal to 1",
            id="zero_count",
        ),
        pytest.param(
            {"task_type": "stream"},
            ["body", "task_type"],
            "Input should be 'credit_recharge', 'play_sound' or 'play_playlist'",
            id="unknown_task_type",
        ),
        pytest.param(
            {"scheduled_at": "tomorrow"},
            ["body", "scheduled_at"],
            "Input should be a valid datetime or date, input is too short",
            id="bad_datetime",
        ),
    ],
)
async def test_validation_names_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[str], message: str
) -> None:
    body = {
        "name": "invalid",
        "task_type": "credit_recharge",
        "scheduled_at": in_hours(1),
        "parameters": {},
    } | change
    response = await client.post(
        "/api/v1/scheduler/admin/system-tasks", headers=cookie(someone(), Role.ADMIN), json=body
    )
    assert _problem(response) == (422, [(loc, message)])


# The two surfaces share one engine ------------------------------------------------------------


async def test_tasks_created_here_are_visible_at_tasks(client: httpx.AsyncClient) -> None:
    """To their owner and to admins, on both surfaces; not to the open Tasks API's anonymous
    caller (the station), which sees the system's tasks only."""
    admin = cookie(someone(), Role.ADMIN)
    response = await client.post(
        "/api/v1/scheduler/tasks",
        headers=admin,
        json={
            "name": "seen from /tasks",
            "task_type": "credit_recharge",
            "scheduled_at": "2031-01-01T09:00:00",
            "timezone": "Europe/Warsaw",
            "recurrence_type": "cron",
            "cron_expression": "0 9 * * 1-5",
            "recurrence_count": 2,
            "parameters": {"user_id": "alice"},
        },
    )
    task_id = response.json()["id"]
    assert (await client.get(f"/tasks/{task_id}")).status_code == 404
    assert task_id not in (await client.get("/tasks")).json()["pending"]
    response = await client.get(f"/tasks/{task_id}", headers=admin)
    assert response.status_code == 200
    seen = response.json()
    assert seen["status"] == "pending"
    assert seen["task"]["operation"] == {
        "type": "credit_recharge",
        "parameters": {"user_id": "alice"},
    }
    assert seen["task"]["condition"] == {
        "type": "cron",
        "parameters": {
            "expression": "0 9 * * 1-5",
            "timezone": "Europe/Warsaw",
            "start": "2031-01-01T09:00:00",
            "count": 2,
        },
    }
    assert task_id in (await client.get("/tasks", headers=admin)).json()["pending"]


async def test_a_recharge_runs_and_shows_its_execution(client: httpx.AsyncClient) -> None:
    admin = cookie(someone(), Role.ADMIN)
    response = await client.post(
        "/api/v1/scheduler/tasks",
        headers=admin,
        json={
            "name": "soon",
            "task_type": "credit_recharge",
            "scheduled_at": in_hours(1 / 3600, zone_naive=False),
            "parameters": {"user_id": "nobody-at-all"},
        },
    )
    task_id = response.json()["id"]
    await wait_status(client, task_id, "failed", headers=admin)
    task = (await client.get(f"/api/v1/scheduler/tasks/{task_id}", headers=admin)).json()
    assert task["status"] == "failed"
    assert task["executions_count"] == 1
    assert task["error_message"] == (
        "Operation credit_recharge failed: User nobody-at-all does not exist."
    )
    started = datetime.fromisoformat(task["last_executed_at"])
    assert abs(started - datetime.fromisoformat(task["scheduled_at"])) < timedelta(seconds=2)


# Servers of their own -------------------------------------------------------------------------


async def test_the_tasks_api_can_be_locked(
    start_server: Callable[..., Server], database_url: str
) -> None:
    secret = AuthSettings(secret="a-production-secret-for-this-test")  # type: ignore[arg-type]
    server = start_server(
        database_url,
        ONAIR__AUTH__PROTECT_TASKS_API="true",
        ONAIR__AUTH__SECRET=secret.secret.get_secret_value(),
    )
    async with server.client() as client:
        assert (await client.get("/ping")).status_code == 204
        response = await client.get("/tasks")
        assert response.status_code == 401
        assert response.json()["status_code"] == 401  # the Tasks API's own error shape
        # Every route of the surface, before its body is looked at.
        for method, path in [
            ("POST", "/tasks"),
            ("POST", "/tasks/clean"),
            ("POST", "/tasks/preview"),
            ("GET", f"/tasks/{DAILY_RECHARGE_ID}"),
            ("DELETE", f"/tasks/{DAILY_RECHARGE_ID}"),
            ("GET", f"/tasks/{DAILY_RECHARGE_ID}/runs"),
            ("GET", "/synchronizer"),
            ("GET", "/events"),
        ]:
            response = await client.request(method, path, json={})
            assert (method, path, response.status_code) == (method, path, 401)
        user = token("alice", settings=secret)
        response = await client.get("/tasks", headers={"Cookie": f"access_token={user}"})
        assert response.status_code == 403
        assert response.json() == {
            "status_code": 403,
            "detail": (
                "Forbidden: the Tasks API is protected: it needs an admin token, not a user's."
            ),
        }
        admin = token("root", Role.ADMIN, settings=secret)
        response = await client.get("/tasks", headers={"Authorization": f"Bearer {admin}"})
        assert response.status_code == 200
        assert response.json()["pending"] == [str(DAILY_RECHARGE_ID)]
    assert "development secret" not in server.log.read_text()


async def test_the_development_secret_warns_and_the_cli_mints_tokens(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(database_url)
    assert "tokens are checked with the development secret" in server.log.read_text()
    command = [sys.executable, "-m", "onair", "token", "create", "--user", "carol"]
    process = await asyncio.create_subprocess_exec(
        *command, "--role", "admin", env=server.env, stdout=subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    minted = out.decode().strip()
    async with server.client() as client:
        response = await client.get(
            "/api/v1/users/me", headers={"Cookie": f"access_token={minted}"}
        )
        assert response.status_code == 200
        assert (response.json()["id"], response.json()["role"]) == ("carol", "admin")


async def test_the_daily_recharge_exists_once_across_nodes_and_restarts(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    nodes = await asyncio.gather(
        *(asyncio.to_thread(start_server, postgresql_url) for _ in range(2))
    )
    async with nodes[0].client() as client:
        response = await client.get(
            "/api/v1/scheduler/admin/tasks?task_type=credit_recharge",
            headers=cookie("root", Role.ADMIN),
        )
    assert response.status_code == 200, response.text
    tasks = response.json()["tasks"]
    assert [(t["id"], t["name"]) for t in tasks] == [
        (str(DAILY_RECHARGE_ID), "Daily Credit Recharge")
    ]
    daily = tasks[0]
    assert (daily["recurrence_type"], daily["timezone"], daily["user_id"]) == ("daily", "UTC", None)
    assert daily["scheduled_at"] == "2024-01-01T00:00:00+00:00"
    assert daily["next_execution_at"] == next_midnight_utc()

    for node in nodes:
        node.stop()
    again = start_server(postgresql_url)
    async with again.client() as client:
        response = await client.get(
            "/api/v1/scheduler/admin/tasks?task_type=credit_recharge",
            headers=cookie("root", Role.ADMIN),
        )
    assert [t["id"] for t in response.json()["tasks"]] == [str(DAILY_RECHARGE_ID)]


async def test_the_daily_recharge_can_be_turned_off(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(database_url, ONAIR__CREDITS__DAILY_RECHARGE="false")
    async with server.client() as client:
        index = (await client.get("/tasks")).json()
    assert index["pending"] == []


def test_recurrence_types_are_the_seeds() -> None:
    assert [r.value for r in RecurrenceType] == [
        "none",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "cron",
    ]

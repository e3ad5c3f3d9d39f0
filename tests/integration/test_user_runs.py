"""The user API's missing half (issue 17, part 4), against real `onair serve` processes on
SQLite and PostgreSQL: a task's run history, a bounded retry policy for users' tasks, and the
instant of a task's next attempt on every surface while it waits for a retry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from onair.accounts.credits import Accounts
from onair.store.database import Store
from tests.conftest import Server
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import tone, upload

TASKS = "/api/v1/scheduler/tasks"


async def drain(server: Server, user: str) -> None:
    """Spend the whole balance of `user` (a run of nothing), so that their next play fails."""
    async with Store(server.env["ONAIR__STORE__URL"]) as store:
        accounts = Accounts(store)
        found = await accounts.get(user)
        assert found is not None
        assert found.credits > 0
        paid = await accounts.spend(
            user, run_id=uuid.uuid4(), task_id=uuid.uuid4(), cost=found.credits, wanted=1
        )
        assert paid == 1


def play_now(sound_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Retried alarm",
        "task_type": "play_sound",
        "scheduled_at": datetime.now().astimezone().isoformat(),
        "parameters": {"sound_id": sound_id},
        **extra,
    }


async def wait_for(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], done: Any, within: float = 15
) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            if done(body := response.json()):
                return dict(body)
            await asyncio.sleep(0.05)


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_failed_run_waits_for_its_retry_and_every_surface_says_when(
    shared_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = someone()
    headers = cookie(user)
    sound = await upload(client, headers, tone(tmp_path / "beep.wav", 0.2))
    await drain(shared_server, user)
    policy = {"retry": {"attempts": 3, "backoff": "PT30S"}}
    response = await client.post(TASKS, headers=headers, json=play_now(sound["id"], policy=policy))
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    assert response.json()["policy"]["retry"]["attempts"] == 3

    # The first attempt fails (no credits); the task waits for the second, 30 s later.
    waiting = await wait_for(
        client, f"{TASKS}/{task_id}", headers, lambda t: t["attempt"] == 2 and t["executions_count"]
    )
    assert waiting["status"] == "pending"
    assert waiting["error_message"].startswith("Operation play_sound failed: insufficient credits")
    retry = instant(waiting["next_attempt_at"])
    assert waiting["next_execution_at"] == waiting["next_attempt_at"]

    runs = (await client.get(f"{TASKS}/{task_id}/runs", headers=headers)).json()
    assert runs["total"] == 1
    assert (runs["limit"], runs["offset"]) == (50, 0)
    (run,) = runs["runs"]
    assert run["attempt"] == 1
    assert run["outcome"] == "failed"
    assert run["error_message"] == waiting["error_message"]
    assert run["result"] is None
    assert 0 <= run["lateness"] < 5
    assert instant(run["started_at"]) - instant(run["due_at"]) == timedelta(seconds=run["lateness"])
    # The backoff counts from the failure.
    delay = retry - instant(run["finished_at"])
    assert timedelta(seconds=29) <= delay <= timedelta(seconds=31), delay

    # The Tasks API (as the owner) and the dashboard's data show the same instant.
    generic = (await client.get(f"/tasks/{task_id}", headers=headers)).json()
    assert generic["status"] == "pending"
    assert instant(generic["retry"] + "+00:00") == retry
    assert generic["next"] == generic["retry"]

    overview = (await client.get("/ui/api/overview", headers=headers)).json()
    (item,) = [i for i in overview["timeline"] if i["id"] == task_id]  # a one-shot: no next_at
    assert (instant(item["at"]), item["retry"]) == (retry, 2)

    cancelled = await client.delete(f"{TASKS}/{task_id}", headers=headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["next_attempt_at"] is None
    assert cancelled.json()["next_execution_at"] is None


async def test_run_history_pages_and_is_the_owners_only(
    shared_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = someone()
    headers = cookie(user)
    sound = await upload(client, headers, tone(tmp_path / "beep.wav", 0.2))
    await drain(shared_server, user)
    policy = {"retry": {"attempts": 2, "backoff": "PT10S"}}
    response = await client.post(TASKS, headers=headers, json=play_now(sound["id"], policy=policy))
    task_id = response.json()["id"]
    await wait_for(client, f"{TASKS}/{task_id}", headers, lambda t: t["executions_count"] == 1)
    empty = (await client.get(f"{TASKS}/{task_id}/runs?offset=1", headers=headers)).json()
    assert empty == {"runs": [], "total": 1, "limit": 50, "offset": 1}
    other = await client.get(f"{TASKS}/{task_id}/runs", headers=cookie(someone()))
    assert other.status_code == 404
    bad = await client.get(f"{TASKS}/{task_id}/runs?limit=0", headers=headers)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "limit"]
    await client.delete(f"{TASKS}/{task_id}", headers=headers)


async def test_users_retry_policies_are_bounded_by_the_node(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The defaults: at most 5 attempts, at least 10 s apart (`ONAIR__RETRIES__*`)."""
    user = someone()
    headers = cookie(user)
    sound = await upload(client, headers, tone(tmp_path / "beep.wav", 0.2))
    later = (datetime.now().astimezone() + timedelta(days=1)).isoformat()

    async def refusal(retry: dict[str, Any]) -> list[dict[str, Any]]:
        request = {**play_now(sound["id"], policy={"retry": retry}), "scheduled_at": later}
        response = await client.post(TASKS, headers=headers, json=request)
        assert response.status_code == 422, response.text
        return list(response.json()["detail"])

    assert await refusal({"attempts": 6, "backoff": "PT1M"}) == [
        {
            "type": "value_error",
            "loc": ["body", "policy", "retry", "attempts"],
            "msg": "at most 5 attempts are allowed on this server",
        }
    ]
    (problem,) = await refusal({"attempts": 2, "backoff": 1})
    assert problem["loc"] == ["body", "policy", "retry", "backoff"]
    assert problem["msg"] == "the backoff must be at least 10 seconds on this server"
    (problem,) = await refusal({"attempts": 2, "tries": 3})
    assert problem["loc"] == ["body", "policy", "retry", "tries"]

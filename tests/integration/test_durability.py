"""A node killed with SIGKILL loses nothing that was acknowledged: pending tasks run at their
times after a restart, and a run that was in progress is recovered by the documented rule."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tests.conftest import Server
from tests.integration.helpers import LATE, schedule, wait_status

LEASE = "PT2S"


def at(seconds: float) -> dict[str, object]:
    instant = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=seconds)
    return {"type": "at", "parameters": {"datetime": instant.isoformat()}}


async def test_restart_after_sigkill(
    start_server: Callable[..., Server], database_url: str
) -> None:
    first = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    async with first.client() as client:
        done = await schedule(client)
        await wait_status(client, done, "completed")
        due = datetime.now(UTC) + timedelta(seconds=8)
        later = await schedule(client, condition=at(8))
        busy = await schedule(client, parameters={"sleep": 60})
        await wait_status(client, busy, "running")
    first.kill()

    second = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    # A node that comes up after the instant (a start of seconds on a loaded machine) runs the
    # task as it starts: it is late by that much, and only that much.
    up_late = max(0.0, (datetime.now(UTC) - due).total_seconds())
    async with second.client() as client:
        assert (await client.get(f"/tasks/{done}")).json()["status"] == "completed"
        failed = await wait_status(client, busy, "failed", within=10)
        assert failed["error"].startswith("Interrupted: node ")
        assert "stopped while the run was in progress" in failed["error"]
        runs = (await client.get(f"/tasks/{busy}/runs")).json()["runs"]
        assert [r["outcome"] for r in runs] == ["interrupted"]

        completed = await wait_status(client, later, "completed", within=15)
        run = (await client.get(f"/tasks/{later}/runs")).json()["runs"][0]
        assert 0 <= run["lateness"] < LATE + up_late, run
        assert completed["result"]["parameters"] == {}


async def test_interrupted_run_is_retried_when_its_policy_allows(
    start_server: Callable[..., Server], database_url: str
) -> None:
    first = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    request = {
        "operation": {"type": "test", "parameters": {"sleep": 1}},
        "condition": {"type": "now", "parameters": {}},
        "dependencies": {},
        "policy": {"retry": {"attempts": 2, "backoff": "PT0.1S"}},
    }
    async with first.client() as client:
        response = await client.post("/tasks", json=request)
        task_id = response.json()["task"]["id"]
        await wait_status(client, task_id, "running")
    first.kill()

    second = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    async with second.client() as client:
        await wait_status(client, task_id, "completed", within=15)
        runs = (await client.get(f"/tasks/{task_id}/runs")).json()["runs"]
        assert [(r["attempt"], r["outcome"]) for r in runs] == [
            (2, "completed"),
            (1, "interrupted"),
        ]


async def test_graceful_stop_interrupts_and_records(
    start_server: Callable[..., Server], database_url: str
) -> None:
    first = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    async with first.client() as client:
        busy = await schedule(client, parameters={"sleep": 60})
        await wait_status(client, busy, "running")
    first.stop()
    second = start_server(database_url, ONAIR__ENGINE__LEASE=LEASE)
    async with second.client() as client:
        # Recorded by the stopping node itself: no lease has to expire.
        failed = await wait_status(client, busy, "failed", within=1)
        assert "shut down while the run was in progress" in failed["error"]
    await asyncio.sleep(0)

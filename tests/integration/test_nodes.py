"""Several `onair serve` processes on one PostgreSQL database share the work; every run starts
exactly once, a cancel reaches the node that runs the task, and a dead node's runs are recovered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import Server
from tests.integration.helpers import body, schedule, wait_status

LEASE = "PT2S"


async def test_two_nodes_run_every_task_exactly_once(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    nodes = [
        start_server(postgresql_url, ONAIR__ENGINE__LEASE=LEASE, ONAIR__ENGINE__NODE=name)
        for name in ("a", "b")
    ]
    base = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=2)
    clients = [node.client() for node in nodes]
    try:
        ids = []
        for i in range(300):
            due = base + timedelta(milliseconds=10 * i)
            condition = {"type": "at", "parameters": {"datetime": due.isoformat()}}
            client = clients[i % 2]
            response = await client.post("/tasks", json=body(condition=condition))
            assert response.status_code == 201
            ids.append(response.json()["task"]["id"])
        async with asyncio.timeout(30):
            while len((await clients[0].get("/tasks")).json()["completed"]) < len(ids):
                await asyncio.sleep(0.1)
        seen: dict[str, int] = {}
        for task_id in ids:
            runs = (await clients[1].get(f"/tasks/{task_id}/runs")).json()
            assert runs["count"] == 1, runs
            node = runs["runs"][0]["node"]
            seen[node] = seen.get(node, 0) + 1
        assert set(seen) <= {"a", "b"}
        assert sum(seen.values()) == 300
    finally:
        for client in clients:
            await client.aclose()


async def test_cancel_reaches_the_node_that_runs_the_task(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    a = start_server(postgresql_url, ONAIR__ENGINE__LEASE=LEASE, ONAIR__ENGINE__NODE="a")
    b = start_server(postgresql_url, ONAIR__ENGINE__LEASE=LEASE, ONAIR__ENGINE__NODE="b")
    async with a.client() as client_a, b.client() as client_b:
        task_id = await schedule(client_a, parameters={"sleep": 60})
        await wait_status(client_a, task_id, "running")
        node = (await client_a.get(f"/tasks/{task_id}/runs")).json()["runs"][0]["node"]
        other = client_b if node == "a" else client_a
        holder = a if node == "a" else b
        assert (await other.delete(f"/tasks/{task_id}")).status_code == 200
        async with asyncio.timeout(2):
            while f"task={task_id}" not in _ended_lines(holder):
                await asyncio.sleep(0.05)
        assert "outcome=cancelled" in _ended_lines(holder)


def _ended_lines(server: Server) -> str:
    return "\n".join(line for line in server.log.read_text().splitlines() if "run ended" in line)


async def test_a_dead_nodes_run_is_recovered_by_another(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    a = start_server(postgresql_url, ONAIR__ENGINE__LEASE=LEASE, ONAIR__ENGINE__NODE="a")
    b = start_server(postgresql_url, ONAIR__ENGINE__LEASE=LEASE, ONAIR__ENGINE__NODE="b")
    async with a.client() as client_a, b.client() as client_b:
        task_id = await schedule(client_a, parameters={"sleep": 60})
        await wait_status(client_a, task_id, "running")
        node = (await client_a.get(f"/tasks/{task_id}/runs")).json()["runs"][0]["node"]
        (a if node == "a" else b).kill()
        survivor: httpx.AsyncClient = client_b if node == "a" else client_a
        failed = await wait_status(survivor, task_id, "failed", within=10)
        assert failed["error"].startswith(f"Interrupted: node {node} stopped")

"""Waiting for states over HTTP, always under a deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

NOW = {"type": "now", "parameters": {}}


def body(
    parameters: dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
    dependencies: dict[str, str] | None = None,
    operation: str = "test",
) -> dict[str, Any]:
    return {
        "operation": {"type": operation, "parameters": parameters or {}},
        "condition": condition or NOW,
        "dependencies": dependencies or {},
    }


async def schedule(client: httpx.AsyncClient, **kwargs: Any) -> str:
    response = await client.post("/tasks", json=body(**kwargs))
    assert response.status_code == 201, response.text
    return str(response.json()["task"]["id"])


async def wait_status(
    client: httpx.AsyncClient,
    task_id: str,
    status: str,
    within: float = 15,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The task in the shape of `status`, once it has it (asked with `headers`: a user's task
    needs its owner's or an admin's token on the Tasks API)."""
    async with asyncio.timeout(within):
        while True:
            response = await client.get(f"/tasks/{task_id}", headers=headers)
            assert response.status_code == 200, response.text
            if response.json()["status"] == status:
                detail = await client.get(f"/tasks/{status}/{task_id}", headers=headers)
                assert detail.status_code == 200, detail.text
                return dict(detail.json())
            await asyncio.sleep(0.02)


LATE = 0.5
"""Seconds a run may start late in a test: a bound that holds on a loaded 2-core machine.
The real precision (milliseconds) is measured by `make bench`, not asserted here."""

"""A node started with `ONAIR__LOG__FORMAT=json` writes one JSON object per line, and each run's
start and end lines name the task, the run, the operation, the lateness and the outcome."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Server
from tests.integration.helpers import schedule, wait_status


def json_lines(log: Path) -> list[dict[str, Any]]:
    """Every line of the log, each parsed (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def fields(message: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", message))


async def test_json_lines_with_the_run_fields(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(f"sqlite:///{tmp_path / 'logs.db'}", ONAIR__LOG__FORMAT="json")
    async with server.client() as client:
        task = await schedule(client, parameters={"fail": "dead air"})
        await wait_status(client, task, "failed")
        run = (await client.get(f"/tasks/{task}/runs")).json()["runs"][0]
        async with asyncio.timeout(10):
            while not any(
                fields(line["message"]).get("outcome") for line in json_lines(server.log)
            ):
                await asyncio.sleep(0.05)

    lines = json_lines(server.log)
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    runs = [line for line in lines if fields(line["message"]).get("task") == task]
    assert [line["message"].split(" task=")[0] for line in runs] == ["run started", "run ended"]
    started, ended = (fields(line["message"]) for line in runs)
    assert started["run"] == ended["run"] == run["id"]
    assert started["operation"] == ended["operation"] == "test"
    assert abs(float(started["lateness_ms"]) - run["lateness"] * 1000) < 0.1
    assert ended["outcome"] == "failed"
    assert runs[1]["message"].endswith(" error='Operation test failed: dead air.'")
    assert all(line["logger"] == "onair.engine" for line in runs)

"""Real `python -m onair serve` processes, and load on their HTTP API (wrk, else httpx).

The server is the product as deployed: its own process, uvicorn, the FastAPI app and the
engine, configured only through `ONAIR__*` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import FAR_FUTURE, temp_dir

FAR_BODY = {
    "operation": {"type": "test", "parameters": {}},
    "condition": {"type": "at", "parameters": {"datetime": FAR_FUTURE}},
    "dependencies": {},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def server(
    url: str, directory: Path, node: str = "bench", **settings: str
) -> AsyncIterator[str]:
    """A serving node on store `url`, with `settings` as more `ONAIR__*` variables; yields
    its base URL once `/ping` answers. Its log goes to `directory/<node>.log`."""
    port = free_port()
    env = {
        **os.environ,
        **settings,
        "ONAIR__STORE__URL": url,
        "ONAIR__SERVER__PORT": str(port),
        "ONAIR__SYNCHRONIZER__ENABLED": "false",
        "ONAIR__ENGINE__NODE": node,
    }
    with (directory / f"{node}.log").open("w") as logfile:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "onair",
            "serve",
            env=env,
            stdout=logfile,
            stderr=asyncio.subprocess.STDOUT,
            cwd=directory,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            try:
                await _wait_ready(base, process)
            except RuntimeError as error:
                tail = "\n".join((directory / f"{node}.log").read_text().splitlines()[-15:])
                raise RuntimeError(f"{error}; its log ends with:\n{tail}") from None
            yield base
        finally:
            await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after 15 s."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        process.kill()
        await process.wait()


async def _wait_ready(base: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"onair serve exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/ping")).status_code == 204:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("onair serve did not answer /ping within 60 s")


async def http_throughput(
    duration: float, repetitions: int, connections: int
) -> tuple[list[float], str]:
    """Requests/s of `POST /tasks` (a far-future `test` task) against one fresh node on
    SQLite, `repetitions` times; and the tool used."""
    with temp_dir() as directory:
        async with server(f"sqlite:///{directory / 'onair.db'}", directory) as base:
            await _post_many(base, 50, connections)  # warm-up: imports, caches, first pages
            rates = []
            for _ in range(repetitions):
                if shutil.which("wrk"):
                    rates.append(await _wrk(base, duration, connections, directory))
                else:
                    rates.append(await _httpx_load(base, duration, connections))
    return rates, "wrk" if shutil.which("wrk") else "httpx"


async def _wrk(base: str, duration: float, connections: int, directory: Path) -> float:
    script = directory / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{json.dumps(FAR_BODY)}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    process = await asyncio.create_subprocess_exec(
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        f"{base}/tasks",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode()
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"wrk failed or saw errors:\n{output}")
    return float(match.group(1))


async def _httpx_load(base: str, duration: float, connections: int) -> float:
    """The fallback load generator: `connections` keep-alive clients posting in a loop."""
    done = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def loop() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.post("/tasks", json=FAR_BODY)).raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(connections)))
        return done / (time.perf_counter() - started)


async def _post_many(base: str, count: int, connections: int) -> None:
    await post_tasks([base], [FAR_BODY] * count, connections)


async def post_tasks(bases: list[str], bodies: list[dict[str, Any]], connections: int) -> list[str]:
    """Create tasks over HTTP, spread round-robin over `bases`, `connections` at a time;
    returns their ids in the order of `bodies`."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    ids: list[str] = [""] * len(bodies)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(bodies)):
        queue.put_nowait(index)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                base = bases[index % len(bases)]
                response = await client.post(f"{base}/tasks", json=bodies[index])
                response.raise_for_status()
                ids[index] = response.json()["task"]["id"]

        await asyncio.gather(*(worker() for _ in range(connections)))
    return ids


async def get_runs(base: str, ids: list[str], connections: int) -> dict[str, list[dict[str, Any]]]:
    """Every run of each task id (`GET /tasks/{id}/runs`)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    runs: dict[str, list[dict[str, Any]]] = {}
    pending = list(ids)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while pending:
                task_id = pending.pop()
                response = await client.get(f"/tasks/{task_id}/runs", params={"limit": 500})
                response.raise_for_status()
                runs[task_id] = response.json()["runs"]

        await asyncio.gather(*(worker() for _ in range(connections)))
    return runs

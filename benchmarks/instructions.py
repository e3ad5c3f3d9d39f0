"""`python -m benchmarks.instructions`: CPU instructions per task added and per `POST /tasks`.

Times on a shared 2-core virtual machine swing by 20-40% from one minute to the next, which
hides any change smaller than that. Instructions do not: valgrind's callgrind counts them,
the same to 0.1% from run to run whatever else the machine does. So this is how a change to
the hot paths is compared, commit against commit (seconds still decide the targets, in the
suite). Each workload runs in its own process under `valgrind --tool=callgrind` with counting
off, and turns it on (`callgrind_control -i on`) only around the measured part:

- `add_many`: `Engine.add_many` of 1,000 no-op tasks on SQLite, after 500 to warm up;
- `post`: 480 `POST /tasks` through onair's whole ASGI application (`create_app`, engine
  running, SQLite), 16 at a time, in process: everything of a request but uvicorn's parsing
  and the socket; after 200 to warm up.

Needs valgrind (`apt-get install -y valgrind`); each workload takes about a minute under it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks.common import FAR_FUTURE, new_task, onair_engine, sqlite_url, temp_dir

ADDED = 1_000
REQUESTS = 480
CONCURRENCY = 16


def counting(on: bool) -> None:
    """Turn callgrind's counting on or off for this process (a no-op outside valgrind)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        capture_output=True,
        check=False,
    )


async def add_many() -> int:
    with temp_dir() as directory:
        async with onair_engine(sqlite_url(directory)) as engine:
            await engine.add_many([new_task(FAR_FUTURE) for _ in range(500)])
            news = [new_task(FAR_FUTURE) for _ in range(ADDED)]
            counting(True)
            await engine.add_many(news)
            counting(False)
    return ADDED


BODY = json.dumps(
    {
        "operation": {"type": "test", "parameters": {}},
        "condition": {"type": "at", "parameters": {"datetime": FAR_FUTURE}},
        "dependencies": {},
    }
).encode()


async def _post(app: Any, state: dict[str, Any]) -> int:
    """One `POST /tasks` through the ASGI application; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 33000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/tasks",
        "raw_path": b"/tasks",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:33000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "state": dict(state),  # the lifespan's, as a server hands it to each request
    }
    messages = [{"type": "http.request", "body": BODY, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect: the response is sent before
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


async def post() -> int:
    from onair.app import create_app
    from onair.config import Settings

    with tempfile.TemporaryDirectory(prefix="onair-bench-") as directory:
        os.environ["ONAIR__STORE__URL"] = f"sqlite:///{Path(directory) / 'onair.db'}"
        os.environ["ONAIR__SYNCHRONIZER__ENABLED"] = "false"
        app = create_app(Settings())
        async with app.router.lifespan_context(app) as state:

            async def client(requests: int) -> None:
                for _ in range(requests):
                    if (status := await _post(app, state)) != 201:
                        raise RuntimeError(f"POST /tasks answered {status}")

            await asyncio.gather(*(client(200 // CONCURRENCY) for _ in range(CONCURRENCY)))
            counting(True)
            await asyncio.gather(*(client(REQUESTS // CONCURRENCY) for _ in range(CONCURRENCY)))
            counting(False)
    return REQUESTS


WORKLOADS: dict[str, tuple[Callable[[], Awaitable[int]], str]] = {
    "add_many": (add_many, "per task added"),
    "post": (post, "per POST /tasks"),
}


def measure(name: str) -> float:
    """Instructions per unit of workload `name`, counted by callgrind in a child process."""
    with tempfile.TemporaryDirectory() as directory:
        output = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={directory}/callgrind.out",
                sys.executable,
                "-m",
                "benchmarks.instructions",
                "--run",
                name,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    collected = re.search(r"Collected : (\d+)", output.stderr)
    units = re.search(r"units=(\d+)", output.stdout)
    if collected is None or units is None:
        raise RuntimeError(f"no count from callgrind:\n{output.stdout}\n{output.stderr[-2000:]}")
    return int(collected.group(1)) / int(units.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--run", choices=sorted(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("workloads", nargs="*", help=f"of {', '.join(WORKLOADS)} (default: all)")
    args = parser.parse_args()
    if unknown := set(args.workloads) - set(WORKLOADS):
        parser.error(f"no workload {', '.join(sorted(unknown))}")
    if args.run:  # inside valgrind
        import uvloop

        print(f"units={uvloop.run(WORKLOADS[args.run][0]())}")
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    for name in args.workloads or WORKLOADS:
        print(f"{name:10s} {measure(name) / 1000:8.1f}k instructions {WORKLOADS[name][1]}")


if __name__ == "__main__":
    main()

"""Automated broadcasts end to end, in compressed time: a real `onair serve` process whose
synchronizer (every 2 s) schedules stream tasks 15 s ahead from the fake emishows, and whose
stream operation sends a recording with a real ffmpeg to a real ffmpeg SRT listener that stands
in for emistream's ingest. One server and one set of fakes serve the whole module; the tests run
one after another, each with its own event, and free emistream's slot when done.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from onair.ffmpeg import ffmpeg_path
from tests.conftest import Server
from tests.fakes import Neighbours, served_neighbours
from tests.integration.helpers import wait_status
from tests.integration.test_stream_operation import (
    Listener,
    Replay,
    duration,
    replay_with_recordings,
)

TOKEN = "fedcba9876543210" * 2
SECONDS = 3.0
LEAD = timedelta(seconds=15)


def _encode(path: Path, seconds: float) -> bytes:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=330:duration={seconds}", "-c:a", "libvorbis", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture(scope="module")
def fakes() -> Iterator[Neighbours]:
    with served_neighbours() as neighbours:
        yield neighbours


@pytest.fixture(scope="module")
def node(fakes: Neighbours, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("node")
    env = {
        "ONAIR__STORE__URL": f"sqlite:///{directory / 'onair.db'}",
        "ONAIR__SYNCHRONIZER__ENABLED": "true",
        "ONAIR__SYNCHRONIZER__INTERVAL": "PT2S",
        "ONAIR__OPERATIONS__STREAM__LEAD": "PT15S",
        "ONAIR__CREDITS__DAILY_RECHARGE": "false",
        "ONAIR__ENGINE__LEASE": "PT2S",
        "ONAIR__EMISTREAM__SRT__HOST": "127.0.0.1",
        "ONAIR__EMISTREAM__SRT__PORT": str(fakes.emistream.srt_port),
    }
    for name in ("emishows", "emirecords", "emilounge", "emistream"):
        settings = fakes.settings(name)
        env[f"ONAIR__{name.upper()}__HTTP__HOST"] = settings.http.host
        env[f"ONAIR__{name.upper()}__HTTP__PORT"] = str(settings.http.port)
    server = Server(directory, env).start()
    yield server
    server.stop()


@pytest.fixture
async def client(node: Server, fakes: Neighbours) -> AsyncIterator[httpx.AsyncClient]:
    fakes.emistream.next_token = TOKEN
    async with node.client() as client:
        yield client
    fakes.emistream.free()  # as emistream does when its ingest ends


def _streaming(node: Server) -> list[psutil.Process]:
    """The server's ffmpeg processes that send over SRT."""
    assert node.process is not None
    found = []
    for child in psutil.Process(node.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any(a.startswith("srt://") for a in child.cmdline()):
                found.append(child)
    return found


async def _task_for(client: httpx.AsyncClient, replay: Replay, within: float) -> dict[str, Any]:
    """The stream task the synchronizer made for `replay`, once it exists (any status)."""
    async with asyncio.timeout(within):
        while True:
            index = (await client.get("/tasks")).json()
            for task_id in [i for ids in index.values() for i in ids]:
                detail = (await client.get(f"/tasks/{task_id}")).json()
                parameters = detail["task"]["operation"]["parameters"]
                if parameters.get("id") == str(replay.event.id):
                    return dict(detail)
            await asyncio.sleep(0.1)


@dataclass
class Arrival:
    """When the listener first got Ogg from a caller."""

    at: datetime | None = None


async def _note_arrival(listener: Listener, arrival: Arrival) -> None:
    await listener.connected.wait()
    arrival.at = datetime.now(UTC)


async def test_a_replay_is_scheduled_by_the_synchronizer_and_broadcast_on_time(
    node: Server, fakes: Neighbours, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    recording = _encode(tmp_path / "show.ogg", SECONDS)
    replay = replay_with_recordings(fakes, recording, seconds_ahead=25)
    out = tmp_path / "received.ogg"
    arrival = Arrival()

    async with Listener(fakes.emistream.srt_port, TOKEN, out) as listener:
        noting = asyncio.create_task(_note_arrival(listener, arrival))
        task = await _task_for(client, replay, within=10)
        async with asyncio.timeout(45):
            await listener.finished()
        completed = await wait_status(client, task["task"]["id"], "completed", within=15)
        noting.cancel()

    assert task["task"]["condition"] == {
        "type": "at",
        "parameters": {"datetime": (replay.start_utc - LEAD).replace(tzinfo=None).isoformat()},
    }
    assert task["task"]["operation"]["parameters"] == {
        "id": str(replay.event.id),
        "start": replay.start.isoformat(),
    }
    (reserved,) = fakes.emistream.reservations[-1:]
    assert reserved.event == replay.event.id
    assert (reserved.at - replay.start_utc).total_seconds() == pytest.approx(-10, abs=1.5)
    assert arrival.at is not None
    assert (arrival.at - replay.start_utc).total_seconds() == pytest.approx(-1, abs=1)
    assert await duration(out) == pytest.approx(SECONDS, abs=0.5)
    assert completed["result"]["bytes"] == len(recording)
    assert completed["result"]["source"]["event"] == str(replay.live.id)
    assert _streaming(node) == []


async def test_an_event_removed_before_its_broadcast_is_never_streamed(
    node: Server, fakes: Neighbours, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, b"never sent", seconds_ahead=18)
    reservations = len(fakes.emistream.reservations)

    task = await _task_for(client, replay, within=10)
    with fakes.emishows.lock:
        del fakes.emishows.events[replay.event.id]
    cancelled = await wait_status(client, task["task"]["id"], "cancelled", within=10)
    # Past the instant ffmpeg would have started, watching the server's processes all along.
    async with asyncio.timeout(30):
        while datetime.now(UTC) < replay.start_utc + timedelta(seconds=0.5):
            assert _streaming(node) == []
            await asyncio.sleep(0.1)

    assert cancelled["task"]["id"] == task["task"]["id"]
    assert len(fakes.emistream.reservations) == reservations
    assert fakes.emistream.logged("POST", "/reserve")[reservations:] == []
    index = (await client.get("/tasks")).json()
    assert task["task"]["id"] in index["cancelled"]
    assert index["pending"] == index["running"] == []  # nothing was made again


async def test_cancelling_during_the_broadcast_leaves_no_ffmpeg(
    node: Server, fakes: Neighbours, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    long = _encode(tmp_path / "long.ogg", 30)
    replay = replay_with_recordings(fakes, long, seconds_ahead=15)

    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "cut.ogg") as listener:
        task = await _task_for(client, replay, within=10)
        async with asyncio.timeout(30):
            await listener.connected.wait()
            # After the start, so that the instance has left the window and is not made again.
            while datetime.now(UTC) < replay.start_utc + timedelta(seconds=1):
                await asyncio.sleep(0.05)
        assert len(_streaming(node)) == 1
        response = await client.delete(f"/tasks/{task['task']['id']}")
        assert response.status_code == 200, response.text
        await wait_status(client, task["task"]["id"], "cancelled", within=10)
        async with asyncio.timeout(10):
            while _streaming(node):
                await asyncio.sleep(0.05)
            await listener.finished()

    assert await duration(tmp_path / "cut.ogg") < 10
    index = (await client.get("/tasks")).json()
    assert index["pending"] == index["running"] == []
    assert uuid.UUID(task["task"]["id"]) in {uuid.UUID(i) for i in index["cancelled"]}


async def test_a_broadcast_interrupted_by_a_crash_is_retried_and_made(
    node: Server, fakes: Neighbours, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """SIGKILL while the stream task waits to reserve: after the restart the run is recovered
    as interrupted, retried by the operation's policy (5 s later), and still makes the start;
    the synchronizer does not add a second task meanwhile."""
    recording = _encode(tmp_path / "show.ogg", SECONDS)
    replay = replay_with_recordings(fakes, recording, seconds_ahead=30)
    out = tmp_path / "after-crash.ogg"

    async with Listener(fakes.emistream.srt_port, TOKEN, out) as listener:
        task = await _task_for(client, replay, within=10)
        task_id = task["task"]["id"]
        await wait_status(client, task_id, "running", within=20)
        node.kill()
        node.start()
        async with node.client() as fresh:
            async with asyncio.timeout(40):
                await listener.finished()
            await wait_status(fresh, task_id, "completed", within=15)
            runs = (await fresh.get(f"/tasks/{task_id}/runs")).json()["runs"]
            index = (await fresh.get("/tasks")).json()

    assert [(r["attempt"], r["outcome"]) for r in reversed(runs)] == [
        (1, "interrupted"),
        (2, "completed"),
    ]
    assert runs[-1]["error"].startswith("Interrupted: node ")
    assert await duration(out) == pytest.approx(SECONDS, abs=0.5)
    assert index["pending"] == index["running"] == []
    assert task_id in index["completed"]
    assert _streaming(node) == []

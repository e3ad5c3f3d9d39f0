"""play_sound and play_playlist through real servers on SQLite and PostgreSQL, playing with real
ffmpeg into file outputs: what was played and for how long, every play mode with a seeded
random source, cancellation that leaves no ffmpeg behind, and credits spent and refused."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from onair.accounts.tokens import Role
from onair.audio.playlists import plan
from tests.conftest import BACKENDS, Server, _database
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import file_outputs, result, tone, upload, wait_task, wav_facts

SEED = 7
CREDITS = 5
"""What every user of these servers starts with."""


@pytest.fixture(scope="module", params=BACKENDS)
def audio_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("audio")
    with _database(request, request.param, directory) as url:
        server = Server(
            directory,
            {
                "ONAIR__STORE__URL": url,
                "ONAIR__AUDIO__OUTPUTS": file_outputs(directory, "default"),
                "ONAIR__AUDIO__SEED": str(SEED),
                "ONAIR__CREDITS__PLAN__CREDITS": str(CREDITS),
                "ONAIR__CREDITS__DAILY_RECHARGE": "false",
            },
        )
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def client(audio_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with audio_server.client() as client:
        yield client


def soon(seconds: float = 0.3) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def play(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    parameters: dict[str, Any],
    system: bool = False,
) -> str:
    task_type = "play_sound" if "sound_id" in parameters else "play_playlist"
    response = await client.post(
        "/api/v1/scheduler/admin/system-tasks" if system else "/api/v1/scheduler/tasks",
        headers=headers,
        json={
            "name": task_type,
            "task_type": task_type,
            "scheduled_at": soon(),
            "parameters": parameters,
            "allow_overlap": True,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def balance(client: httpx.AsyncClient, user: str) -> tuple[int, list[dict[str, Any]]]:
    me = (await client.get("/api/v1/users/me", headers=cookie(user))).json()
    page = (await client.get("/api/v1/users/me/credit-transactions", headers=cookie(user))).json()
    return me["credits"], page["transactions"]


def ffmpeg_children(server: Server) -> list[psutil.Process]:
    assert server.process is not None
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # it may exit while we look
            if "ffmpeg" in child.name():
                found.append(child)
    return found


async def test_play_sound_plays_the_whole_sound_and_spends_a_credit(
    audio_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "a.wav", 1.0, frequency=660))
    task_id = await play(client, cookie(alice), {"sound_id": sound["id"]})
    task = await wait_task(client, cookie(alice), task_id)
    assert task["status"] == "completed", task
    run = await result(client, task_id, cookie(alice))
    played = run["result"]
    assert played["sound_id"] == sound["id"]
    assert (played["name"], played["output"], played["credits_spent"]) == ("a", "default", 1)
    assert played["duration_seconds"] == pytest.approx(1.0, abs=0.01)
    # Real time: the whole second, less the initial burst (0.1 s), plus ffmpeg's start-up.
    assert 0.8 <= played["seconds_played"] <= 1.5

    seconds, peak = wav_facts(audio_server.workdir / "default.wav")
    assert seconds == pytest.approx(1.0, abs=0.03)
    assert peak > 1000  # a tone, not silence

    credits, transactions = await balance(client, alice)
    assert credits == CREDITS - 1
    [spent] = transactions
    assert (spent["reason"], spent["amount"], spent["balance"]) == ("play", -1, CREDITS - 1)
    assert (spent["run_id"], spent["task_id"]) == (run["id"], task_id)


async def test_cancelling_mid_sound_stops_it_and_leaves_no_ffmpeg(
    audio_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "long.wav", 20.0))
    task_id = await play(client, cookie(alice), {"sound_id": sound["id"]})
    await wait_task(client, cookie(alice), task_id, ("running",))
    async with asyncio.timeout(10):
        while not ffmpeg_children(audio_server):
            await asyncio.sleep(0.02)

    start = time.monotonic()
    response = await client.delete(f"/api/v1/scheduler/tasks/{task_id}", headers=cookie(alice))
    assert response.status_code == 200, response.text
    async with asyncio.timeout(5):
        while ffmpeg_children(audio_server):
            await asyncio.sleep(0.01)
    silence = time.monotonic() - start
    assert silence < 1.0, f"ffmpeg still ran {silence:.2f} s after the cancel"

    task = await wait_task(client, cookie(alice), task_id)
    assert task["status"] == "cancelled"
    seconds, _ = wav_facts(audio_server.workdir / "default.wav")
    assert seconds < 5  # far less than the 20 s sound
    credits, _ = await balance(client, alice)
    assert credits == CREDITS - 1  # it went on the air, so it was paid


def expected(mode: str, shuffle: bool, count: int) -> list[int]:
    """The first `count` positions the seeded plan gives (a fresh generator per run)."""
    return list(itertools.islice(plan(mode, 3, random.Random(SEED), shuffle=shuffle), count))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "shuffle", "max_duration"),
    [
        pytest.param("continuous", False, None, id="continuous"),
        pytest.param("continuous", True, None, id="continuous_shuffled"),
        pytest.param("single", False, None, id="single"),
        pytest.param("loop", False, 2.0, id="loop"),
        pytest.param("loop", True, 2.0, id="loop_shuffled"),
        pytest.param("loop_one", False, 1.2, id="loop_one"),
        pytest.param("random", False, 2.0, id="random"),
    ],
)
async def test_play_modes(
    client: httpx.AsyncClient,
    tmp_path: Path,
    mode: str,
    shuffle: bool,
    max_duration: float | None,
) -> None:
    """System tasks (free, so credits do not cut the runs): the tracks played are the seeded
    plan's, and a looping run ends at its max duration."""
    admin = cookie(someone(), Role.ADMIN)
    lengths = [0.3, 0.4, 0.5]
    sounds = [
        await upload(client, admin, tone(tmp_path / f"{i}.wav", length, frequency=300 + 100 * i))
        for i, length in enumerate(lengths)
    ]
    created = await client.post(
        "/api/v1/playlists",
        headers=admin,
        json={"name": f"{mode} list", "sound_ids": [s["id"] for s in sounds]},
    )
    assert created.status_code == 201, created.text
    playlist = created.json()
    parameters: dict[str, Any] = {
        "playlist_id": playlist["id"],
        "play_mode": mode,
        "shuffle": shuffle,
        "max_duration": max_duration,
    }
    task_id = await play(client, admin, parameters, system=True)
    task = await wait_task(client, admin, task_id)
    assert task["status"] == "completed", task
    played = (await result(client, task_id, admin))["result"]
    positions = [t["position"] for t in played["tracks"]]
    assert [t["sound_id"] for t in played["tracks"]] == [sounds[p]["id"] for p in positions]
    assert (played["play_mode"], played["shuffle"], played["credits_spent"]) == (mode, shuffle, 0)
    if max_duration is None:
        assert positions == expected(mode, shuffle, {"single": 1}.get(mode, 3))
        for track in played["tracks"]:
            assert track["seconds_played"] == pytest.approx(lengths[track["position"]], abs=0.3)
    else:
        # The run is cut at max_duration: as many tracks as fit start, the last one is cut.
        assert len(positions) >= 3
        assert positions == expected(mode, shuffle, len(positions))
        assert max_duration - 0.5 <= played["seconds_played"] <= max_duration + 0.5


async def test_credits_pay_for_what_plays_and_refuse_what_they_cannot(
    audio_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    short = await upload(client, cookie(alice), tone(tmp_path / "s.wav", 0.2))
    playlist = (
        await client.post(
            "/api/v1/playlists",
            headers=cookie(alice),
            json={"name": "Too long", "sound_ids": [short["id"]] * (CREDITS + 2)},
        )
    ).json()

    # Seven tracks, five credits: each is paid as it starts; the five paid for play, then the
    # run stops and says why.
    task_id = await play(client, cookie(alice), {"playlist_id": playlist["id"]})
    task = await wait_task(client, cookie(alice), task_id)
    assert task["status"] == "failed"
    assert task["error_message"] == (
        f"Operation play_playlist failed: credits ran out: user {alice} could not pay the 1 "
        f"credit(s) of the next sound after {CREDITS} played ({CREDITS} credit(s) spent); "
        "the run stopped there."
    )
    run = await result(client, task_id, cookie(alice))
    credits, [spent] = await balance(client, alice)
    assert credits == 0
    assert (spent["amount"], spent["run_id"]) == (-CREDITS, run["id"])

    # Nothing left: the run fails and nothing plays.
    before = (audio_server.workdir / "default.wav").stat().st_mtime_ns
    task_id = await play(client, cookie(alice), {"sound_id": short["id"]})
    task = await wait_task(client, cookie(alice), task_id)
    assert task["status"] == "failed"
    assert task["error_message"] == (
        "Operation play_sound failed: "
        f"insufficient credits: user {alice} cannot pay the 1 credit(s) of one sound; "
        "nothing was played."
    )
    assert (audio_server.workdir / "default.wav").stat().st_mtime_ns == before
    assert (await balance(client, alice))[0] == 0

    # System tasks play free, whoever asks for them.
    admin = someone()
    task_id = await play(client, cookie(admin, Role.ADMIN), {"sound_id": short["id"]}, system=True)
    assert (await wait_task(client, cookie(admin, Role.ADMIN), task_id))["status"] == "completed"
    assert (await result(client, task_id, cookie(admin, Role.ADMIN)))["result"][
        "credits_spent"
    ] == 0
    credits, transactions = await balance(client, admin)
    assert (credits, transactions) == (CREDITS, [])

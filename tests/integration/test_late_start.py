"""Late starts of play_sound and play_playlist through a real server and real ffmpeg into a file
output: `join` is heard from the lateness on, `full` plays everything late, `skip` plays nothing
and charges nothing. Runs are made late by scheduling them in the past (within the misfire
grace), so the lateness is known without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from tests.integration.test_play_operations import CREDITS, audio_server, balance, client
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import result, tone, upload, wait_task, wav_facts

__all__ = ["audio_server", "client"]  # the fixtures, shared with test_play_operations

USERS = "/api/v1/scheduler/tasks"
LATE = 1.5
"""Seconds in the past the runs are scheduled: their lateness is at least this."""


async def play_late(
    client: httpx.AsyncClient, headers: dict[str, str], parameters: dict[str, Any], url: str
) -> dict[str, Any]:
    """Schedule a play task due LATE seconds ago; its finished run."""
    task_type = "play_sound" if "sound_id" in parameters else "play_playlist"
    due = datetime.now(UTC) - timedelta(seconds=LATE)
    response = await client.post(
        url,
        headers=headers,
        json={
            "name": task_type,
            "task_type": task_type,
            "scheduled_at": due.isoformat(),
            "parameters": parameters,
            "allow_overlap": True,
        },
    )
    assert response.status_code == 201, response.text
    task_id = str(response.json()["id"])
    task = await wait_task(client, headers, task_id)
    assert task["status"] == "completed", task
    run: dict[str, Any] = await result(client, task_id, headers)
    return run


async def test_a_late_sound_that_joins_is_heard_from_its_lateness(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "j.wav", 3.0))
    parameters = {"sound_id": sound["id"], "late_start": "join", "late_grace": 0.2}

    run = await play_late(client, cookie(alice), parameters, USERS)

    late = run["result"]["late_start"]
    assert (late["policy"], late["action"], late["grace_seconds"]) == ("join", "joined", 0.2)
    assert LATE <= late["lateness_seconds"] < LATE + 1.0
    assert late["offset_seconds"] == late["lateness_seconds"]
    seconds, peak = wav_facts(audio_server.workdir / "default.wav")
    assert seconds == pytest.approx(3.0 - late["offset_seconds"], abs=0.05)
    assert peak > 1000
    assert (await balance(client, alice))[0] == CREDITS - 1


async def test_a_late_sound_plays_in_full_by_default(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "f.wav", 1.0))

    run = await play_late(client, cookie(alice), {"sound_id": sound["id"]}, USERS)

    late = run["result"]["late_start"]
    assert (late["policy"], late["action"], late["offset_seconds"]) == ("full", "played_full", 0)
    assert late["lateness_seconds"] >= LATE
    seconds, _ = wav_facts(audio_server.workdir / "default.wav")
    assert seconds == pytest.approx(1.0, abs=0.03)


async def test_a_late_sound_that_skips_plays_nothing_and_costs_nothing(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "s.wav", 1.0))
    before = (audio_server.workdir / "default.wav").stat().st_mtime_ns
    parameters = {"sound_id": sound["id"], "late_start": "skip", "late_grace": 0.5}

    run = await play_late(client, cookie(alice), parameters, USERS)

    played = run["result"]
    assert played["late_start"]["action"] == "skipped"
    assert (played["seconds_played"], played["started"], played["credits_spent"]) == (0, None, 0)
    assert (audio_server.workdir / "default.wav").stat().st_mtime_ns == before
    assert await balance(client, alice) == (CREDITS, [])


async def test_a_late_playlist_that_joins_skips_the_tracks_the_lateness_covers(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    admin = cookie(someone(), Role.ADMIN)
    sounds = [await upload(client, admin, tone(tmp_path / f"{i}.wav", 1.0)) for i in range(3)]
    playlist = (
        await client.post(
            "/api/v1/playlists",
            headers=admin,
            json={"name": "Joined", "sound_ids": [s["id"] for s in sounds]},
        )
    ).json()
    parameters = {"playlist_id": playlist["id"], "late_start": "join", "max_duration": 2.5}

    run = await play_late(client, admin, parameters, "/api/v1/scheduler/admin/system-tasks")

    played = run["result"]
    late = played["late_start"]
    assert late["action"] == "joined"
    # 1.5 s late and more: the first track is over, the second is entered at the remainder.
    first, *rest = played["tracks"]
    assert first["position"] == 1
    assert first["offset_seconds"] == pytest.approx(late["offset_seconds"] - 1.0, abs=0.001)
    assert [t["offset_seconds"] for t in rest] == [0.0] * len(rest)
    # It ends when the run would have ended on time: 2.5 s after its due instant.
    assert played["seconds_played"] == pytest.approx(2.5 - late["offset_seconds"], abs=0.3)

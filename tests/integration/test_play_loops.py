"""Loops that end and credits that flow (issue 17, part 5), through real servers on SQLite and
PostgreSQL playing with real ffmpeg into file outputs: a looping run of a series ends before
the series' next occurrence (the seed's "Workday Playlist", with its day compressed to 1.5 s),
credits are paid as tracks start rather than reserved for a whole loop, and a run that the
credits stop says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from onair.operations.play import HANDOVER
from tests.conftest import BACKENDS, Server, _database
from tests.integration.test_user_api import bearer, cookie, someone
from tests.integration.tones import file_outputs, tone, upload, wait_task

CREDITS = 5
TRACK = 0.3


@pytest.fixture(scope="module", params=BACKENDS)
def audio_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("loops")
    with _database(request, request.param, directory) as url:
        server = Server(
            directory,
            {
                "ONAIR__STORE__URL": url,
                "ONAIR__AUDIO__OUTPUTS": file_outputs(directory, "a", "b", "series"),
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


async def playlist(client: httpx.AsyncClient, headers: dict[str, str], directory: Path) -> str:
    sound = await upload(client, headers, tone(directory / "t.wav", TRACK))
    created = await client.post(
        "/api/v1/playlists",
        headers=headers,
        json={"name": "Workday", "sound_ids": [sound["id"], sound["id"]]},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def runs(client: httpx.AsyncClient, task_id: str, headers: dict[str, str]) -> list[Any]:
    page = (await client.get(f"/api/v1/scheduler/tasks/{task_id}/runs", headers=headers)).json()
    return list(reversed(page["runs"]))  # oldest first


async def test_a_series_loop_ends_before_its_next_occurrence(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The seed's workday loop (`loop`, shuffled, no max_duration, every weekday), every 1.5 s
    twice instead: the first run stops HANDOVER before the second is due, which then runs (it
    is not skipped as overlapping). The last one has no next occurrence: it plays until
    cancelled."""
    admin = bearer(someone(), Role.ADMIN)  # on /tasks: the system's task, which plays free
    playlist_id = await playlist(client, admin, tmp_path)
    every = 1.5
    start = later(0.5)
    response = await client.post(
        "/tasks",
        headers=admin,
        json={
            "operation": {
                "type": "play_playlist",
                "parameters": {
                    "playlist_id": playlist_id,
                    "play_mode": "loop",
                    "shuffle": True,
                    "output": "series",
                },
            },
            "condition": {
                "type": "interval",
                "parameters": {"every": f"PT{every}S", "start": start.isoformat(), "count": 2},
            },
            "dependencies": {},
            "policy": {"resource": "shared"},
        },
    )
    assert response.status_code == 201, response.text
    task_id = response.json()["task"]["id"]
    shown = (await client.get(f"/api/v1/scheduler/tasks/{task_id}", headers=admin)).json()
    assert shown["run_ends"] == "at the series' next occurrence"

    # The series' last run has no next occurrence: it is cancelled once it has started.
    try:
        task = await wait_task(client, admin, task_id, ("running",), within=15)
        async with asyncio.timeout(15):
            while len(found := await runs(client, task_id, admin)) < 2:
                await asyncio.sleep(0.05)
    finally:
        await client.delete(f"/api/v1/scheduler/tasks/{task_id}", headers=admin)
    first, second = found
    assert first["outcome"] == "completed", first
    assert second["outcome"] is None, second  # playing
    assert datetime.fromisoformat(first["finished_at"]) <= datetime.fromisoformat(second["due_at"])
    # It played until HANDOVER before the next occurrence (less ffmpeg's start-ups).
    played = first["result"]["seconds_played"]
    assert every - HANDOVER - 0.4 <= played < every, played
    assert task["status"] == "running"


async def test_credits_are_paid_as_tracks_start_and_their_end_says_so(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A one-shot loop without max_duration plays until cancelled, or until its owner's
    credits run out: it does not hold the balance, so another of the owner's sounds plays
    meanwhile, and the loop then fails with "credits ran out", having played what was paid."""
    user = someone()
    headers = cookie(user)
    playlist_id = await playlist(client, headers, tmp_path)
    sound = await upload(client, headers, tone(tmp_path / "ding.wav", 0.2))
    begin = later(0.5)

    async def schedule(parameters: dict[str, Any], at: datetime) -> dict[str, Any]:
        response = await client.post(
            "/api/v1/scheduler/tasks",
            headers=headers,
            json={
                "name": "loop" if "playlist_id" in parameters else "ding",
                "task_type": "play_playlist" if "playlist_id" in parameters else "play_sound",
                "scheduled_at": at.isoformat(),
                "parameters": parameters,
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    loop = await schedule({"playlist_id": playlist_id, "play_mode": "loop", "output": "a"}, begin)
    assert loop["run_ends"] == (
        "only when cancelled: a one-shot loop without max_duration plays until cancelled"
    )
    ding = await schedule({"sound_id": sound["id"], "output": "b"}, begin + timedelta(seconds=0.45))

    done = await wait_task(client, headers, ding["id"])
    assert done["status"] == "completed", done  # the loop did not hold the whole balance
    ended = await wait_task(client, headers, loop["id"])
    assert ended["status"] == "failed"
    assert ended["error_message"] == (
        f"Operation play_playlist failed: credits ran out: user {user} could not pay the 1 "
        f"credit(s) of the next sound after {CREDITS - 1} played ({CREDITS - 1} credit(s) spent); "
        "the run stopped there."
    )
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert me["credits"] == 0
    moves = (await client.get("/api/v1/users/me/credit-transactions", headers=headers)).json()
    assert sorted(t["amount"] for t in moves["transactions"]) == [-(CREDITS - 1), -1]

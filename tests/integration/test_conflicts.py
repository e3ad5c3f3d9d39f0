"""Play tasks competing for an output, through real servers on SQLite and PostgreSQL: refused at
creation when their runs would overlap what another task holds, pending or running (409 with
the span, naming the other task only to whoever may see it, unless `allow_overlap`), on every
door; and at run time a busy output makes a run wait, then fail without saying with what."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BACKENDS, Server, _database
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import file_outputs, result, tone, upload, wait_task


@pytest.fixture(scope="module", params=BACKENDS)
def audio_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("conflicts")
    with _database(request, request.param, directory) as url:
        server = Server(
            directory,
            {
                "ONAIR__STORE__URL": url,
                "ONAIR__AUDIO__OUTPUTS": file_outputs(directory, "default", "second"),
                "ONAIR__AUDIO__BUSY_TIMEOUT": "PT0.5S",
            },
        )
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def client(audio_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with audio_server.client() as client:
        yield client


def at(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).isoformat()


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], scheduled_at: str, **fields: Any
) -> httpx.Response:
    parameters = fields.pop("parameters")
    task_type = "play_sound" if "sound_id" in parameters else "play_playlist"
    return await client.post(
        "/api/v1/scheduler/tasks",
        headers=headers,
        json={
            "name": fields.pop("name", "a play"),
            "task_type": task_type,
            "scheduled_at": scheduled_at,
            "parameters": parameters,
            **fields,
        },
    )


async def test_overlapping_plays_are_refused_at_creation(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice, bob = cookie(someone()), cookie(someone())
    base = datetime(2031, 1, 1, tzinfo=UTC)  # a year of its own on this module's servers
    sound = await upload(client, alice, tone(tmp_path / "two.wav", 2.0))
    bobs = await upload(client, bob, tone(tmp_path / "b.wav", 2.0))
    first = await create(
        client, alice, at(base, 0), name="Alarm", parameters={"sound_id": sound["id"]}
    )
    assert first.status_code == 201, first.text
    taken = first.json()

    # Anyone's task on the same output, starting inside the first one's two seconds: 409,
    # naming the holder only to whoever may see it.
    refused = await create(client, bob, at(base, 1), parameters={"sound_id": bobs["id"]})
    assert refused.status_code == 409, refused.text
    assert refused.json() == {
        "detail": (
            f"Output default is taken from {at(base, 0)} to {at(base, 2)} by another user's "
            f"scheduled task, which overlaps this task's run from {at(base, 1)} to "
            f"{at(base, 3)}; set allow_overlap (policy resource: shared) to schedule it anyway."
        )
    }
    assert taken["id"] not in refused.text
    assert "Alarm" not in refused.text
    mine = await create(client, alice, at(base, 1), parameters={"sound_id": sound["id"]})
    assert mine.status_code == 409, mine.text
    assert f"by task {taken['id']} (Alarm, pending)" in mine.json()["detail"]
    # ... or starting before it and still playing when it starts; a series too, by its
    # first occurrence.
    before = await create(client, bob, at(base, -1.5), parameters={"sound_id": bobs["id"]})
    assert before.status_code == 409, before.text
    daily = await create(
        client, bob, at(base, -1.0), recurrence_type="daily", parameters={"sound_id": bobs["id"]}
    )
    assert daily.status_code == 409, daily.text

    allowed = [
        # Asked for.
        await create(
            client, bob, at(base, 1), parameters={"sound_id": bobs["id"]}, allow_overlap=True
        ),
        # Another output.
        await create(
            client, bob, at(base, 0.5), parameters={"sound_id": bobs["id"], "output": "second"}
        ),
        # Right after the shared one: touching is not overlapping.
        await create(client, alice, at(base, 3), parameters={"sound_id": sound["id"]}),
        # A series whose first occurrence is free.
        await create(
            client,
            alice,
            at(base, -4.0).removesuffix("+00:00"),
            recurrence_type="daily",
            parameters={"sound_id": sound["id"]},
        ),
    ]
    assert [r.status_code for r in allowed] == [201] * 4, [r.text for r in allowed]


async def test_the_tasks_api_refuses_the_same_overlap(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """One front door: a play task posted to `/tasks` with a user's token is admitted by the
    same rules (the owner's media, the output's holders) as on the user API."""
    alice_id, bob = someone(), cookie(someone())
    alice = cookie(alice_id)
    base = datetime(2033, 1, 1, tzinfo=UTC)
    sound = await upload(client, alice, tone(tmp_path / "a.wav", 2.0))
    first = await create(
        client,
        bob,
        at(base, 0),
        parameters={"sound_id": (await upload(client, bob, tone(tmp_path / "b.wav", 2.0)))["id"]},
    )
    assert first.status_code == 201, first.text

    def posted(seconds: float, sound_id: str) -> dict[str, Any]:
        return {
            "operation": {"type": "play_sound", "parameters": {"sound_id": sound_id}},
            "condition": {"type": "at", "parameters": {"datetime": at(base, seconds)}},
            "dependencies": {},
        }

    refused = await client.post("/tasks", json=posted(1, sound["id"]), headers=alice)
    assert refused.status_code == 409, refused.text
    assert "another user's scheduled task" in refused.json()["extra"]
    # Anonymous, it is the station's: a user's sound is not its to play.
    anonymous = await client.post("/tasks", json=posted(10, sound["id"]))
    assert anonymous.status_code == 400, anonymous.text
    assert anonymous.json()["extra"] == [
        {
            "message": f"Sound not found: {sound['id']}.",
            "key": "operation.parameters.sound_id",
        }
    ]
    accepted = await client.post("/tasks", json=posted(10, sound["id"]), headers=alice)
    assert accepted.status_code == 201, accepted.text
    task = await client.get(
        f"/api/v1/scheduler/tasks/{accepted.json()['task']['id']}", headers=alice
    )
    assert task.json()["user_id"] == alice_id


async def test_a_playlist_overlaps_by_its_known_duration(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = cookie(someone())
    base = datetime(2032, 1, 1, tzinfo=UTC)
    sound = await upload(client, alice, tone(tmp_path / "one.wav", 1.0))
    playlist = (
        await client.post(
            "/api/v1/playlists",
            headers=alice,
            json={"name": "Three", "sound_ids": [sound["id"]] * 3},
        )
    ).json()
    first = await create(client, alice, at(base, 0), parameters={"sound_id": sound["id"]})
    assert first.status_code == 201, first.text

    def listed(mode: str, **extra: Any) -> dict[str, Any]:
        return {"playlist_id": playlist["id"], "play_mode": mode, **extra}

    cases = [
        # continuous: the three tracks, 3 s; starting 2.5 s before, it still plays at 0.
        (at(base, -2.5), listed("continuous"), 409),
        # single: its first track, 1 s, ends before 0.
        (at(base, -1.5), listed("single"), 201),
        # continuous cut by max_duration to 1 s: ends before the single one starts.
        (at(base, -2.5), listed("continuous", max_duration=1.0), 201),
        # a looping mode lasts its max_duration.
        (at(base, 0.5), listed("loop", max_duration=10.0), 409),
        # without one, a one-shot holds the output until it is cancelled.
        (at(base, -9.0), listed("random"), 409),
    ]
    holders = [first.json()["id"]]
    for scheduled_at, parameters, status in cases:
        response = await create(client, alice, scheduled_at, parameters=parameters)
        assert response.status_code == status, (parameters, response.text)
        if status == 409:  # the earliest task it overlaps, the user's own: named
            assert any(f"by task {i}" in response.json()["detail"] for i in holders)
        else:
            holders.append(response.json()["id"])


async def test_a_busy_output_makes_a_run_wait_then_fail(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice_id = someone()
    alice = cookie(alice_id)
    long = await upload(client, alice, tone(tmp_path / "long.wav", 3.0))
    short = await upload(client, alice, tone(tmp_path / "short.wav", 0.5))
    now = datetime.now(UTC)
    playing = await create(client, alice, at(now, 0.3), parameters={"sound_id": long["id"]})
    assert playing.status_code == 201, playing.text
    waiting = await create(
        client, alice, at(now, 0.8), parameters={"sound_id": short["id"]}, allow_overlap=True
    )
    assert waiting.status_code == 201, waiting.text

    failed = await wait_task(client, alice, waiting.json()["id"])
    assert failed["status"] == "failed"
    assert failed["error_message"] == (
        "Operation play_sound failed: Output default is busy with another playback; "
        "gave up after waiting 0.5 s."
    )
    done = await wait_task(client, alice, playing.json()["id"])
    assert done["status"] == "completed"
    assert (await result(client, done["id"], alice))["result"]["seconds_played"] > 2.5

    # Only what played was paid for: the waiting run gave its credit back.
    me = (await client.get("/api/v1/users/me", headers=alice)).json()
    statement = (await client.get("/api/v1/users/me/credit-transactions", headers=alice)).json()
    assert me["credits"] == 99
    assert [(t["task_id"], t["amount"]) for t in statement["transactions"]] == [(done["id"], -1)]


async def test_a_running_loop_holds_its_output_until_it_ends(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Running runs hold their output too: while a one-shot loop plays (for its max_duration,
    or without one until it is cancelled), another user's play on that output is refused at
    creation, not failed at run time; once it is cancelled the output is free."""
    alice, bob = cookie(someone()), cookie(someone())
    track = await upload(client, alice, tone(tmp_path / "loop.wav", 1.0))
    playlist = (
        await client.post(
            "/api/v1/playlists", headers=alice, json={"name": "L", "sound_ids": [track["id"]]}
        )
    ).json()
    bobs = await upload(client, bob, tone(tmp_path / "bob.wav", 0.5))
    now = datetime.now(UTC)
    for max_duration in (600.0, None):
        extra = {} if max_duration is None else {"max_duration": max_duration}
        loop = await create(
            client,
            alice,
            at(now, 0.3),
            parameters={"playlist_id": playlist["id"], "play_mode": "loop_one", **extra},
            allow_overlap=True,  # the previous round's loop may still be stopping
        )
        assert loop.status_code == 201, loop.text
        loop_id = loop.json()["id"]
        running = await wait_task(client, alice, loop_id, statuses=("running",))
        started = running["last_executed_at"]

        later = datetime.now(UTC) + timedelta(seconds=30)
        refused = await create(client, bob, later.isoformat(), parameters={"sound_id": bobs["id"]})
        assert refused.status_code == 409, refused.text
        ends = (
            "until it is cancelled"
            if max_duration is None
            else f"to {(datetime.fromisoformat(started) + timedelta(seconds=600)).isoformat()}"
        )
        assert refused.json()["detail"].startswith(
            f"Output default is taken since {started} {ends} by another user's running task"
        ), refused.text

        cancelled = await client.delete(f"/api/v1/scheduler/tasks/{loop_id}", headers=alice)
        assert cancelled.status_code == 200, cancelled.text
        free = await create(client, bob, later.isoformat(), parameters={"sound_id": bobs["id"]})
        assert free.status_code == 201, free.text
        assert (
            await client.delete(f"/api/v1/scheduler/tasks/{free.json()['id']}", headers=bob)
        ).status_code == 200
        now = datetime.now(UTC)

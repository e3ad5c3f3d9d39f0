"""The media library over real servers on SQLite and PostgreSQL: uploads probed with real
ffmpeg, the CLI import, ownership, refusals of files that are not audio, and deletes refused
while a task would play the sound."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from onair.accounts.tokens import Role
from tests.conftest import Server
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import tone, upload

LATER = "2030-06-01T12:00:00"


async def play_task(
    client: httpx.AsyncClient, headers: dict[str, str], parameters: dict[str, object]
) -> httpx.Response:
    task_type = "play_sound" if "sound_id" in parameters else "play_playlist"
    return await client.post(
        "/api/v1/scheduler/tasks",
        headers=headers,
        json={
            "name": f"{task_type} later",
            "task_type": task_type,
            "scheduled_at": LATER,
            "parameters": parameters,
            "allow_overlap": True,
        },
    )


async def test_an_upload_is_probed_and_owned(client: httpx.AsyncClient, tmp_path: Path) -> None:
    alice, bob = someone(), someone()
    path = tone(tmp_path / "Morning Alarm.wav", 1.5, rate=48000, channels=2)
    sound = await upload(client, cookie(alice), path)
    assert sound["name"] == "Morning Alarm"
    assert sound["filename"] == "Morning Alarm.wav"
    assert sound["user_id"] == alice
    assert sound["duration_seconds"] == pytest.approx(1.5, abs=0.01)
    assert (sound["format"], sound["codec"]) == ("wav", "pcm_s16le")
    assert (sound["channels"], sound["sample_rate"]) == (2, 48000)
    assert sound["size"] == path.stat().st_size

    named = await upload(client, cookie(alice), tone(tmp_path / "b.flac", 0.5), name="Chime")
    assert (named["name"], named["format"], named["channels"]) == ("Chime", "flac", 1)
    assert named["duration_seconds"] == pytest.approx(0.5, abs=0.01)

    page = (await client.get("/api/v1/sounds", headers=cookie(alice))).json()
    assert [s["id"] for s in page["sounds"]] == [named["id"], sound["id"]]
    assert page["total"] == 2
    assert (await client.get(f"/api/v1/sounds/{sound['id']}", headers=cookie(alice))).json() == (
        sound
    )

    renamed = await client.patch(
        f"/api/v1/sounds/{sound['id']}", headers=cookie(alice), json={"name": "Wake up"}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Wake up"

    # Someone else's sound does not exist for bob, whatever he tries.
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, f"/api/v1/sounds/{sound['id']}", headers=cookie(bob), json={"name": "mine"}
        )
        assert response.status_code == 404, response.text
        assert response.json() == {"detail": f"Sound not found: {sound['id']}."}
    assert (await client.get("/api/v1/sounds", headers=cookie(bob))).json()["total"] == 0

    admin = cookie(someone(), Role.ADMIN)
    everyone = (await client.get("/api/v1/sounds?limit=500", headers=admin)).json()
    assert {sound["id"], named["id"]} <= {s["id"] for s in everyone["sounds"]}
    assert (await client.get(f"/api/v1/sounds/{sound['id']}", headers=admin)).status_code == 200

    assert (await client.delete(f"/api/v1/sounds/{named['id']}", headers=admin)).status_code == 204
    assert (
        await client.get(f"/api/v1/sounds/{named['id']}", headers=cookie(alice))
    ).status_code == (404)


@pytest.mark.parametrize(
    ("filename", "content", "reason"),
    [
        pytest.param(
            "notes.txt",
            b"Shopping list: milk, eggs.\n" * 20,
            "not an audio file ffmpeg can read",
            id="text",
        ),
        pytest.param(
            "noise.mp3",
            bytes(range(256)) * 64,
            "not an audio file ffmpeg can read",
            id="garbage_named_mp3",
        ),
        pytest.param("empty.wav", b"", "not an audio file ffmpeg can read", id="empty"),
    ],
)
async def test_files_that_are_not_audio_are_refused(
    client: httpx.AsyncClient, filename: str, content: bytes, reason: str
) -> None:
    alice = someone()
    response = await client.post(
        "/api/v1/sounds", headers=cookie(alice), files={"file": (filename, content)}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "file"]
    assert error["msg"].startswith(f"Unsupported audio file {filename}: {reason}")
    assert (await client.get("/api/v1/sounds", headers=cookie(alice))).json()["total"] == 0


async def test_a_corrupt_file_is_refused_with_where_it_broke(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An MP3 file scrambled in the middle: the header reads, the decoding fails."""
    data = bytearray(tone(tmp_path / "song.mp3", 2.0).read_bytes())
    for i in range(3000, 9000, 7):
        data[i] = (data[i] * 31 + 7) % 256
    response = await client.post(
        "/api/v1/sounds", headers=cookie(someone()), files={"file": ("song.mp3", bytes(data))}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "file"]
    assert error["msg"].startswith("Unsupported audio file song.mp3: cannot be decoded after ")


async def test_playlists_of_ones_own_sounds(client: httpx.AsyncClient, tmp_path: Path) -> None:
    alice, bob = someone(), someone()
    a = await upload(client, cookie(alice), tone(tmp_path / "a.wav", 0.5))
    b = await upload(client, cookie(alice), tone(tmp_path / "b.wav", 1.0))
    theirs = await upload(client, cookie(bob), tone(tmp_path / "c.wav", 0.5))

    response = await client.post(
        "/api/v1/playlists",
        headers=cookie(alice),
        json={"name": "Morning", "sound_ids": [b["id"], a["id"], b["id"]]},
    )
    assert response.status_code == 201, response.text
    playlist = response.json()
    assert [t["id"] for t in playlist["tracks"]] == [b["id"], a["id"], b["id"]]
    assert playlist["duration_seconds"] == pytest.approx(2.5, abs=0.02)
    assert playlist["user_id"] == alice

    refused = await client.post(
        "/api/v1/playlists",
        headers=cookie(alice),
        json={"name": "Stolen", "sound_ids": [a["id"], theirs["id"]]},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == [
        {
            "type": "value_error",
            "loc": ["body", "sound_ids", "1"],
            "msg": f"Sound not found: {theirs['id']}.",
        }
    ]

    changed = await client.patch(
        f"/api/v1/playlists/{playlist['id']}",
        headers=cookie(alice),
        json={"name": "Evening", "sound_ids": [a["id"]]},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], [t["id"] for t in changed.json()["tracks"]]) == (
        "Evening",
        [a["id"]],
    )
    assert (
        await client.get(f"/api/v1/playlists/{playlist['id']}", headers=cookie(bob))
    ).status_code == 404
    listed = (await client.get("/api/v1/playlists", headers=cookie(alice))).json()
    assert [p["id"] for p in listed["playlists"]] == [playlist["id"]]

    # Deleting a sound no task plays takes it out of the playlist.
    assert (
        await client.delete(f"/api/v1/sounds/{a['id']}", headers=cookie(alice))
    ).status_code == (204)
    left = (await client.get(f"/api/v1/playlists/{playlist['id']}", headers=cookie(alice))).json()
    assert left["tracks"] == []
    deleted = await client.delete(f"/api/v1/playlists/{playlist['id']}", headers=cookie(alice))
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/sounds/{b['id']}", headers=cookie(alice))).status_code == 200


async def test_media_a_task_will_play_cannot_be_deleted(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "a.wav", 0.5))
    track = await upload(client, cookie(alice), tone(tmp_path / "b.wav", 0.5))
    playlist = (
        await client.post(
            "/api/v1/playlists",
            headers=cookie(alice),
            json={"name": "List", "sound_ids": [track["id"]]},
        )
    ).json()
    by_sound = (await play_task(client, cookie(alice), {"sound_id": sound["id"]})).json()
    by_list = (await play_task(client, cookie(alice), {"playlist_id": playlist["id"]})).json()

    response = await client.delete(f"/api/v1/sounds/{sound['id']}", headers=cookie(alice))
    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        f"Sound {sound['id']} is used by task {by_sound['id']} (play_sound later, pending); "
        "cancel the task (or wait for it to end) first."
    )
    response = await client.delete(f"/api/v1/sounds/{track['id']}", headers=cookie(alice))
    assert response.status_code == 409, response.text
    assert by_list["id"] in response.json()["detail"]
    response = await client.delete(f"/api/v1/playlists/{playlist['id']}", headers=cookie(alice))
    assert response.status_code == 409, response.text
    assert by_list["id"] in response.json()["detail"]

    for task in (by_sound, by_list):
        cancelled = await client.delete(
            f"/api/v1/scheduler/tasks/{task['id']}", headers=cookie(alice)
        )
        assert cancelled.status_code == 200, cancelled.text
    for path in (
        f"/api/v1/sounds/{sound['id']}",
        f"/api/v1/playlists/{playlist['id']}",
        f"/api/v1/sounds/{track['id']}",
    ):
        assert (await client.delete(path, headers=cookie(alice))).status_code == 204, path


async def test_a_task_plays_only_its_owners_media(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice, bob = someone(), someone()
    theirs = await upload(client, cookie(bob), tone(tmp_path / "b.wav", 0.5))
    unknown = str(uuid.uuid4())
    cases = [
        ({"sound_id": unknown}, ["parameters", "sound_id"], f"Sound not found: {unknown}"),
        (
            {"sound_id": theirs["id"]},
            ["parameters", "sound_id"],
            f"Sound not found: {theirs['id']}",
        ),
        ({"playlist_id": unknown}, ["parameters", "playlist_id"], f"Playlist not found: {unknown}"),
    ]
    for parameters, loc, message in cases:
        response = await play_task(client, cookie(alice), parameters)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [
            {"type": "value_error", "loc": ["body", *loc], "msg": f"{message} of user {alice}."}
        ]
    mine = await upload(client, cookie(alice), tone(tmp_path / "a.wav", 0.5))
    response = await play_task(client, cookie(alice), {"sound_id": mine["id"], "output": "attic"})
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "parameters", "output"]
    assert error["msg"] == "Unknown output: attic. Configured outputs: default."


async def test_the_cli_imports_a_folder(
    shared_server: Server, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    bob = someone()
    folder = tmp_path / "library"
    tone(folder / "one.wav", 0.5)
    tone(folder / "more" / "two.ogg", 1.0, channels=2)
    (folder / "readme.txt").write_text("not a sound")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ONAIR__")},
        "ONAIR__STORE__URL": shared_server.env["ONAIR__STORE__URL"],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "onair",
        "sounds",
        "import",
        str(folder),
        "--user",
        bob,
        cwd=shared_server.workdir,  # the same data/media as the server's
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        out, _ = await process.communicate()
    text = out.decode()
    assert process.returncode == 1, text  # one file skipped
    assert "imported 2 sound(s), skipped 1" in text
    assert "readme.txt" in text

    page = (await client.get("/api/v1/sounds", headers=cookie(bob))).json()
    found = {s["filename"]: s for s in page["sounds"]}
    assert sorted(found) == ["one.wav", "two.ogg"]
    assert found["one.wav"]["duration_seconds"] == pytest.approx(0.5, abs=0.01)
    assert found["two.ogg"]["duration_seconds"] == pytest.approx(1.0, abs=0.03)
    assert (found["two.ogg"]["format"], found["two.ogg"]["channels"]) == ("ogg", 2)
    assert all(s["user_id"] == bob for s in page["sounds"])


async def test_bodies_over_the_limits_are_refused_before_they_are_kept(
    start_server: Callable[..., Server], database_url: str, tmp_path: Path
) -> None:
    """`audio.max_upload_size` bounds the media library's bodies, `server.max_body_size` the
    rest; over them: 413 in each surface's error shape, and nothing is kept."""
    server = start_server(
        database_url, ONAIR__AUDIO__MAX_UPLOAD_SIZE="100000", ONAIR__SERVER__MAX_BODY_SIZE="2000"
    )
    alice = cookie(someone())
    big = tone(tmp_path / "big.wav", 2.0)  # 176 kB
    small = tone(tmp_path / "small.wav", 0.5, rate=8000)  # 8 kB: over 2,000, under 100,000
    over = "The request body is over {} bytes."
    async with server.client() as client:
        response = await client.post(
            "/api/v1/sounds", headers=alice, files={"file": ("big.wav", big.read_bytes())}
        )
        assert response.status_code == 413, response.text
        assert response.json() == {"detail": over.format(100000)}

        # Sent in chunks, without a Content-Length: cut off once past the limit.
        boundary = "onair-test-boundary"
        multipart = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"'
                "\r\nContent-Type: audio/wav\r\n\r\n"
            ).encode()
            + big.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode()
        )

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(multipart), 16384):
                yield multipart[start : start + 16384]

        response = await client.post(
            "/api/v1/sounds",
            headers=alice | {"content-type": f"multipart/form-data; boundary={boundary}"},
            content=chunks(),
        )
        assert response.status_code == 413, response.text
        assert response.json() == {"detail": over.format(100000)}

        accepted = await upload(client, alice, small)
        page = (await client.get("/api/v1/sounds", headers=alice)).json()
        assert [s["id"] for s in page["sounds"]] == [accepted["id"]]
        kept = sorted(p.name for p in (tmp_path / "data" / "media").iterdir())
        assert kept == [f"{accepted['id']}.wav"]  # no trace of the refused uploads

        response = await play_task(client, alice, {"sound_id": accepted["id"], "x": "y" * 3000})
        assert response.status_code == 413, response.text
        assert response.json() == {"detail": over.format(2000)}

        response = await client.post(
            "/tasks",
            content=b'{"operation": "' + b"x" * 3000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413, response.text
        assert response.json() == {"status_code": 413, "detail": over.format(2000)}

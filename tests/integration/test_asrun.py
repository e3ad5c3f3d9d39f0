"""The as-run log through a real server on SQLite and PostgreSQL: a day of mixed items (a
playlist's tracks, a sound, a skipped sound, a track cut by `max_duration`) read back as JSON
by the station and by their owners, exported as CSV that Python's `csv` module reads with the
documented columns (also by the `onair asrun` command), announced on the event stream, and
removed by the retention."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from onair.audio.asrun import COLUMNS, Aired, AsRun
from onair.store.database import Store
from tests.integration.test_cli import onair
from tests.integration.test_events_stream import listen
from tests.integration.test_late_start import USERS, play_late
from tests.integration.test_play_operations import CREDITS, audio_server, client
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import tone, upload

__all__ = ["audio_server", "client"]

SYSTEM = "/api/v1/scheduler/admin/system-tasks"


async def playlist(client: httpx.AsyncClient, headers: dict[str, str], sounds: list[Any]) -> str:
    created = await client.post(
        "/api/v1/playlists",
        headers=headers,
        json={"name": "Mixed", "sound_ids": [s["id"] for s in sounds]},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_a_day_of_mixed_items_in_json_csv_and_the_event_stream(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=10)
    admin = cookie(someone(), Role.ADMIN)
    alice, bob = someone(), someone()
    tracks = [await upload(client, admin, tone(tmp_path / f"t{i}.wav", 0.3)) for i in range(2)]
    long = await upload(client, admin, tone(tmp_path / "long.wav", 5.0))
    mine = await upload(client, cookie(alice), tone(tmp_path / "a.wav", 0.3), name="Alice's")
    theirs = await upload(client, cookie(bob), tone(tmp_path / "b.wav", 0.3), name="Bob's")

    async with listen(client, "/api/v1/scheduler/events", **admin) as stream:
        played = await play_late(
            client, admin, {"playlist_id": await playlist(client, admin, tracks)}, SYSTEM
        )
        cut = await play_late(
            client,
            admin,
            {"playlist_id": await playlist(client, admin, [long]), "max_duration": 0.5},
            SYSTEM,
        )
        sound = await play_late(client, cookie(alice), {"sound_id": mine["id"]}, USERS)
        skipped = await play_late(
            client, cookie(bob), {"sound_id": theirs["id"], "late_start": "skip"}, USERS
        )
        aired = await stream.until(lambda events: sum(e["kind"] == "aired" for e in events) >= 5)
    until = datetime.now(UTC) + timedelta(seconds=1)
    window = {"from": since.isoformat(), "to": until.isoformat()}

    # The station's log: every item, in planned order, each with its first audio.
    response = await client.get("/asrun", params=window)
    assert response.status_code == 200, response.text
    page = response.json()
    items = [i for i in page["items"] if i["run_id"] in {
        played["id"], cut["id"], sound["id"], skipped["id"]}]  # fmt: skip
    assert len(items) == 5
    by_run = {run["id"]: [i for i in items if i["run_id"] == run["id"]] for run in (
        played, cut, sound, skipped)}  # fmt: skip
    first, second = by_run[played["id"]]
    assert [(i["kind"], i["subject"]["position"], i["end"]) for i in (first, second)] == [
        ("track", 0, "completed"),
        ("track", 1, "completed"),
    ]
    # The second track was planned one track after the first.
    planned = [datetime.fromisoformat(i["planned_at"]) for i in (first, second)]
    assert (planned[1] - planned[0]).total_seconds() == pytest.approx(0.3, abs=0.01)
    for item, track in zip((first, second), played["result"]["tracks"], strict=True):
        assert item["first_audio_at"] == track["first_audio"]
        assert item["lateness_seconds"] > 1.0  # played in full, late
        assert item["seconds_aired"] == pytest.approx(0.3, abs=0.25)
        assert (item["owner"], item["output"], item["operation"]) == (
            None, "default", "play_playlist")  # fmt: skip
    [cut_item] = by_run[cut["id"]]
    assert (cut_item["end"], cut_item["name"]) == ("max_duration", "long")
    assert cut_item["seconds_aired"] == pytest.approx(0.5, abs=0.3)
    [sound_item] = by_run[sound["id"]]
    assert (sound_item["kind"], sound_item["owner"], sound_item["end"]) == (
        "sound", alice, "completed")  # fmt: skip
    assert sound_item["subject"] == {"sound_id": mine["id"]}
    [skipped_item] = by_run[skipped["id"]]
    assert (skipped_item["end"], skipped_item["first_audio_at"], skipped_item["seconds_aired"]) == (
        "skipped", None, 0.0)  # fmt: skip

    # Users read their own items only; admins everyone's.
    own = await client.get("/api/v1/scheduler/asrun", params=window, headers=cookie(alice))
    assert own.status_code == 200, own.text
    assert [i["id"] for i in own.json()["items"]] == [sound_item["id"]]
    everyone = await client.get("/api/v1/scheduler/asrun", params=window, headers=admin)
    assert {i["id"] for i in items} <= {i["id"] for i in everyone.json()["items"]}

    # The dashboard lists the latest items, newest first; a user's lists their own only.
    shown = (await client.get("/ui/api/overview", headers=admin)).json()["aired"]
    assert {i["id"] for i in items} <= {i["id"] for i in shown}
    assert [i["planned_at"] for i in shown] == sorted(
        (i["planned_at"] for i in shown), reverse=True
    )
    shown = (await client.get("/ui/api/overview", headers=cookie(alice))).json()["aired"]
    assert [i["id"] for i in shown] == [sound_item["id"]]

    # CSV: the documented columns, one row per item, values as in the JSON.
    exported = await client.get("/asrun", params={**window, "format": "csv"})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert tuple(rows[0].keys()) == COLUMNS
    row = next(r for r in rows if r["id"] == cut_item["id"])
    assert (row["end"], row["kind"], row["name"], row["owner"]) == (
        "max_duration",
        "track",
        "long",
        "",
    )
    assert float(row["lateness_seconds"]) == cut_item["lateness_seconds"]
    assert json.loads(row["subject"]) == cut_item["subject"]

    # The event stream announced each item as it was recorded.
    announced = {e["data"]["id"]: e for e in aired if e["kind"] == "aired"}
    assert {i["id"] for i in items} <= set(announced)
    event = announced[sound_item["id"]]
    assert (event["run_id"], event["owner"], event["due"]) == (
        sound["id"], alice, sound_item["planned_at"])  # fmt: skip
    assert event["lateness"] == pytest.approx(sound_item["lateness_seconds"], abs=1e-4)

    # The command line exports the same CSV.
    command = await asyncio.to_thread(
        onair, audio_server, "asrun", "--from", window["from"], "--to", window["to"],
        "--format", "csv",
    )  # fmt: skip
    assert command.returncode == 0, command.stderr
    assert list(csv.DictReader(io.StringIO(command.stdout))) == rows


async def test_bad_ranges_and_formats_are_refused_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    backwards = {"from": "2026-12-03T10:00:00Z", "to": "2026-12-03T09:00:00Z"}
    response = await client.get("/asrun", params=backwards)
    assert response.status_code == 400, response.text
    assert response.json()["extra"] == (
        "`to` (2026-12-03T09:00:00+00:00) must be after `from` (2026-12-03T10:00:00+00:00)."
    )
    response = await client.get(
        "/api/v1/scheduler/asrun", params=backwards, headers=cookie(someone())
    )
    assert response.status_code == 422, response.text
    assert "must be after `from`" in response.text
    response = await client.get("/asrun", params={"format": "xml"})
    assert response.status_code == 400, response.text
    assert [p["key"] for p in response.json()["extra"]] == ["format"]


def _item(ended: datetime, owner: str | None = None) -> Aired:
    return Aired(
        uuid.uuid4(), uuid.uuid4(), "play_sound", "sound", "x", owner, "default",
        ended - timedelta(seconds=1), ended - timedelta(seconds=0.99), 0.99, 0.0, "completed",
        ended, subject={"sound_id": str(uuid.uuid4())},
    )  # fmt: skip


async def test_the_retention_removes_items_that_ended_before_it(store: Store) -> None:
    now = datetime.now(UTC)
    log = AsRun(store)
    old, recent = _item(now - timedelta(days=40)), _item(now - timedelta(days=1), "alice")
    await log.record([old, recent])
    everything = (now - timedelta(days=50), now)
    assert [i.id for i in (await log.page(*everything))[0]] == [old.id, recent.id]
    assert (await log.page(*everything, owner="alice"))[0] == [recent]

    assert await log.expire(now - timedelta(days=30), batch=1) == 1

    items, total = await log.page(*everything)
    assert (items, total) == ([recent], 1)
    assert items[0].lateness == pytest.approx(0.01, abs=1e-6)


async def test_readiness_answers_the_upcoming_broadcasts(client: httpx.AsyncClient) -> None:
    """No broadcast is upcoming on this server (test_readiness checks the verdicts)."""
    response = await client.get("/readiness")
    assert (response.status_code, response.json()) == (200, [])
    overview = (await client.get("/ui/api/overview")).json()
    assert overview["readiness"] == []


async def test_tracks_are_announced_as_they_end_and_the_last_paid_one_ends_by_credits(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    short = await upload(client, cookie(alice), tone(tmp_path / "s.wav", 0.2))
    playlist_id = await playlist(client, cookie(alice), [short] * (CREDITS + 2))
    async with listen(client, "/api/v1/scheduler/events", **cookie(alice)) as stream:
        response = await client.post(
            USERS,
            headers=cookie(alice),
            json={
                "name": "too long",
                "task_type": "play_playlist",
                "scheduled_at": (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat(),
                "parameters": {"playlist_id": playlist_id},
            },
        )
        assert response.status_code == 201, response.text
        task_id = str(response.json()["id"])
        await stream.until(lambda got: any(e["kind"] == "aired" for e in got))
        # The first track is announced once the second has ended, while the run still plays.
        task = (await client.get(f"{USERS}/{task_id}", headers=cookie(alice))).json()
        assert task["status"] == "running"
        events = await stream.until(
            lambda got: (
                any(e["kind"] == "failed" and e["task_id"] == task_id for e in got)
                and sum(e["kind"] == "aired" and e["task_id"] == task_id for e in got) == CREDITS
            )
        )
    mine = [e for e in events if e["task_id"] == task_id and e["kind"] in ("aired", "failed")]
    assert [e["kind"] for e in mine].index("failed") == CREDITS  # the last, then the run's end
    aired = [e["data"] for e in mine if e["kind"] == "aired"]
    assert [i["subject"]["position"] for i in aired] == list(range(CREDITS))
    assert [i["end"] for i in aired] == ["completed"] * (CREDITS - 1) + ["credits"]

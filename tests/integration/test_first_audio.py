"""The instant the first audio left onair, from ffmpeg's own progress: against a listener that
watches the bytes of a file output appear (each track truncates the file when its ffmpeg opens
it, then writes), through the player, and through a server's play run and its metrics."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from onair.audio.player import Playback, Player
from onair.config import FileOutput
from tests.integration.test_late_start import USERS
from tests.integration.test_metrics import scrape, total
from tests.integration.test_play_operations import audio_server, client
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import result, tone, upload, wait_task

__all__ = ["audio_server", "client"]

TOLERANCE = 0.1
"""Seconds between ffmpeg's first-output instant and the listener's first bytes: both are
read by processes that a loaded machine deschedules (60 ms was seen once with the suite's
four workers on two cores); the p99 itself is measured by `make bench` (scenario 8)."""


class FileListener:
    """Watches `path` from a thread every millisecond and notes, by the wall clock, each instant
    its size goes from nothing (missing, or just truncated) to some bytes: a track's first
    audio."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.first_bytes: list[datetime] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> FileListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        previous = 0
        while not self._stop.is_set():
            try:
                size = os.stat(self.path).st_size
            except FileNotFoundError:
                size = 0
            if size > 0 and (previous == 0 or size < previous):
                self.first_bytes.append(datetime.now(UTC))
            previous = size
            time.sleep(0.001)


@pytest.fixture(scope="module")
def tracks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("tracks")
    return [tone(directory / f"{i}.wav", 0.4, frequency=300 + 100 * i) for i in range(3)]


async def test_each_track_first_audio_matches_the_first_bytes_a_listener_sees(
    tracks: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "air.wav"
    aired: list[Playback] = []
    with FileListener(out) as listener:
        async with Player({"air": FileOutput(path=out)}) as player:
            playbacks = await player.play_many(tracks, "air", aired=aired.append)

    assert aired == playbacks
    assert [p.end for p in aired] == ["completed"] * 3
    assert len(listener.first_bytes) == 3, listener.first_bytes
    for playback, seen in zip(aired, listener.first_bytes, strict=True):
        assert playback.first_audio is not None
        assert playback.started < playback.first_audio < playback.ended
        gap = (playback.first_audio - seen).total_seconds()
        assert abs(gap) <= TOLERANCE, f"first audio {gap * 1000:+.1f} ms from the first bytes"


async def test_a_cut_track_ends_by_max_duration_and_a_cancelled_one_is_still_reported(
    tracks: list[Path], tmp_path: Path
) -> None:
    long = tone(tmp_path / "long.wav", 10.0)
    aired: list[Playback] = []
    async with Player({"air": FileOutput(path=tmp_path / "air.wav")}) as player:
        await player.play_many([tracks[0], long], "air", max_duration=0.8, aired=aired.append)
    assert [p.end for p in aired] == ["completed", "max_duration"]
    assert aired[1].seconds_played == pytest.approx(0.4, abs=0.3)


async def test_a_play_run_reports_its_first_audio_and_the_metric_counts_it(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = someone()
    sound = await upload(client, cookie(alice), tone(tmp_path / "m.wav", 0.3))
    before = total(await scrape(client), "onair_first_audio_lateness_seconds_count")
    due = datetime.now(UTC) + timedelta(seconds=0.3)
    response = await client.post(
        USERS,
        headers=cookie(alice),
        json={
            "name": "m",
            "task_type": "play_sound",
            "scheduled_at": due.isoformat(),
            "parameters": {"sound_id": sound["id"]},
        },
    )
    assert response.status_code == 201, response.text
    task_id = response.json()["id"]
    assert (await wait_task(client, cookie(alice), task_id))["status"] == "completed"

    played = (await result(client, task_id, cookie(alice)))["result"]
    first = datetime.fromisoformat(played["first_audio"])
    started = datetime.fromisoformat(played["started"])
    # ffmpeg's start-up, then the first packet: tens of milliseconds on a quiet machine.
    assert 0 < (first - started).total_seconds() < 0.5
    assert 0 < (first - due).total_seconds() < 0.5
    samples = await scrape(client)
    assert total(samples, "onair_first_audio_lateness_seconds_count") == before + 1
    count = total(samples, "onair_first_audio_lateness_seconds_count", operation="play_sound")
    assert count >= 1


async def test_the_as_run_log_of_a_playlist_matches_what_a_listener_hears(
    audio_server: Any, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Through a real server: each track's first-audio instant in the as-run log is within
    `TOLERANCE` of the first bytes a listener sees appear in the file output."""
    admin = cookie(someone(), Role.ADMIN)
    sounds = [await upload(client, admin, tone(tmp_path / f"{i}.wav", 0.4)) for i in range(3)]
    created = await client.post(
        "/api/v1/playlists",
        headers=admin,
        json={"name": "Heard", "sound_ids": [s["id"] for s in sounds]},
    )
    assert created.status_code == 201, created.text
    due = datetime.now(UTC) + timedelta(seconds=0.5)
    with FileListener(audio_server.workdir / "default.wav") as listener:
        response = await client.post(
            "/api/v1/scheduler/admin/system-tasks",
            headers=admin,
            json={
                "name": "heard",
                "task_type": "play_playlist",
                "scheduled_at": due.isoformat(),
                "parameters": {"playlist_id": created.json()["id"]},
            },
        )
        assert response.status_code == 201, response.text
        task_id = response.json()["id"]
        assert (await wait_task(client, admin, task_id))["status"] == "completed"
    run = await result(client, task_id, admin)
    window = {"from": (due - timedelta(seconds=1)).isoformat(), "to": datetime.now(UTC).isoformat()}
    page = (await client.get("/asrun", params=window)).json()
    items = [i for i in page["items"] if i["run_id"] == run["id"]]

    assert [i["subject"]["position"] for i in items] == [0, 1, 2]
    seen = [t for t in listener.first_bytes if t >= due - timedelta(seconds=0.1)]
    assert len(seen) == 3, listener.first_bytes
    for item, first_bytes in zip(items, seen, strict=True):
        gap = (datetime.fromisoformat(item["first_audio_at"]) - first_bytes).total_seconds()
        assert abs(gap) <= TOLERANCE, f"track {item['subject']['position']}: {gap * 1000:+.1f} ms"

"""ffmpeg dies with its node, however the node ends (`kill -9` included), by the kernel's death
signal on Linux and by the watchdog elsewhere; a restarted node removes the partial uploads the
dead one left, and nothing that a live process still writes."""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from tests.conftest import Server
from tests.integration.test_user_api import cookie, someone
from tests.integration.tones import file_outputs, tone, upload


def alive(pid: int) -> bool:
    """Whether `pid` runs: in the process table and not a zombie (a zombie is dead, waiting
    only for whoever adopted it to read its status)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pids: list[int], seconds: float) -> list[int]:
    """The `pids` still alive after `seconds` (none, as soon as they have all ended)."""
    deadline = time.monotonic() + seconds
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def ffmpegs_of(pid: int) -> list[int]:
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "ffmpeg" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child.pid)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_a_killed_node_leaves_no_ffmpeg_and_its_successor_removes_partial_uploads(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    env = {
        "ONAIR__AUDIO__OUTPUTS": file_outputs(tmp_path, "default"),
        "ONAIR__AUDIO__MEDIA_DIR": str(tmp_path / "media"),
        "ONAIR__ENGINE__LEASE": "PT2S",
    }
    database = f"sqlite:///{tmp_path / 'onair.db'}"
    node = start_server(database, **env)
    alice = someone()
    async with node.client() as client:
        sound = await upload(client, cookie(alice), tone(tmp_path / "long.wav", 10))
        due = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
        response = await client.post(
            "/api/v1/scheduler/tasks",
            headers=cookie(alice),
            json={
                "name": "long",
                "task_type": "play_sound",
                "scheduled_at": due,
                "parameters": {"sound_id": sound["id"]},
            },
        )
        assert response.status_code == 201, response.text
    assert node.process is not None
    async with asyncio.timeout(5):
        while not (pids := ffmpegs_of(node.process.pid)):
            await asyncio.sleep(0.02)

    os.kill(node.process.pid, signal.SIGKILL)  # the node only, not its process group
    node.process.wait()
    assert gone_within(pids, 3) == []

    # The dead node's partial upload goes at the next start; one a live process writes stays.
    media = tmp_path / "media"
    stale, live = media / ".incoming-dead", media / ".incoming-live"
    stale.write_bytes(b"half an upload")
    live.write_bytes(b"being written")
    with live.open("rb+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        again = start_server(database, **env)
        assert not stale.exists()
        assert live.read_bytes() == b"being written"
    assert "removed " + str(stale) in again.log.read_text()
    assert str(live) not in again.log.read_text()


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from onair import ffmpeg

    if sys.argv[1] == "watchdog":
        ffmpeg._prctl = None  # as where the kernel offers no death signal
    assert ffmpeg.guarded() == sys.argv[1]

    async def main():
        args = ["-f", "lavfi", "-i", "anullsrc", "-t", "60", "-f", "null", "-"]
        async with ffmpeg.child(ffmpeg.ffmpeg_path(), *args) as process:
            print(process.pid, flush=True)
            await process.wait()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("guard", ["pdeathsig", "watchdog"])
def test_ffmpeg_dies_with_a_process_killed_by_sigkill(guard: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, guard], stdout=subprocess.PIPE, start_new_session=True
    ) as parent:
        try:
            assert parent.stdout is not None
            pid = int(parent.stdout.readline())
            assert alive(pid)
            assert psutil.Process(pid).ppid() == parent.pid
            parent.kill()
            parent.wait()
            assert gone_within([pid], 3) == []
        finally:
            parent.kill()


UPLOADER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from onair.audio.library import Library

    with Library(None, Path(sys.argv[1]))._incoming() as incoming:
        incoming.write_bytes(b"the first bytes")
        print(incoming, flush=True)
        time.sleep(60)
    """
)


def test_a_partial_upload_is_removed_once_its_writer_is_dead_not_before(tmp_path: Path) -> None:
    from onair.audio.library import Library

    library = Library(None, tmp_path)  # type: ignore[arg-type]  # no store needed for files
    with subprocess.Popen(
        [sys.executable, "-c", UPLOADER, str(tmp_path)], stdout=subprocess.PIPE
    ) as writer:
        try:
            assert writer.stdout is not None
            partial = Path(writer.stdout.readline().decode().strip())
            assert partial.name.startswith(".incoming-")
            assert library.remove_partial_uploads() == []  # its writer lives
            assert partial.read_bytes() == b"the first bytes"
            writer.kill()
            writer.wait()
            assert library.remove_partial_uploads() == [partial]
            assert not partial.exists()
        finally:
            writer.kill()

"""The player against the real ffmpeg: pacing, sinks, busy outputs, cancellation, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import psutil
import pytest
from pydantic import TypeAdapter, ValidationError

from onair.audio.outputs import default_outputs, describe, ffmpeg_args
from onair.audio.player import OutputBusy, Player, PlayerStopped, UnknownOutput
from onair.audio.playlists import plan
from onair.audio.probe import probe
from onair.config import (
    DeviceOutput,
    FileOutput,
    IcecastOutput,
    NullOutput,
    Output,
    Outputs,
    SrtOutput,
    UdpOutput,
)
from onair.ffmpeg import FfmpegFailed, ffmpeg_path


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sounds")
    for name, seconds in [("one.wav", 1), ("two.wav", 2), ("long.wav", 30)]:
        subprocess.run(
            [
                *(ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"),
                *("-i", f"sine=frequency=440:duration={seconds}", str(root / name)),
            ],
            check=True,
            timeout=30,
        )
    (root / "text.wav").write_text("not audio\n")
    return root


def ffmpegs() -> list[psutil.Process]:
    """ffmpeg processes started by this test process (the wheel's binary is `ffmpeg-linux-...`)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def arguments(process: psutil.Process) -> list[str]:
    """The process's command line; none once it has exited (it may, between listing and
    reading)."""
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


async def playing(path: Path, count: int = 1) -> None:
    """Return once `count` ffmpeg processes are playing `path`. The process table is the only
    witness that ffmpeg runs, and it sends no event, so this polls it under a deadline."""
    async with asyncio.timeout(5):
        while sum(f"file:{path}" in arguments(process) for process in ffmpegs()) < count:
            await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def no_ffmpeg_left() -> Iterator[None]:
    """Every test reaps its ffmpeg; one that does not fails, and what it left is killed, so
    that no later test (or the machine) inherits it."""
    yield
    left = ffmpegs()
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=3)
    assert left == []


def mean_volume(path: Path) -> float:
    """ffmpeg's volumedetect mean, in dB (about -91 for digital silence)."""
    result = subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-nostats", "-i", str(path)]
        + ["-af", "volumedetect", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    match = re.search(r"mean_volume: (-?[\d.]+) dB", result.stderr)
    assert match is not None, result.stderr
    return float(match[1])


# Playing into sinks -------------------------------------------------------------------------


async def test_play_into_a_file_takes_real_time_and_writes_the_sound(
    sounds: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "on air: 10:00.wav"  # a colon is not a protocol here
    async with Player({"archive": FileOutput(path=archive)}) as player:
        start = time.monotonic()
        playback = await player.play(sounds / "two.wav", "archive")
        elapsed = time.monotonic() - start

    assert 1.8 <= elapsed < 3.5, "a 2 s sound plays in real time, not faster"
    assert playback.output == "archive"
    assert playback.path == sounds / "two.wav"
    assert playback.seconds_played == pytest.approx(2.0, abs=0.3)
    assert playback.as_json() == {
        "output": "archive",
        "path": str(sounds / "two.wav"),
        "seconds_played": round(playback.seconds_played, 3),
        "started": playback.started.isoformat(),
        "ended": playback.ended.isoformat(),
        "offset_seconds": 0.0,
    }
    assert playback.started.tzinfo == UTC
    assert (playback.ended - playback.started).total_seconds() == pytest.approx(
        playback.seconds_played, abs=0.05
    )
    assert (await probe(archive)).duration_seconds == pytest.approx(2.0, abs=0.3)
    # The source sine is at 1/8 of full scale, about -21 dB mean; silence would be about -91.
    assert mean_volume(archive) == pytest.approx(mean_volume(sounds / "two.wav"), abs=1.0)


class _Collect(asyncio.DatagramProtocol):
    def __init__(self, enough: int) -> None:
        self.packets: list[tuple[float, bytes]] = []
        self.received = 0
        self.enough = enough
        self.got_enough = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.packets.append((time.monotonic(), data))
        self.received += len(data)
        if self.received >= self.enough:
            self.got_enough.set()


async def test_play_into_a_udp_listener_streams_mpegts_in_real_time(sounds: Path) -> None:
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(
        lambda: _Collect(enough=30_000), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        async with Player({"stream": UdpOutput(url=f"udp://127.0.0.1:{port}")}) as player:
            await player.play(sounds / "two.wav")
        async with asyncio.timeout(2):  # datagrams sent before the end may still be queued
            await listener.got_enough.wait()
    finally:
        transport.close()

    total = listener.received
    assert 30_000 <= total <= 60_000  # 2 s at 128 kbit/s is 32 kB, plus MPEG-TS overhead
    # Whole MPEG-TS packets (188 bytes, sync byte 0x47) in every datagram.
    assert {len(data) % 188 for _, data in listener.packets} == {0}
    assert all(data[0] == 0x47 for _, data in listener.packets)
    spread = listener.packets[-1][0] - listener.packets[0][0]
    assert spread >= 1.0, "sent as it plays, not in one burst"


# Cancellation and the busy rule -------------------------------------------------------------


async def test_cancelling_a_playback_stops_ffmpeg_within_a_second(sounds: Path) -> None:
    async with Player({"default": NullOutput()}) as player:
        task = asyncio.create_task(player.play(sounds / "long.wav"))
        await playing(sounds / "long.wav")
        assert player.playing() == {"default": "long.wav"}

        start = time.monotonic()
        task.cancel()
        async with asyncio.timeout(1):
            await asyncio.wait({task})
        assert time.monotonic() - start < 1.0
        assert task.cancelled()
        assert ffmpegs() == []
        assert player.playing() == {}


async def test_busy_output_waits_then_refuses_without_saying_what_plays(sounds: Path) -> None:
    async with Player({"default": NullOutput()}) as player:
        first = asyncio.create_task(player.play(sounds / "two.wav"))
        await playing(sounds / "two.wav")

        start = time.monotonic()
        with pytest.raises(OutputBusy) as refused:
            await player.play(sounds / "one.wav", busy_timeout=0.3)
        assert str(refused.value) == (
            "Output default is busy with another playback; gave up after waiting 0.3 s."
        )
        assert player.playing() == {"default": "two.wav"}, "operators still see what plays"
        assert 0.3 <= time.monotonic() - start < 1.0

        second = await player.play(sounds / "one.wav", busy_timeout=5)
        earlier = await first
        assert second.started >= earlier.ended, "the waiter plays after, never over"


async def test_unknown_output_is_refused_before_anything_plays(sounds: Path) -> None:
    player = Player({"studio": NullOutput(), "web": NullOutput()})
    assert player.default_output == "studio"
    with pytest.raises(UnknownOutput, match=r"^Unknown output: lobby. Configured outputs: studio"):
        await player.play(sounds / "one.wav", "lobby")


async def test_a_file_ffmpeg_cannot_play_fails_and_frees_the_output(sounds: Path) -> None:
    async with Player({"default": NullOutput()}) as player:
        with pytest.raises(FfmpegFailed, match="Invalid data found"):
            await player.play(sounds / "text.wav", busy_timeout=0)
        assert player.playing() == {}
        await player.play(sounds / "one.wav", busy_timeout=0)


async def test_leaving_the_player_stops_every_playback(sounds: Path) -> None:
    async with Player({"a": NullOutput(), "b": NullOutput()}) as player:
        tasks = [
            asyncio.create_task(player.play(sounds / "long.wav", "a")),
            asyncio.create_task(player.play_many([sounds / "long.wav"], "b")),
        ]
        await playing(sounds / "long.wav", count=2)
        start = time.monotonic()
    assert time.monotonic() - start < 1.5
    assert ffmpegs() == []
    for task in tasks:
        with pytest.raises(PlayerStopped, match="The player has shut down"):
            await task
    with pytest.raises(PlayerStopped):
        await player.play(sounds / "one.wav", "a")


# Playlist runs ------------------------------------------------------------------------------


async def test_play_many_cuts_at_max_duration_and_holds_the_output(sounds: Path) -> None:
    tracks = [sounds / "one.wav", sounds / "two.wav"]
    async with Player({"default": NullOutput()}) as player:
        start = time.monotonic()
        run = asyncio.create_task(
            player.play_many(
                (tracks[i] for i in plan("loop", 2, random.Random(1))), max_duration=2.5
            )
        )
        await playing(tracks[0])
        with pytest.raises(OutputBusy, match=r"busy with another playback"):
            await player.play(sounds / "one.wav", busy_timeout=0)
        assert player.playing() == {"default": "one.wav (track 1)"}
        await playing(tracks[1])
        with pytest.raises(OutputBusy, match=r"busy with another playback"):
            await player.play(sounds / "one.wav", busy_timeout=0)
        assert player.playing() == {"default": "two.wav (track 2)"}
        playbacks = await run
        elapsed = time.monotonic() - start

    assert [p.path for p in playbacks] == tracks, "the loop stops: no third track starts"
    assert playbacks[0].seconds_played == pytest.approx(1.0, abs=0.3)
    assert playbacks[1].seconds_played == pytest.approx(1.5, abs=0.3), "cut, not played out"
    assert elapsed == pytest.approx(2.5, abs=0.4)


async def test_cancelling_a_playlist_run_stops_it_and_frees_the_output(sounds: Path) -> None:
    async with Player({"default": NullOutput()}) as player:
        run = asyncio.create_task(player.play_many(iter(lambda: sounds / "long.wav", None)))
        await playing(sounds / "long.wav")
        run.cancel()
        async with asyncio.timeout(1):
            await asyncio.wait({run})
        assert run.cancelled()
        assert player.playing() == {}
        await player.play(sounds / "one.wav", busy_timeout=0)


# Outputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "args"),
    [
        pytest.param(DeviceOutput(), ["-f", "pulse", "onair"], id="pulse_default_sink"),
        pytest.param(
            DeviceOutput(device="alsa_output.usb"),
            ["-f", "pulse", "-device", "alsa_output.usb", "onair"],
            id="pulse_named_sink",
        ),
        pytest.param(DeviceOutput(driver="alsa", device="hw:1"), ["-f", "alsa", "hw:1"], id="alsa"),
        pytest.param(
            IcecastOutput(url="icecast://source:hackme@radio:8000/live", content_type="audio/ogg"),
            [
                *("-c:a", "libvorbis", "-b:a", "128k", "-content_type", "audio/ogg"),
                *("-f", "ogg", "icecast://source:hackme@radio:8000/live"),
            ],
            id="icecast_ogg",
        ),
        pytest.param(
            SrtOutput(url="srt://10.0.0.2:9000?latency=200000", codec="aac", bitrate=96),
            ["-c:a", "aac", "-b:a", "96k", "-f", "mpegts", "srt://10.0.0.2:9000?latency=200000"],
            id="srt_aac",
        ),
        pytest.param(
            FileOutput(path=Path("/tmp/x.mp3")),
            ["-flush_packets", "1", "-y", "file:/tmp/x.mp3"],
            id="file",
        ),
        pytest.param(NullOutput(), ["-f", "null", "-"], id="null"),
    ],
)
def test_output_ffmpeg_arguments(output: Output, args: list[str]) -> None:
    assert ffmpeg_args(output) == args


def test_outputs_from_settings_json() -> None:
    outputs = TypeAdapter(Outputs).validate_json(
        '{"studio": {"kind": "device", "driver": "alsa", "device": "hw:0"},'
        ' "web": {"kind": "icecast", "url": "icecast://source:secret@host:8000/onair"}}'
    )
    assert outputs["studio"] == DeviceOutput(driver="alsa", device="hw:0")
    assert describe(outputs["web"]) == "icecast://host:8000/onair"
    assert "secret" not in repr(outputs["web"])


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"kind": "icecast", "url": "http://host/live"}, ("icecast", "url"), id="ice"),
        pytest.param({"kind": "udp", "url": "udp://host"}, ("udp", "url"), id="udp_no_port"),
        pytest.param({"kind": "speaker"}, (), id="unknown_kind"),
        pytest.param({"kind": "null", "initial_burst": 0}, ("null", "initial_burst"), id="burst"),
    ],
)
def test_bad_outputs_name_the_field(data: dict[str, object], field: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(Output).validate_python(data)
    assert [error["loc"] for error in caught.value.errors()] == [field]


def test_default_outputs_prefer_pulse_then_alsa_then_a_warned_silent_sink(tmp_path: Path) -> None:
    runtime, snd = tmp_path / "run", tmp_path / "snd"
    (runtime / "pulse").mkdir(parents=True)
    snd.mkdir()
    env = {"XDG_RUNTIME_DIR": str(runtime)}

    silent = default_outputs(env, snd)
    assert silent.outputs == {"default": NullOutput()}
    assert "silent sink" in (silent.warning or "")

    (snd / "pcmC0D0p").touch()
    assert default_outputs(env, snd) == (
        type(silent)({"default": DeviceOutput(driver="alsa")}, None)
    )

    (runtime / "pulse" / "native").touch()
    assert default_outputs(env, snd).outputs == {"default": DeviceOutput(driver="pulse")}
    assert default_outputs({"PULSE_SERVER": "tcp:mixer:4713"}, tmp_path / "none").outputs == {
        "default": DeviceOutput(driver="pulse")
    }

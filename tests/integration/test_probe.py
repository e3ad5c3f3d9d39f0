"""probe() against files made here with the real ffmpeg, good and broken."""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
from pathlib import Path

import pytest

from onair.audio.probe import AudioInfo, UnsupportedAudio, _from_ffprobe, probe
from onair.errors import InvalidInput
from onair.ffmpeg import ffmpeg_path


def generate(path: Path, *source: str) -> Path:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", *source, str(path)],
        check=True,
        timeout=30,
    )
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    sine = ["-f", "lavfi", "-i", "sine=frequency=440:duration=2"]
    for name in ("sine.wav", "sine.ogg", "sine.mp3"):
        generate(root / name, *sine)
    generate(root / "news: 10:00.wav", *sine)
    generate(root / "stereo.ogg", *sine, "-ac", "2", "-ar", "48000")
    generate(root / "long.mp3", "-f", "lavfi", "-i", "sine=frequency=440:duration=30")
    generate(root / "image.png", "-f", "lavfi", "-i", "color=red:size=16x16", "-frames:v", "1")
    mp3 = (root / "sine.mp3").read_bytes()
    damaged = bytearray(mp3)
    for i in range(3000, 9000, 7):  # scramble frames in the middle
        damaged[i] = (damaged[i] * 31 + 7) % 256
    (root / "damaged.mp3").write_bytes(damaged)
    (root / "text.mp3").write_text("not audio\n" * 100)
    (root / "empty.mp3").write_bytes(b"")
    (root / "noise.ogg").write_bytes(random.Random(0).randbytes(5000))
    header = struct.pack("<IHHIIHH", 16, 1, 1, 44100, 88200, 2, 16)
    (root / "silent.wav").write_bytes(
        b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + header + b"data" + struct.pack("<I", 0)
    )
    return root


@pytest.mark.parametrize(
    ("name", "format_", "codec", "channels", "rate"),
    [
        pytest.param("sine.wav", "wav", "pcm_s16le", 1, 44100, id="wav"),
        pytest.param("news: 10:00.wav", "wav", "pcm_s16le", 1, 44100, id="colon_in_name"),
        pytest.param("sine.ogg", "ogg", "vorbis", 1, 44100, id="ogg"),
        pytest.param("sine.mp3", "mp3", "mp3", 1, 44100, id="mp3"),
        pytest.param("stereo.ogg", "ogg", "vorbis", 2, 48000, id="ogg_stereo_48k"),
    ],
)
async def test_probe_reads_duration_and_stream(
    media: Path, name: str, format_: str, codec: str, channels: int, rate: int
) -> None:
    info = await probe(media / name)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)
    assert (info.format, info.codec, info.channels, info.sample_rate) == (
        format_,
        codec,
        channels,
        rate,
    )


async def test_probe_can_bound_the_decoding_and_then_trusts_the_header(media: Path) -> None:
    info = await probe(media / "long.mp3", decode_seconds=1)
    assert info.duration_seconds == pytest.approx(30.0, abs=0.1)
    assert (await probe(media / "sine.wav", decode_seconds=10)).duration_seconds == pytest.approx(
        2.0, abs=0.1
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        pytest.param(
            "text.mp3",
            "not an audio file ffmpeg can read (Invalid data found when processing input)",
            id="text_file",
        ),
        pytest.param("image.png", "no audio stream", id="image"),
        pytest.param(
            "empty.mp3",
            "not an audio file ffmpeg can read (Invalid data found when processing input)",
            id="empty_file",
        ),
        pytest.param(
            "noise.ogg", "not an audio file ffmpeg can read (End of file)", id="random_bytes"
        ),
        pytest.param("silent.wav", "zero duration (no audio samples)", id="zero_duration"),
        pytest.param("missing.wav", "no such file", id="missing"),
    ],
)
async def test_probe_refuses_with_a_reason(media: Path, name: str, reason: str) -> None:
    with pytest.raises(UnsupportedAudio) as caught:
        await probe(media / name)
    assert caught.value.reason == reason
    assert str(caught.value) == f"Unsupported audio file {name}: {reason}."
    assert isinstance(caught.value, InvalidInput)


async def test_probe_refuses_a_file_damaged_in_the_middle_and_says_where(media: Path) -> None:
    with pytest.raises(UnsupportedAudio) as caught:
        await probe(media / "damaged.mp3")
    # Where it breaks and the decoder's words depend on the ffmpeg build; the shape does not.
    match = re.fullmatch(r"cannot be decoded after (\d+\.\d\d) s \((.+)\)", caught.value.reason)
    assert match is not None, caught.value.reason
    assert 0 < float(match[1]) < 2.0
    assert "Error" not in match[2]  # the decoder's complaint, not ffmpeg's generic line


async def test_probe_takes_stream_facts_from_ffprobe_when_it_is_on_path(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ffprobe is not installed here: a stand-in prints a known answer, to show which one is used.
    fake = tmp_path / "ffprobe"
    answer = '{"streams": [{"codec_name": "pcm_s24le", "sample_rate": "96000", "channels": 6}],'
    answer += ' "format": {"format_name": "w64", "duration": "9.0"}}'
    fake.write_text(f"#!/bin/sh\necho '{answer}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    info = await probe(media / "sine.wav")
    # The facts are ffprobe's; the duration is still the decoded one.
    assert (info.format, info.codec, info.channels, info.sample_rate) == (
        "w64",
        "pcm_s24le",
        6,
        96000,
    )
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_ffprobe_json_is_read_as_the_same_facts() -> None:
    document = {
        "streams": [{"codec_name": "vorbis", "sample_rate": "48000", "channels": 2}],
        "format": {"format_name": "ogg", "duration": "2.000000"},
    }
    assert _from_ffprobe(document) == AudioInfo(
        duration_seconds=2.0, format="ogg", codec="vorbis", channels=2, sample_rate=48000
    )
    assert _from_ffprobe({"streams": [], "format": {"format_name": "png_pipe"}}) is None

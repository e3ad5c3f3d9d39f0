"""What an audio file holds, and whether it can be played at all.

`probe` is meant for the door (an upload, a task that names a file), so that a file that would
fail on the air is refused with a reason instead. It decodes the first audio stream with ffmpeg
into the null muxer and stops at the first decoding error (`-xerror`): decoding is the only
reliable test of corruption, and it is the cheapest one that is reliable (no encoding, no
pacing: about 400 times real time on one core, so 1.5 s for ten minutes of stereo MP3). Callers
in a hurry can bound it with `decode_seconds`, accepting that damage further in goes unseen.
The duration reported is the decoded one when the whole file was decoded, which is exact even
where a header only estimates it (MP3 without a Xing header).

Stream facts (format, codec, channels, rate) come from ffprobe's JSON when ffprobe is on PATH,
else from the header ffmpeg prints for the same decoding run.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from onair.errors import InvalidInput
from onair.ffmpeg import FfmpegFailed, child, run_ffmpeg


class AudioInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    duration_seconds: float
    format: str
    """ffmpeg's demuxer name: `wav`, `ogg`, `mp3`, `mov,mp4,m4a,3gp,3g2,mj2`, ..."""
    codec: str
    channels: int
    sample_rate: int


class UnsupportedAudio(InvalidInput):
    """The file cannot go on the air; `reason` says why in words for the person who sent it."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Unsupported audio file {path.name}: {reason}.")
        self.path = path
        self.reason = reason


async def probe(path: Path, *, decode_seconds: float | None = None) -> AudioInfo:
    """Facts about the first audio stream of `path`, after checking that it decodes to the end
    (or for its first `decode_seconds`; the duration then comes from the file's header).

    Raises:
        UnsupportedAudio: the file is missing, is not a media file, has no audio stream, fails to
            decode somewhere, or decodes to nothing.
    """
    path = Path(path)
    if not path.is_file():
        raise UnsupportedAudio(path, "no such file")
    limit = [] if decode_seconds is None else ["-t", f"{decode_seconds:.3f}"]
    try:
        lines = await run_ffmpeg(
            [
                "-nostats",
                "-xerror",
                "-i",
                f"file:{path}",
                "-map",
                "0:a:0",
                *limit,
                "-f",
                "null",
                "-",
            ],
            keep_lines=1000,
        )
    except FfmpegFailed as error:
        raise UnsupportedAudio(path, _failure_reason(error.lines)) from None
    decoded = _decoded_seconds(lines)
    if decoded <= 0:
        raise UnsupportedAudio(path, "zero duration (no audio samples)")
    ffprobe = shutil.which("ffprobe")
    info = _from_ffprobe(await _run_ffprobe(ffprobe, path)) if ffprobe else _from_header(lines)
    if info is None:
        raise UnsupportedAudio(path, "no audio stream")
    if decode_seconds is not None and decoded >= decode_seconds - 0.05:
        # Stopped early: only the header knows the rest (ffprobe's or ffmpeg's reading of it).
        return info if info.duration_seconds > decoded else _with_duration(info, decoded)
    return _with_duration(info, decoded)


def _with_duration(info: AudioInfo, seconds: float) -> AudioInfo:
    return info.model_copy(update={"duration_seconds": seconds})


# ffmpeg's log lines -------------------------------------------------------------------------

_INPUT = re.compile(r"^Input #0, (?P<format>.+?), from ")
_AUDIO = re.compile(
    r"^\s*Stream #0:\d+\S*: Audio: (?P<codec>\w+)[^,]*, (?P<rate>\d+) Hz, (?P<layout>[^,]+)"
)
_DURATION = re.compile(r"^\s*Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_TIME = re.compile(r"time=(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_TAG = re.compile(r"^(\[[^\]]+\]\s*)+")  # "[mp3float @ 0x55d0a87fec40] " before a message
_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "hexadecagonal": 16,
}


def _header(lines: Sequence[str]) -> list[str]:
    """The lines describing the input, up to where ffmpeg starts describing its output."""
    out: list[str] = []
    for line in lines:
        if line.startswith(("Stream mapping:", "Output #0")):
            break
        out.append(line)
    return out


def _from_header(lines: Sequence[str]) -> AudioInfo | None:
    header = _header(lines)
    format_ = next((m["format"] for line in header if (m := _INPUT.match(line))), "unknown")
    duration = next((_seconds(m) for line in header if (m := _DURATION.match(line))), 0.0)
    for line in header:
        if match := _AUDIO.match(line):
            return AudioInfo(
                duration_seconds=duration,
                format=format_,
                codec=match["codec"],
                channels=_channels(match["layout"].strip()),
                sample_rate=int(match["rate"]),
            )
    return None


def _channels(layout: str) -> int:
    """Channels of an ffmpeg layout name: `mono`, `stereo`, `5.1(side)`, `6 channels`, ..."""
    name = layout.split("(")[0].strip()
    if name in _LAYOUTS:
        return _LAYOUTS[name]
    if match := re.fullmatch(r"(\d+) channels", name):
        return int(match[1])
    if match := re.fullmatch(r"(\d+)\.(\d+)", name):  # 5.1 is six channels, 7.1 eight
        return int(match[1]) + int(match[2])
    return 0


def _decoded_seconds(lines: Sequence[str]) -> float:
    """The media time of ffmpeg's final report (`time=00:00:02.00`); 0 when it says N/A."""
    for line in reversed(lines):
        if match := _TIME.search(line):
            return _seconds(match)
        if "time=N/A" in line:
            return 0.0
    return 0.0


def _seconds(match: re.Match[str]) -> float:
    return int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


def _failure_reason(lines: Sequence[str]) -> str:
    """Why ffmpeg gave up, in words: the input did not open, had no audio, or did not decode."""
    header = _header(lines)
    if not any(_INPUT.match(line) for line in header):
        cause = next(
            (line.split(": ", 1)[1] for line in reversed(lines) if "Error opening input" in line),
            lines[-1] if lines else "ffmpeg gave no reason",
        )
        if "No such file" in cause or "Permission denied" in cause:
            return f"cannot be read ({cause})"
        return f"not an audio file ffmpeg can read ({cause})"
    if not any(_AUDIO.match(line) for line in header):
        return "no audio stream"
    # The decoder's own complaint is the line just before ffmpeg's generic "Error ..." lines.
    decoding = [
        line
        for line in lines[len(header) :]
        if line.startswith("[") and not line.startswith("[out#")
    ]
    fatal = next((i for i, line in enumerate(decoding) if "Error" in line), len(decoding))
    detail = _TAG.sub("", decoding[max(fatal - 1, 0)]) if decoding else lines[-1]
    return f"cannot be decoded after {_decoded_seconds(lines):.2f} s ({detail})"


# ffprobe ------------------------------------------------------------------------------------


async def _run_ffprobe(ffprobe: str, path: Path) -> dict[str, Any]:
    async with child(
        ffprobe,
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "format=format_name,duration:stream=codec_name,channels,sample_rate",
        "-of",
        "json",
        f"file:{path}",
        stdout=asyncio.subprocess.PIPE,
    ) as process:
        stdout, _ = await process.communicate()
    if process.returncode != 0:
        return {}
    result: dict[str, Any] = json.loads(stdout or b"{}")
    return result


def _from_ffprobe(document: dict[str, Any]) -> AudioInfo | None:
    streams = document.get("streams") or []
    if not streams:
        return None
    stream = streams[0]
    format_ = document.get("format", {})
    return AudioInfo(
        duration_seconds=_number(format_.get("duration")),
        format=str(format_.get("format_name", "unknown")),
        codec=str(stream.get("codec_name", "unknown")),
        channels=int(_number(stream.get("channels"))),
        sample_rate=int(_number(stream.get("sample_rate"))),
    )


def _number(value: Any) -> float:
    """ffprobe's numbers are JSON strings, and absent or `N/A` when unknown."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0

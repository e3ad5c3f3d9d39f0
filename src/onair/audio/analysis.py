"""What a recording sounds like before it goes on air: its decoded length, its long silences
(ffmpeg's `silencedetect`) and its integrated loudness (ffmpeg's `ebur128`, EBU R 128 in LUFS),
all from one decoding pass into the null muxer (about 100 times real time on one core).

The readiness checks of broadcasts (`onair.operations.readiness`) use it to say whether a show
is ready for air.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from onair.ffmpeg import Progress, run_ffmpeg

_SILENCE_START = re.compile(r"silence_start: (-?[\d.]+)")
_SILENCE_END = re.compile(r"silence_end: (-?[\d.]+)")
_INTEGRATED = re.compile(r"^\s*I:\s+(-?[\d.]+|-inf) LUFS")


@dataclass(frozen=True)
class Analysis:
    """`silences` are (start, end) in seconds from the file's start, each at least the
    `min_silence` asked for; a silence running to the end ends at `duration`. `loudness` is the
    integrated loudness in LUFS (None: nothing loud enough to measure, pure silence)."""

    duration: float
    silences: tuple[tuple[float, float], ...]
    loudness: float | None

    @property
    def longest_silence(self) -> float:
        return max((end - start for start, end in self.silences), default=0.0)


def analysis_path(recording: Path) -> Path:
    """Where the analysis of a kept `recording` is kept beside it (`.analysis.json`)."""
    return recording.with_suffix(".analysis.json")


async def analyse(path: Path, *, noise_db: float = -50.0, min_silence: float = 2.0) -> Analysis:
    """Decode `path` once and measure it. A silence is audio below `noise_db` dBFS for at
    least `min_silence` seconds.

    Raises:
        FfmpegFailed: ffmpeg could not decode the file.
    """
    progress = Progress(period=1.0)
    lines = await run_ffmpeg(
        [
            *("-nostats", "-loglevel", "info", "-i", f"file:{path}", "-map", "0:a:0"),
            *("-af", f"silencedetect=noise={noise_db:g}dB:duration={min_silence:g},ebur128"),
            *("-f", "null", "-"),
        ],
        keep_lines=100_000,
        progress=progress,
    )
    duration = progress.out_seconds
    silences: list[tuple[float, float]] = []
    start: float | None = None
    loudness: float | None = None
    for line in lines:
        if (found := _SILENCE_START.search(line)) is not None:
            start = max(float(found.group(1)), 0.0)
        elif (found := _SILENCE_END.search(line)) is not None and start is not None:
            silences.append((start, float(found.group(1))))
            start = None
        elif (found := _INTEGRATED.search(line)) is not None:
            value = found.group(1)
            loudness = None if value == "-inf" else float(value)
    if start is not None:
        silences.append((start, max(duration, start)))
    return Analysis(duration, tuple(silences), loudness)

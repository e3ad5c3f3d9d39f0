"""Running ffmpeg: finding the binary, and a subprocess that is always reaped.

Both the audio player and the broadcast stream run ffmpeg through `run_ffmpeg`, so there is one
place that guarantees no ffmpeg outlives the run that started it: on completion, failure,
cancellation and shutdown alike.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
from collections.abc import Sequence
from functools import cache

from onair.errors import OperationError


class FfmpegFailed(OperationError):
    def __init__(self, code: int, lines: Sequence[str]) -> None:
        tail = "\n".join(lines) or "(no output)"
        super().__init__(f"ffmpeg exited with code {code}: {tail}")
        self.code = code
        self.lines = list(lines)


@cache
def ffmpeg_path() -> str:
    """The system's ffmpeg when it is on PATH, else the binary of the imageio-ffmpeg wheel."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run_ffmpeg(
    args: Sequence[str], *, keep_lines: int = 20, stop_grace: float = 1.0
) -> list[str]:
    """Run `ffmpeg <args>` to the end and return the last `keep_lines` lines it wrote to stderr.

    stdin and stdout are /dev/null. The process runs in its own session so that the whole group
    can be signalled.

    Raises:
        FfmpegFailed: a non-zero exit, with ffmpeg's last lines.
        asyncio.CancelledError: when cancelled; ffmpeg has then been stopped (SIGTERM, then
            SIGKILL after `stop_grace` seconds) and reaped before this propagates.
    """
    process = await asyncio.create_subprocess_exec(
        ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
    try:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                lines.append(line)
        code = await process.wait()
    finally:
        if process.returncode is None:
            await asyncio.shield(_stop(process, stop_grace))
    if code != 0:
        raise FfmpegFailed(code, lines)
    return list(lines)


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds, and reap it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            continue

"""Running ffmpeg: finding the binary, and a subprocess that is always reaped and dies with
the node.

Every ffmpeg (and ffprobe) that onair starts, for the player, the upload check and the stream
operation, is started by `child`, so there is one place that guarantees none outlives what
started it. The run that started it: `child` stops and reaps it on completion, failure,
cancellation and shutdown alike. The node: a node that dies, even by `kill -9`, takes its
children with it, so that a restarted node never plays over audio its predecessor left on air.

- On Linux the kernel does it: each child asks for SIGKILL when its parent dies
  (`prctl(PR_SET_PDEATHSIG)`, through ctypes, between fork and exec), then checks that its
  parent is still the node, in case the node died before the request was made.
- Elsewhere (no `prctl`), one small watchdog process per node holds a pipe from the node and
  learns the process group of each child as it starts and ends; when the pipe closes, which
  the kernel does however the node ends, it kills the groups still listed.

The death signal is tied to the thread that starts the child: children are started from the
event loop's thread, which lives as long as the node.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import IO, Any

from onair.errors import OperationError

_PR_SET_PDEATHSIG = 1


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


def _load_prctl() -> Callable[..., int] | None:
    """libc's `prctl`, or None where there is none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_prctl = _load_prctl()


def _die_with(parent: int) -> Callable[[], None]:
    """What the child runs between fork and exec: SIGKILL once `parent` dies. Kept to two
    system calls, all resolved before the fork, as a child of a threaded process must."""
    prctl, kill = _prctl, int(signal.SIGKILL)
    assert prctl is not None

    def request() -> None:
        if prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0) != 0:
            os._exit(127)  # not guarded: better not started than left on air
        if os.getppid() != parent:  # the node died before the request: nobody to wait for
            os._exit(127)

    return request


_WATCHDOG = """import os, signal, sys
groups = set()
for line in sys.stdin:
    (groups.add if line[0] == "+" else groups.discard)(int(line[1:]))
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class _Watchdog:
    """The fallback where the kernel offers no death signal: one `python -c` process per
    node that reads the process groups of live children from a pipe and kills those left
    when the pipe reaches its end, i.e. when the node has ended, however it ended."""

    def __init__(self) -> None:
        self._pipe: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        if self._pipe is None or self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a ^C to the node's group leaves it to do its job
            )
            self._pipe = self._process.stdin
        assert self._pipe is not None
        self._pipe.write(line.encode())
        self._pipe.flush()

    def watch(self, group: int) -> None:
        self._send(f"+{group}\n")

    def forget(self, group: int) -> None:
        with contextlib.suppress(OSError):
            self._send(f"-{group}\n")


_watchdog = _Watchdog()


def guarded() -> str:
    """How children are made to die with the node here: `pdeathsig` or `watchdog`."""
    return "pdeathsig" if _prctl is not None else "watchdog"


@contextlib.asynccontextmanager
async def child(
    program: str,
    *args: str,
    stdout: int = asyncio.subprocess.DEVNULL,
    stderr: int = asyncio.subprocess.DEVNULL,
    stop_grace: float = 1.0,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`program args` as a child that dies with the node (see the module's docstring), in a
    session of its own so that its whole group can be signalled; stdin is /dev/null.

    Leaving the block stops the child if it still runs (SIGTERM to its group, SIGKILL after
    `stop_grace` seconds) and reaps it, even when the block is cancelled.
    """
    options: dict[str, Any] = {}
    if _prctl is not None:
        options["preexec_fn"] = _die_with(os.getpid())
    process = await asyncio.create_subprocess_exec(
        program,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        **options,
    )
    watched = _prctl is None
    try:
        if watched:
            _watchdog.watch(process.pid)
        yield process
    finally:
        try:
            if process.returncode is None:
                await asyncio.shield(_stop(process, stop_grace))
        finally:
            if watched:
                _watchdog.forget(process.pid)


PROGRESS_PERIOD = 0.02
"""Seconds between two of ffmpeg's progress reports (`-stats_period`): the resolution of the
first-audio instant. 50 short reports a second cost the node about 0.2 % of a core."""


@dataclass
class Progress:
    """ffmpeg's own account of a run, from its `-progress pipe:1` reports, read as they come.

    `first_output` is the instant (monotonic clock, like `spawned`) the first packet left the
    muxer: ffmpeg reports every `period` seconds from the start of its transcoding, and the
    first report with bytes written (`total_size > 0`) follows that packet by at most one
    period, so the packet went out within `period` before it, and after the report before it.
    Measured against a file output read by a listener: within a few milliseconds
    (docs/operations.md, "First audio"). `out_seconds` is the media time written so far.
    """

    period: float = PROGRESS_PERIOD
    spawned: float | None = None
    first_output: float | None = None
    out_seconds: float = 0.0
    bytes_out: int = 0
    _block: dict[str, str] = field(default_factory=dict, repr=False)
    _last_report: float | None = field(default=None, repr=False)

    def arguments(self) -> list[str]:
        return ["-progress", "pipe:1", "-stats_period", f"{self.period:g}"]

    def feed(self, line: str, now: float) -> None:
        """One `key=value` line of a report, read at `now` (monotonic)."""
        key, _, value = line.strip().partition("=")
        if key != "progress":
            self._block[key] = value
            return
        block, self._block = self._block, {}
        with contextlib.suppress(ValueError):
            self.bytes_out = int(block.get("total_size", "0"))
        with contextlib.suppress(ValueError):
            self.out_seconds = max(int(block.get("out_time_us", "0")), 0) / 1e6
        if self.first_output is None and self.bytes_out > 0:
            before = self._last_report if self._last_report is not None else self.spawned
            estimate = now - self.period
            self.first_output = estimate if before is None else max(estimate, before)
        self._last_report = now


async def run_ffmpeg(
    args: Sequence[str],
    *,
    keep_lines: int = 20,
    stop_grace: float = 1.0,
    progress: Progress | None = None,
) -> list[str]:
    """Run `ffmpeg <args>` to the end and return the last `keep_lines` lines it wrote to stderr.

    stdin and stdout are /dev/null; the process is a `child`, so it dies with the node. With
    `progress`, ffmpeg also writes its progress reports to stdout, and they update `progress`
    as they come (the first output instant, the media time written), also when the run fails
    or is cancelled.

    Raises:
        FfmpegFailed: a non-zero exit, with ffmpeg's last lines.
        asyncio.CancelledError: when cancelled; ffmpeg has then been stopped (SIGTERM, then
            SIGKILL after `stop_grace` seconds) and reaped before this propagates.
    """
    lines: collections.deque[str] = collections.deque(maxlen=keep_lines)
    reporting = [] if progress is None else progress.arguments()
    stdout = asyncio.subprocess.DEVNULL if progress is None else asyncio.subprocess.PIPE
    async with child(
        ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        *reporting,
        *args,
        stdout=stdout,
        stderr=asyncio.subprocess.PIPE,
        stop_grace=stop_grace,
    ) as process:
        reader = None
        if progress is not None:
            progress.spawned = time.monotonic()
            assert process.stdout is not None
            reader = asyncio.create_task(_read_progress(process.stdout, progress))
        try:
            assert process.stderr is not None
            async for raw in process.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    lines.append(line)
            code = await process.wait()
            if reader is not None:
                await reader  # the last reports, up to the end of stdout
        finally:
            if reader is not None and not reader.done():
                reader.cancel()
                await asyncio.wait({reader})
    if code != 0:
        raise FfmpegFailed(code, lines)
    return list(lines)


async def _read_progress(stdout: asyncio.StreamReader, progress: Progress) -> None:
    async for raw in stdout:
        progress.feed(raw.decode(errors="replace"), time.monotonic())


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

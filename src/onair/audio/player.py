"""Playing audio files on named outputs, one playback at a time per output.

Each playback is one ffmpeg process that reads the file at its native rate (`-re`) and writes
to the output's sink, so a playback lasts as long as its audio and the awaiting task knows when
the sound has gone out. The process runs through `onair.ffmpeg.run_ffmpeg`, which stops and
reaps it on cancellation; the player adds the rules of the outputs: one playback at a time on
each, a bounded wait when one is busy, and a lifecycle that stops every playback on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from onair.audio.outputs import describe, ffmpeg_args
from onair.config import Output
from onair.errors import InvalidInput, OperationError, Problem
from onair.ffmpeg import FfmpegFailed, Progress, run_ffmpeg
from onair.timeutil import Clock, SystemClock

logger = logging.getLogger(__name__)


class UnknownOutput(InvalidInput):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"Unknown output: {name}. Configured outputs: {', '.join(known)}.")
        self.problems = (Problem(str(self), "output"),)


class OutputBusy(OperationError):
    """The output stayed busy. The message never says with what: a run's error is shown to its
    owner, and what plays may be another user's (`Player.playing()` tells operators)."""

    def __init__(self, name: str, waited: float) -> None:
        super().__init__(
            f"Output {name} is busy with another playback; gave up after waiting {waited:g} s."
        )
        self.output = name


class PlayerStopped(OperationError):
    def __init__(self, name: str) -> None:
        super().__init__(f"The player has shut down; nothing more plays on output {name}.")
        self.output = name


End = Literal["completed", "max_duration", "cancelled", "failed"]
"""How a playback ended: all of it played, cut by the run's `max_duration`, cancelled (or the
player shut down), or failed."""


@dataclass(frozen=True)
class Playback:
    """One file played on one output.

    `seconds_played` is wall-clock time from starting ffmpeg to its end (monotonic clock), so it
    includes ffmpeg's start-up, some tens of milliseconds. `started` and `ended` are aware UTC
    instants read from the player's clock.
    """

    output: str
    path: Path
    seconds_played: float
    started: datetime
    ended: datetime
    offset: float = 0.0
    """Seconds of the file skipped at its start (a late run that joined)."""
    first_audio: datetime | None = None
    """When its first audio left onair, by ffmpeg's own progress (`onair.ffmpeg.Progress`);
    None when none did."""
    end: End = "completed"
    error: str | None = None
    """Why it failed (`end` is `failed`)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "path": str(self.path),
            "seconds_played": round(self.seconds_played, 3),
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "offset_seconds": round(self.offset, 3),
        }


class Player:
    """Plays files on the configured outputs.

    `busy_timeout` is how long `play` and `play_many` wait for a busy output by default before
    they raise `OutputBusy`; waiters get the output in the order they came. `default_output` is
    the output used when a call names none: the one called `default` if configured, else the
    first.

    Use it as `async with Player(outputs) as player:`. Leaving the block stops every playback
    (each awaiting call then raises `PlayerStopped`) and reaps every ffmpeg before it returns;
    the player plays nothing afterwards.
    """

    def __init__(
        self,
        outputs: Mapping[str, Output],
        *,
        default_output: str | None = None,
        busy_timeout: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if not outputs:
            raise ValueError("the player needs at least one output")
        self._outputs = dict(outputs)
        if default_output is None:
            default_output = "default" if "default" in outputs else next(iter(outputs))
        elif default_output not in outputs:
            raise UnknownOutput(default_output, outputs)
        self.default_output = default_output
        self.busy_timeout = busy_timeout
        self._clock = clock or SystemClock()
        self._locks = {name: asyncio.Lock() for name in outputs}
        self._playing: dict[str, str] = {}
        self._processes: set[asyncio.Task[list[str]]] = set()
        self._closed = False
        self._burst: bool | None = None
        self._burst_lock = asyncio.Lock()

    @property
    def outputs(self) -> Mapping[str, Output]:
        return self._outputs

    def playing(self) -> dict[str, str]:
        """What each busy output is playing now (a file name, or a playlist run's track)."""
        return dict(self._playing)

    def output(self, name: str | None) -> str:
        """The output a call naming `name` plays on.

        Raises:
            UnknownOutput: no output of that name is configured.
        """
        if name is None:
            return self.default_output
        if name not in self._outputs:
            raise UnknownOutput(name, self._outputs)
        return name

    async def __aenter__(self) -> Self:
        await self._supports_burst()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every playback and wait until each ffmpeg has been reaped."""
        self._closed = True
        processes = list(self._processes)
        for process in processes:
            process.cancel()
        if processes:
            await asyncio.wait(processes)

    async def play(
        self,
        path: Path,
        output: str | None = None,
        *,
        busy_timeout: float | None = None,
        offset: float = 0.0,
        aired: Callable[[Playback], None] | None = None,
    ) -> Playback:
        """Play all of `path` on `output` (the default when None), in real time, from `offset`
        seconds into it.

        Returns when the file has been played. Cancelling the awaiting task stops the audio
        within a second and reaps ffmpeg before the cancellation propagates. `aired`, when
        given, is called with the playback as soon as it ends, however it ends (completed,
        cancelled, failed), for the as-run log; it must not block.

        Raises:
            UnknownOutput: no such output.
            OutputBusy: the output stayed busy for `busy_timeout` seconds (the player's default
                when None).
            PlayerStopped: the player shut down before or during the playback.
            FfmpegFailed: ffmpeg could not play the file or reach the output.
        """
        name = self.output(output)
        async with self._hold(name, busy_timeout, Path(path).name):
            return await self._play(name, Path(path), None, offset, aired)

    async def play_many(
        self,
        paths: Iterable[Path] | AsyncIterable[Path],
        output: str | None = None,
        *,
        max_duration: float | None = None,
        busy_timeout: float | None = None,
        offset: float = 0.0,
        aired: Callable[[Playback], None] | None = None,
    ) -> list[Playback]:
        """Play `paths` one after the other on `output`, holding the output for the whole run so
        that no other playback slips in between two tracks. The first track starts `offset`
        seconds into its file (a late run that joined), the others from their start.

        `paths` may be endless (a looping playlist plan); the run then lasts until it is
        cancelled or `max_duration` seconds have passed since its first track started. At that
        point the track playing is cut and no other starts. A failing track ends the run.
        `aired` is called with every track's playback as it ends, as with `play`.
        The next path is asked for only when it is about to start (never once the time is
        up), so an asynchronous `paths` may pay for each track as it starts, or end the run.

        Raises: as `play`.
        """
        name = self.output(output)
        playbacks: list[Playback] = []
        async with (
            contextlib.aclosing(_each(paths)) as tracks,
            self._hold(name, busy_timeout, "a playlist"),
        ):
            start = time.monotonic()
            while True:
                limit = None
                if max_duration is not None:
                    limit = max_duration - (time.monotonic() - start)
                    if limit <= 0:
                        break
                try:
                    path = await anext(tracks)
                except StopAsyncIteration:
                    break
                self._playing[name] = f"{Path(path).name} (track {len(playbacks) + 1})"
                seek = 0.0 if playbacks else offset
                playbacks.append(await self._play(name, Path(path), limit, seek, aired))
        return playbacks

    @contextlib.asynccontextmanager
    async def _hold(self, name: str, busy_timeout: float | None, what: str) -> AsyncIterator[None]:
        """The output's lock, waited for at most `busy_timeout` seconds."""
        if self._closed:
            raise PlayerStopped(name)
        wait = self.busy_timeout if busy_timeout is None else busy_timeout
        lock = self._locks[name]
        try:
            async with asyncio.timeout(wait):
                await lock.acquire()
        except TimeoutError:
            logger.info("output %s stayed busy with %s", name, self._playing.get(name, "?"))
            raise OutputBusy(name, wait) from None
        try:
            if self._closed:
                raise PlayerStopped(name)
            self._playing[name] = what
            yield
        finally:
            self._playing.pop(name, None)
            lock.release()

    async def _play(
        self,
        name: str,
        path: Path,
        limit: float | None,
        offset: float = 0.0,
        aired: Callable[[Playback], None] | None = None,
    ) -> Playback:
        output = self._outputs[name]
        burst = ["-readrate_initial_burst", f"{output.initial_burst:g}"]
        supports_burst = await self._supports_burst()
        if self._closed:  # shut down while that was checked
            raise PlayerStopped(name)
        args = [
            "-nostats",
            "-loglevel",
            "error",
            *(burst if supports_burst else []),
            "-re",
            # Input seeking: ffmpeg decodes from `offset` exactly, and paces from there.
            *([] if offset <= 0 else ["-ss", f"{offset:.3f}"]),
            "-i",
            f"file:{path}",  # never read as a protocol, whatever the file is called
            "-map",
            "0:a:0",
            *([] if limit is None else ["-t", f"{limit:.3f}"]),
            *ffmpeg_args(output),
        ]
        started, start = self._clock.now(), time.monotonic()
        logger.info("Playing %s on %s (%s)", path.name, name, describe(output))
        progress = Progress()
        process = asyncio.create_task(run_ffmpeg(args, progress=progress))
        self._processes.add(process)
        end: End = "completed"
        error: str | None = None
        try:
            # Cancelling this task cancels `process` too, and the CancelledError arrives here
            # only once run_ffmpeg has reaped ffmpeg.
            await process
        except asyncio.CancelledError:
            end = "cancelled"
            current = asyncio.current_task()
            if self._closed and current is not None and not current.cancelling():
                raise PlayerStopped(name) from None
            raise
        except Exception as failure:
            end, error = "failed", str(failure)
            raise
        finally:
            if not process.done():  # cancelled before it was awaited: still reap it
                process.cancel()
                await asyncio.wait({process})
            self._processes.discard(process)
            if end == "completed" and limit is not None and progress.out_seconds >= limit - 0.05:
                end = "max_duration"
            playback = Playback(
                name,
                path,
                time.monotonic() - start,
                started,
                self._clock.now(),
                offset,
                _instant(started, start, progress.first_output),
                end,
                error,
            )
            if aired is not None:
                aired(playback)
        logger.info("Played %s on %s for %.2f s", path.name, name, playback.seconds_played)
        return playback

    async def _supports_burst(self) -> bool:
        """Whether this ffmpeg knows `-readrate_initial_burst` (6.1 and later). Before 6.1 `-re`
        sent no burst at all; since, it sends half a second unless told otherwise."""
        async with self._burst_lock:
            if self._burst is not None:
                return self._burst
            try:
                await run_ffmpeg(
                    [
                        *("-readrate_initial_burst", "0.1", "-re"),
                        *("-f", "lavfi", "-i", "anullsrc", "-t", "0.01", "-f", "null", "-"),
                    ]
                )
                self._burst = True
            except FfmpegFailed:
                self._burst = False
            return self._burst


def _instant(started: datetime, start: float, monotonic: float | None) -> datetime | None:
    """The clock's instant of a `monotonic` reading, `started` having been read at `start`."""
    if monotonic is None:
        return None
    return started + timedelta(seconds=monotonic - start)


async def _each(paths: Iterable[Path] | AsyncIterable[Path]) -> AsyncGenerator[Path, None]:
    """`paths` as one asynchronous iterator, whichever kind it is."""
    if isinstance(paths, AsyncIterable):
        async for path in paths:
            yield path
    else:
        for path in paths:
            yield path

"""The `stream` operation: broadcast a recorded show through emistream at its planned start.

The flow follows the reference (contracts/emischeduler.md §1.9) step by step:

1. find the event in emishows, its schedule for the local day and the instance starting at
   `start`; check it is a replay or prerecorded event whose instance has not ended;
2. download its audio at once into the cache: for a replay, the latest recording of a live
   event of the same show within `window` before the start (emirecords); for a prerecorded
   event, its own prerecording (emilounge);
3. wait until `reserve_before` (10 s) before the start, then reserve emistream's slot; while it
   is busy, wait for its next availability event and try again, until `timeout` (1 h) after the
   first attempt;
4. wait until `start_before` (1 s) before the start, then stream the file with ffmpeg as an SRT
   caller to emistream, in real time, and finish when it has all been sent.

A broadcast that reaches step 4 later than `late_grace` (a slow download, a long wait for the
reservation, a node that started late) follows its `late_start` policy (`onair.engine.latestart`):
by default it *joins*: ffmpeg seeks into the recording by the lateness and stops at the
instance's end, so the show follows the wall clock and does not overrun its slot. `full` plays
the recording from its start; `skip` streams nothing. The result's `late_start` says which.

Where onair differs from the reference, on purpose:

* The replay look-back converts the instance's wall time to UTC before querying emishows, and
  queries emirecords in each live event's own zone (the reference mixes local and UTC).
* The schedule of the local day ends at the next local midnight, not 24 h after the first one,
  so instances late on a 25-hour DST day are found.
* The downloaded file is removed after the broadcast, on failure and on cancellation, and
  cancellation stops ffmpeg (the reference left it running).
* ffmpeg's exit code is checked: a stream that could not be sent fails the run.
* ffmpeg gets one more option than the reference's command line, `-page_duration 100000`
  (Ogg pages of 0.1 s instead of 1 s). emistream's SRT listener loses whatever is in flight
  when the caller closes, and with 1 s pages that is the last 1-2 s of every broadcast
  (measured with ffmpeg 9.0 as both caller and listener: 1.0 s of a 3 s recording arrived).
  With 0.1 s pages about 0.3 s is lost. (`-linger` on the caller saves another 0.2 s but makes
  the listener notice the end 4 s late, holding emistream's slot; not worth it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time as monotonic_time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo

import anyio
from pydantic import BaseModel, ValidationError

from onair.audio.analysis import analysis_path
from onair.audio.asrun import Aired, AsRun, EndReason
from onair.broadcast.clients import (
    Download,
    Emilounge,
    Emirecords,
    Emishows,
    Emistream,
)
from onair.broadcast.models import Event, Instance, Record, Reservation, StreamParameters
from onair.config import StreamSettings
from onair.engine.admission import STAFF, Admission, Hold, Role
from onair.engine.latestart import decide
from onair.engine.policies import Policy, Retry
from onair.engine.registry import JSON, RunContext
from onair.errors import OperationError
from onair.ffmpeg import Progress, run_ffmpeg
from onair.timeutil import as_utc, naive_utc, zone


class StreamError(OperationError):
    """Every expected failure of a stream run; the message says which and for what."""


class EventNotFound(StreamError):
    def __init__(self, event: UUID) -> None:
        super().__init__(f"No event found for id {event}.")


class ScheduleNotFound(StreamError):
    def __init__(self, event: UUID) -> None:
        super().__init__(f"No schedule found for event {event}.")


class InstanceNotFound(StreamError):
    def __init__(self, event: UUID, start: datetime) -> None:
        super().__init__(f"No instance found for event {event} and start {start.isoformat()}.")


class UnexpectedEventType(StreamError):
    def __init__(self, event: UUID, type_: str) -> None:
        super().__init__(f"Event {event} has unexpected type {type_}.")


class InstanceEnded(StreamError):
    def __init__(self, event: UUID, start: datetime, end: datetime) -> None:
        super().__init__(
            f"Instance for event {event} and start {start.isoformat()} "
            f"has already ended at {end.isoformat()}."
        )


class NoDownload(StreamError):
    def __init__(self, event: UUID, start: datetime, why: str = "") -> None:
        super().__init__(
            f"No download available for event {event} and start {start.isoformat()}{why}."
        )


class ReservationDeadlinePassed(StreamError):
    def __init__(self, event: UUID, deadline: datetime, detail: str) -> None:
        super().__init__(
            f"Reservation deadline passed for event {event}: emistream was still busy at "
            f"{naive_utc(deadline).isoformat()} ({detail})."
        )


class SrtHostUnresolved(StreamError):
    def __init__(self, host: str, error: OSError) -> None:
        super().__init__(f"Cannot resolve emistream's SRT host {host}: {error}.")


@dataclass(frozen=True)
class _Source:
    """What was downloaded: `service` and the `event`/`start` of the file there."""

    service: str
    event: UUID
    start: datetime
    download: Download


def ffmpeg_arguments(
    path: Path, token: str, ip: str, port: int, offset: float = 0.0, limit: float | None = None
) -> list[str]:
    """ffmpeg's arguments for one broadcast: the reference's, plus the page duration explained in
    the module docstring; a late broadcast that joins starts `offset` seconds into the file
    (input seeking: from the Ogg page at or before it, as the stream is copied) and stops after
    `limit` seconds."""
    return [
        "-re",
        *([] if offset <= 0 else ["-ss", f"{offset:.3f}"]),
        "-f",
        "ogg",
        "-i",
        str(path),
        *([] if limit is None else ["-t", f"{max(limit, 0.0):.3f}"]),
        "-acodec",
        "copy",
        "-f",
        "ogg",
        "-page_duration",
        "100000",
        "-passphrase",
        token,
        f"srt://{ip}:{port}",
    ]


class Stream:
    """Broadcast one instance of a replay or prerecorded event.

    Policy: `misfire_grace=None`, because a late start is still worth trying: the run itself
    fails with "has already ended" once the instance is over, and until then every second of
    the show that reaches the air counts. `retry`: 3 attempts 5 s apart, because most failures
    are transient (a neighbour restarting, emistream refusing the SRT caller for a moment) and
    a retry a few seconds later can still make the broadcast; a retry downloads again, and an
    interrupted broadcast restarts from the beginning of the recording. More attempts would
    mostly replay the same lasting failure.
    """

    name: ClassVar[str] = "stream"
    Parameters: ClassVar[type[BaseModel]] = StreamParameters
    policy: ClassVar[Policy] = Policy(
        misfire_grace=None, retry=Retry(attempts=3, backoff=timedelta(seconds=5))
    )
    # The station's own: its synchronizer, the open Tasks API, admins. emistream's
    # reservation decides at run time who is on air, so a broadcast holds nothing here.
    roles: ClassVar[frozenset[Role]] = STAFF

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    def __init__(
        self,
        emishows: Emishows,
        emirecords: Emirecords,
        emilounge: Emilounge | None,
        emistream: Emistream,
        settings: StreamSettings,
        srt_host: str,
        srt_port: int,
        asrun: AsRun | None = None,
    ) -> None:
        self.emishows = emishows
        self.emirecords = emirecords
        self.emilounge = emilounge
        self.emistream = emistream
        self.settings = settings
        self.srt_host = srt_host
        self.srt_port = srt_port
        self.asrun = asrun or AsRun()

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """Returns `{"event", "start", "source", "bytes", "reserved", "started", "finished",
        "late_start"}`; times are naive UTC like the rest of the Tasks API (`finished` is None
        when the late-start policy skipped the broadcast).

        Raises:
            StreamError: one of the named failures above.
            NeighbourError: a neighbour did not answer, or answered outside its contract.
            FfmpegFailed: the stream could not be sent.
        """
        params = _parameters(parameters)
        log = context.logger
        event = await self.emishows.event(params.id)
        if event is None:
            raise EventNotFound(params.id)
        tz = _event_zone(event)
        instance = await self._instance(event, tz, params.start)
        if event.type not in ("replay", "prerecorded"):
            raise UnexpectedEventType(event.id, event.type)
        if as_utc(instance.end, tz) < context.clock.now():
            raise InstanceEnded(event.id, instance.start, instance.end)
        start = as_utc(instance.start, tz)

        destination = self._destination(event.id, instance.start, context)
        try:
            source = await self._take_prefetched(event, tz, instance, destination)
            if source is None:
                source = await self._download(event, tz, instance, destination)
            log.info(
                "stream %s %s: downloaded %d bytes from %s (event %s, start %s)",
                event.id,
                instance.start.isoformat(),
                source.download.size,
                source.service,
                source.event,
                source.start.isoformat(),
            )
            ip = await _resolve(self.srt_host)

            await context.sleep_until(start - self.settings.reserve_before)
            reservation = await self._reserve(event.id, context)
            reserved = context.clock.now()
            log.info("stream %s: reserved emistream at %s", event.id, reserved.isoformat())

            planned = start - self.settings.start_before
            await context.sleep_until(planned)
            started, start_monotonic = context.clock.now(), monotonic_time.monotonic()
            end = as_utc(instance.end, tz)
            late = decide(
                params.late_start,
                params.late_grace,
                planned,
                started,
                (end - planned).total_seconds(),
            )
            finished: datetime | None = None
            first_audio: datetime | None = None
            progress = Progress()
            outcome: EndReason = "skipped"
            error: str | None = None
            try:
                if late.plays:
                    limit = (end - started).total_seconds() if late.action == "joined" else None
                    if late.action != "on_time":
                        log.info("stream %s: %.3f s late, %s", event.id, late.lateness, late.action)
                    token = reservation.credentials.token
                    outcome = "cancelled"
                    arguments = ffmpeg_arguments(
                        destination, token, ip, self.srt_port, late.offset, limit
                    )
                    try:
                        await run_ffmpeg(arguments, progress=progress)
                    except Exception as failure:
                        outcome, error = "failed", str(failure)
                        raise
                    outcome = "completed"
                    finished = context.clock.now()
                    log.info("stream %s: streamed until %s", event.id, finished.isoformat())
                else:
                    log.info("stream %s: skipped, %.3f s late", event.id, late.lateness)
            finally:
                first_audio = _instant(started, start_monotonic, progress)
                item = Aired(
                    context.run_id, context.task_id, self.name, "broadcast",
                    event.show.title if event.show else f"event {event.id}", context.owner,
                    "emistream", planned, first_audio,
                    _seconds(first_audio, context.clock.now()), late.offset, outcome,
                    context.clock.now(), error,
                    {
                        "event_id": str(event.id),
                        "show_id": str(event.show_id),
                        "instance_start": instance.start.isoformat(),
                    },
                )  # fmt: skip
                await asyncio.shield(self.asrun.record([item]))
        finally:
            with contextlib.suppress(OSError):
                await asyncio.shield(anyio.Path(destination).unlink(missing_ok=True))
        return {
            "event": str(event.id),
            "start": instance.start.isoformat(),
            "source": {
                "service": source.service,
                "event": str(source.event),
                "start": source.start.isoformat(),
            },
            "bytes": source.download.size,
            "reserved": naive_utc(reserved).isoformat(),
            "started": naive_utc(started).isoformat(),
            "finished": None if finished is None else naive_utc(finished).isoformat(),
            "first_audio": None if first_audio is None else naive_utc(first_audio).isoformat(),
            "late_start": late.as_json(),
        }

    async def _instance(self, event: Event, tz: ZoneInfo, start: datetime) -> Instance:
        """The instance of `event` starting at `start` (naive, event zone), from the schedule of
        that local day."""
        midnight = datetime.combine(start.date(), time(), tzinfo=tz)
        next_midnight = datetime.combine(start.date() + timedelta(days=1), time(), tzinfo=tz)
        schedules = await self.emishows.schedule(
            midnight, next_midnight, where={"id": str(event.id)}
        )
        if not schedules:
            raise ScheduleNotFound(event.id)
        for instance in schedules[0].instances:
            if instance.start == start:
                return instance
        raise InstanceNotFound(event.id, start)

    async def locate(self, parameters: StreamParameters) -> tuple[Event, ZoneInfo, Instance]:
        """The event and instance a stream task names, as its run finds them (step 1).

        Raises: EventNotFound, ScheduleNotFound, InstanceNotFound, NeighbourError.
        """
        event = await self.emishows.event(parameters.id)
        if event is None:
            raise EventNotFound(parameters.id)
        tz = _event_zone(event)
        return event, tz, await self._instance(event, tz, parameters.start)

    def prefetched(self, event: UUID, start: datetime) -> Path:
        """Where a readiness check keeps the recording of an instance until its broadcast
        (`onair.operations.readiness`); its source is described beside it (`.json`)."""
        return self.settings.cache / "prefetch" / f"{event}_{start:%Y%m%dT%H%M%S}.ogg"

    async def prefetch(self, event: Event, tz: ZoneInfo, instance: Instance) -> Path:
        """Download the instance's recording ahead (step 2), unless it already was: into a
        temporary file first, then renamed, so that a broadcast never takes half a file.

        Raises: NoDownload, NeighbourError.
        """
        path = self.prefetched(event.id, instance.start)
        if await self._kept_source(path) == await self._find(event, tz, instance):
            return path  # a newer recording replaces it: a live show may air after the lead
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        try:
            source = await self._download(event, tz, instance, partial)
            await anyio.Path(partial).replace(path)
        finally:
            with contextlib.suppress(OSError):
                await anyio.Path(partial).unlink(missing_ok=True)
        about = {
            "service": source.service,
            "event": str(source.event),
            "start": source.start.isoformat(),
            "size": source.download.size,
        }
        await anyio.Path(path.with_suffix(".json")).write_text(json.dumps(about))
        with contextlib.suppress(OSError):  # an analysis of the file it replaced
            await anyio.Path(analysis_path(path)).unlink(missing_ok=True)
        return path

    async def source(self, event: Event, tz: ZoneInfo, instance: Instance) -> str:
        """Where the broadcast's recording is now, in words (`emirecords event … at …`),
        without downloading it.

        Raises: NoDownload, NeighbourError.
        """
        service, source, start = await self._find(event, tz, instance)
        return f"{service} event {source} at {start.isoformat()}"

    async def _kept_source(self, path: Path) -> tuple[str, UUID, datetime] | None:
        """The source of a prefetched recording, when the file and its description are there."""
        try:
            about = json.loads(await anyio.Path(path.with_suffix(".json")).read_text())
            if not await anyio.Path(path).exists():
                return None
            return about["service"], UUID(about["event"]), datetime.fromisoformat(about["start"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    async def _take_prefetched(
        self, event: Event, tz: ZoneInfo, instance: Instance, destination: Path
    ) -> _Source | None:
        """The prefetched recording, moved to `destination` (this run's), or None when there
        is none or a newer recording has replaced its source since."""
        path = self.prefetched(event.id, instance.start)
        kept = await self._kept_source(path)
        if kept is None:
            return None
        found = await self._find(event, tz, instance)
        leftovers = [path.with_suffix(".json"), analysis_path(path)]
        try:
            if found != kept:
                leftovers.append(path)
                return None
            size = (await anyio.Path(path).stat()).st_size
            await anyio.Path(path).replace(destination)
        except OSError:
            return None
        finally:
            for leftover in leftovers:
                with contextlib.suppress(OSError):
                    await anyio.Path(leftover).unlink(missing_ok=True)
        download = Download(destination, size, "audio/ogg", "", datetime.now(UTC))
        return _Source(found[0], found[1], found[2], download)

    def _destination(self, event: UUID, start: datetime, context: RunContext) -> Path:
        """A file of this run alone, so that two runs for one instance never share a file."""
        return self.settings.cache / f"{event}_{start:%Y%m%dT%H%M%S}_{context.run_id}.ogg"

    async def _download(
        self, event: Event, tz: ZoneInfo, instance: Instance, destination: Path
    ) -> _Source:
        service, source, start = await self._find(event, tz, instance)
        client = self.emirecords if service == "emirecords" else self.emilounge
        assert client is not None
        download = await client.download(source, start, destination)
        return _Source(service, source, start, download)

    async def _find(
        self, event: Event, tz: ZoneInfo, instance: Instance
    ) -> tuple[str, UUID, datetime]:
        """Which recording a broadcast of `instance` plays: (service, event, start) there."""
        if event.type == "prerecorded":
            return await self._prerecording(event, instance)
        return await self._recording(event, tz, instance)

    async def _prerecording(self, event: Event, instance: Instance) -> tuple[str, UUID, datetime]:
        if self.emilounge is None:
            raise NoDownload(event.id, instance.start, " (no emilounge is configured)")
        second = timedelta(seconds=1)
        found = await self.emilounge.list_recordings(
            event.id, after=instance.start - second, before=instance.end + second
        )
        if not any(item.start == instance.start for item in found):
            raise NoDownload(event.id, instance.start)
        return "emilounge", event.id, instance.start

    async def _recording(
        self, event: Event, tz: ZoneInfo, instance: Instance
    ) -> tuple[str, UUID, datetime]:
        """The latest recording of a live event of the same show in `window` before the start."""
        until = as_utc(instance.start, tz)
        since = until - self.settings.window
        lives = await self.emishows.schedule(
            since, until, where={"showId": str(event.show_id), "type": "live"}
        )
        best: tuple[datetime, Record] | None = None
        for live in lives:
            live_tz = _event_zone(live.event)
            starts = {i.start for i in live.instances}
            records = await self.emirecords.list_recordings(
                live.event.id,
                after=_wall(since, live_tz),
                before=_wall(until, live_tz),
            )
            for record in records:
                if record.start not in starts:
                    continue
                instant = as_utc(record.start, live_tz)
                if best is None or instant > best[0]:
                    best = (instant, record)
        if best is None:
            raise NoDownload(event.id, instance.start)
        record = best[1]
        return "emirecords", record.event, record.start

    async def _reserve(self, event: UUID, context: RunContext) -> Reservation:
        """emistream's slot, waiting while it is busy until `timeout` after the first try.

        Each try subscribes to emistream's events before it asks, so that the slot being freed
        while a 409 is retried is seen, and the wait that follows returns at once.
        """
        deadline = context.clock.now() + self.settings.timeout
        while True:
            async with self.emistream.subscribe() as events:
                answer = await self.emistream.reserve(event)
                if isinstance(answer, Reservation):
                    return answer
                left = (deadline - context.clock.now()).total_seconds()
                context.logger.info(
                    "stream %s: emistream is busy (%s); waiting up to %.0f s",
                    event,
                    answer.detail,
                    left,
                )
                if left <= 0:
                    raise ReservationDeadlinePassed(event, deadline, answer.detail)
                try:
                    async with asyncio.timeout(left):
                        await events.availability()
                except TimeoutError:
                    raise ReservationDeadlinePassed(event, deadline, answer.detail) from None


def _parameters(parameters: Any) -> StreamParameters:
    if isinstance(parameters, StreamParameters):
        return parameters
    try:
        return StreamParameters.model_validate(parameters)
    except ValidationError as error:
        raise StreamError(str(error)) from None


def _event_zone(event: Event) -> ZoneInfo:
    try:
        return zone(event.timezone)
    except ValueError as error:
        raise StreamError(f"Event {event.id} has an unknown time zone: {error}.") from None


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """`instant` as naive wall time in `tz`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _instant(started: datetime, start: float, progress: Progress) -> datetime | None:
    """The first packet's instant by the run's clock, which read `started` when the monotonic
    clock read `start`."""
    if progress.first_output is None:
        return None
    return started + timedelta(seconds=progress.first_output - start)


def _seconds(first_audio: datetime | None, now: datetime) -> float:
    """Seconds aired: from the first packet to now (0 when none left)."""
    return 0.0 if first_audio is None else max((now - first_audio).total_seconds(), 0.0)


async def _resolve(host: str) -> str:
    try:
        return await asyncio.to_thread(socket.gethostbyname, host)
    except OSError as error:
        raise SrtHostUnresolved(host, error) from error

"""The `stream` operation end to end, in compressed time: the fake neighbours over HTTP, a real
ffmpeg streaming over SRT, and a real ffmpeg SRT listener standing in for emistream's ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import subprocess
import uuid
from array import array
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import pytest

from onair.broadcast.clients import Emilounge, Emirecords, Emishows, Emistream
from onair.broadcast.models import StreamParameters
from onair.config import StreamSettings
from onair.engine.registry import Registry, RunContext
from onair.errors import OperationError
from onair.ffmpeg import FfmpegFailed, ffmpeg_path
from onair.operations.stream import (
    EventNotFound,
    InstanceEnded,
    InstanceNotFound,
    NoDownload,
    ReservationDeadlinePassed,
    ScheduleNotFound,
    Stream,
    StreamError,
    UnexpectedEventType,
)
from onair.timeutil import SystemClock
from tests.fakes import FakeEvent, Logged, Neighbours, neighbour_settings, served_neighbours
from tests.fakes.server import Fault

FAST = (0.01, 0.02, 0.04)
WARSAW = ZoneInfo("Europe/Warsaw")
TOKEN = "0123456789abcdef" * 2
RECORDING_SECONDS = 3.0


def _encode(path: Path, seconds: float) -> bytes:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-c:a", "libvorbis", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _encode(tmp_path_factory.mktemp("recording") / "sine.ogg", RECORDING_SECONDS)


@pytest.fixture(scope="module")
def long_recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _encode(tmp_path_factory.mktemp("recording") / "long.ogg", 30)


@pytest.fixture
def fakes() -> Iterator[Neighbours]:
    with served_neighbours() as neighbours:
        neighbours.emistream.next_token = TOKEN
        yield neighbours


@dataclass
class Clients:
    emishows: Emishows
    emirecords: Emirecords
    emilounge: Emilounge
    emistream: Emistream


@pytest.fixture
async def clients(fakes: Neighbours) -> AsyncIterator[Clients]:
    async with (
        Emishows(fakes.settings("emishows"), retry_delays=FAST) as emishows,
        Emirecords(fakes.settings("emirecords"), retry_delays=FAST) as emirecords,
        Emilounge(fakes.settings("emilounge"), retry_delays=FAST) as emilounge,
        Emistream(fakes.emistream_settings(), retry_delays=FAST) as emistream,
    ):
        yield Clients(emishows, emirecords, emilounge, emistream)


def make_stream(clients: Clients, fakes: Neighbours, cache: Path, **settings: Any) -> Stream:
    return Stream(
        clients.emishows,
        clients.emirecords,
        clients.emilounge,
        clients.emistream,
        StreamSettings(cache=cache, **settings),
        "localhost",
        fakes.emistream.srt_port,
    )


def context() -> RunContext:
    now = datetime.now(UTC)
    return RunContext(
        task_id=uuid.uuid4(), run_id=uuid.uuid4(), due=now, attempt=1, owner=None,
        clock=SystemClock(),
    )  # fmt: skip


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _ahead(seconds: float) -> tuple[datetime, datetime]:
    """An instant `seconds` ahead on a whole second: (aware UTC, naive wall time in Warsaw)."""
    utc = (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    return utc, utc.astimezone(WARSAW).replace(tzinfo=None)


@dataclass
class Replay:
    event: FakeEvent
    live: FakeEvent
    start: datetime
    start_utc: datetime


def replay_with_recordings(fakes: Neighbours, recording: bytes, seconds_ahead: float) -> Replay:
    """A replay starting `seconds_ahead`, and a live event of its show with a recording of its
    latest instance (yesterday). An older instance and a start outside the schedule have
    recordings too, which must not be picked."""
    start_utc, start = _ahead(seconds_ahead)
    hour = timedelta(hours=1)
    show = uuid.uuid4()
    replay = fakes.emishows.add_event(start, start + hour, type="replay", show_id=show)
    days = [start - timedelta(days=d) for d in (2, 1)]
    live = fakes.emishows.add_event(
        days[0], days[0] + hour, type="live", show_id=show, instances=[(d, d + hour) for d in days]
    )
    fakes.emirecords.add(live.id, days[0], b"older recording")
    fakes.emirecords.add(live.id, start - timedelta(hours=12), b"not an instance")
    fakes.emirecords.add(live.id, days[1], recording)
    return Replay(replay, live, start, start_utc)


class Listener:
    """A real ffmpeg SRT listener writing what it receives to `out`."""

    def __init__(self, port: int, token: str, out: Path) -> None:
        self.port, self.token, self.out = port, token, out
        self.connected = asyncio.Event()
        self.lines: list[str] = []

    async def __aenter__(self) -> Listener:
        self.process = await asyncio.create_subprocess_exec(
            ffmpeg_path(), "-hide_banner", "-nostdin", "-nostats", "-y", "-mode", "listener",
            "-passphrase", self.token, "-i", f"srt://127.0.0.1:{self.port}", "-c", "copy",
            str(self.out),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if line.startswith("Input #0"):  # a caller connected and sent Ogg
                self.connected.set()

    async def finished(self) -> None:
        await self.process.wait()
        await self._reader

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def duration(path: Path) -> float:
    """Seconds of audio in `path`, as ffmpeg decodes it."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg_path(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "null", "-",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    hours, minutes, seconds = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", err.decode())[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def streaming_ffmpegs() -> list[psutil.Process]:
    """This process's ffmpeg children that send (the test's own listener excluded)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            cmdline = child.cmdline()
            if any("srt://" in a for a in cmdline) and "listener" not in cmdline:
                found.append(child)
    return found


def _exactly(requests: list[Logged], path: str) -> list[Logged]:
    return [r for r in requests if r.path == path]


def _utc(naive_utc: str) -> datetime:
    return datetime.fromisoformat(naive_utc).replace(tzinfo=UTC)


# -- the broadcast --


async def test_replay_is_reserved_at_minus_10s_and_streamed_from_minus_1s(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, recording, seconds_ahead=15)
    stream = make_stream(clients, fakes, tmp_path / "cache")  # default 10 s and 1 s
    out = tmp_path / "received.ogg"

    async with Listener(fakes.emistream.srt_port, TOKEN, out) as listener, asyncio.timeout(40):
        result = await stream.run(
            {"id": str(replay.event.id), "start": replay.start.isoformat()}, {}, context()
        )
        await listener.finished()

    assert result == {
        "event": str(replay.event.id),
        "start": replay.start.isoformat(),
        "source": {
            "service": "emirecords",
            "event": str(replay.live.id),
            "start": (replay.start - timedelta(days=1)).isoformat(),
        },
        "bytes": len(recording),
        "reserved": result["reserved"],
        "started": result["started"],
        "finished": result["finished"],
        "first_audio": result["first_audio"],
        "late_start": {
            "policy": "join",
            "grace_seconds": 1.0,
            "lateness_seconds": result["late_start"]["lateness_seconds"],
            "action": "on_time",
            "offset_seconds": 0.0,
        },
    }
    assert abs(result["late_start"]["lateness_seconds"]) < 1.0
    # The first packet left within a few tenths of a second of ffmpeg's start.
    sent = (_utc(result["first_audio"]) - _utc(result["started"])).total_seconds()
    assert 0 < sent < 0.5
    (reserved,) = fakes.emistream.reservations
    assert re.fullmatch(r"[0-9a-f]{32}", reserved.token)
    assert (reserved.at - replay.start_utc).total_seconds() == pytest.approx(-10, abs=1.5)
    assert (_utc(result["started"]) - replay.start_utc).total_seconds() == pytest.approx(-1, abs=1)
    assert await duration(out) == pytest.approx(RECORDING_SECONDS, abs=0.5)
    assert _files(tmp_path / "cache") == []
    # The look-back is in UTC on emishows and in the live event's zone on emirecords.
    lookback = [
        r for r in fakes.emishows.logged("GET", "/schedule") if "showId" in r.query["where"]
    ]
    assert lookback[0].query["end"] == replay.start_utc.replace(tzinfo=None).isoformat()
    assert (
        lookback[0].query["start"]
        == (replay.start_utc - timedelta(days=60)).replace(tzinfo=None).isoformat()
    )
    (records,) = _exactly(fakes.emirecords.logged("GET"), f"/records/{replay.live.id}")
    assert records.query["before"] == replay.start.isoformat()


async def _frequency(path: Path, skip: float = 0.2) -> float:
    """The tone's frequency in `path` (Hz), from zero crossings after `skip` seconds."""
    process = await asyncio.create_subprocess_exec(
        ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-ss", f"{skip}",
        "-ac", "1", "-ar", "8000", "-f", "s16le", "-",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    raw, _ = await process.communicate()
    samples = array("h", raw)
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / 8000)


@pytest.fixture(scope="module")
def two_tones(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """7 s: 440 Hz for 2 s, then 880 Hz."""
    path = tmp_path_factory.mktemp("recording") / "two-tones.ogg"
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         "sine=frequency=440:duration=2[a];sine=frequency=880:duration=5[b];[a][b]concat=v=0:a=1",
         "-c:a", "libvorbis", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


async def test_a_late_broadcast_joins_the_recording_and_ends_with_its_slot(
    fakes: Neighbours, clients: Clients, two_tones: bytes, tmp_path: Path
) -> None:
    """The download is slowed by 3.5 s, so ffmpeg starts about 3 s late: the listener hears the
    recording from 3 s in (its second half, at 880 Hz) and the broadcast ends with the slot."""
    start_utc, start = _ahead(1.0)
    slot = timedelta(seconds=6.5)  # the recording's 7 s, less the 0.5 s ffmpeg starts early
    show = uuid.uuid4()
    replay = fakes.emishows.add_event(start, start + slot, type="replay", show_id=show)
    day = start - timedelta(days=1)
    live = fakes.emishows.add_event(day, day + slot, type="live", show_id=show)
    fakes.emirecords.add(live.id, day, two_tones)
    fakes.emirecords.inject(Fault(path=f"/records/{live.id}/", delay=3.5))
    patient = Emirecords(fakes.settings("emirecords", timedelta(seconds=10)), retry_delays=FAST)
    stream = make_stream(
        replace(clients, emirecords=patient), fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=0.8), start_before=timedelta(seconds=0.5),
    )  # fmt: skip
    out = tmp_path / "joined.ogg"

    async with (
        patient,
        Listener(fakes.emistream.srt_port, TOKEN, out) as listener,
        asyncio.timeout(30),
    ):
        result = await stream.run({"id": str(replay.id), "start": start.isoformat()}, {}, context())
        await listener.finished()

    late = result["late_start"]
    assert (late["policy"], late["action"]) == ("join", "joined")
    assert 2.5 <= late["offset_seconds"] <= 5.5  # 4.501 once, on a loaded machine
    assert late["offset_seconds"] == late["lateness_seconds"]
    finished = _utc(result["finished"])
    assert abs((finished - (start_utc + slot)).total_seconds()) < 1.0
    heard = await duration(out)
    assert heard == pytest.approx(7.0 - late["offset_seconds"], abs=0.7)
    assert await _frequency(out) == pytest.approx(880, rel=0.05)


async def test_a_busy_stream_is_reserved_after_emistream_announces_it_free(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, recording, seconds_ahead=4)
    stream = make_stream(
        clients, fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=2), start_before=timedelta(seconds=0.5),
    )  # fmt: skip
    other = uuid.uuid4()
    fakes.emistream.occupy(other)

    def refused_four_times_and_listening() -> bool:
        statuses = [r.status for r in fakes.emistream.logged("POST", "/reserve")]
        return statuses == [409] * 4 and fakes.emistream.subscribers() == 1

    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "r.ogg") as listener:
        async with asyncio.timeout(30):
            run = asyncio.create_task(
                stream.run(
                    {"id": str(replay.event.id), "start": replay.start.isoformat()}, {}, context()
                )
            )
            await fakes.emistream.wait_for(refused_four_times_and_listening)
            fakes.emistream.free()
            result = await run
            await listener.finished()

    assert [r.status for r in fakes.emistream.logged("POST", "/reserve")] == [409] * 4 + [201]
    assert len(fakes.emistream.logged("GET", "/sse")) == 2
    assert [r.event for r in fakes.emistream.reservations] == [replay.event.id]
    assert result["bytes"] == len(recording)
    assert await duration(tmp_path / "r.ogg") == pytest.approx(RECORDING_SECONDS, abs=0.5)


async def test_prerecorded_comes_from_emilounge(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    start_utc, start = _ahead(2)
    event = fakes.emishows.add_event(start, start + timedelta(hours=1), type="prerecorded")
    fakes.emilounge.add(event.id, start, recording)
    stream = make_stream(
        clients, fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=1), start_before=timedelta(seconds=0.5),
    )  # fmt: skip

    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "p.ogg") as listener:
        async with asyncio.timeout(30):
            result = await stream.run(
                {"id": str(event.id), "start": start.isoformat()}, {}, context()
            )
            await listener.finished()

    assert result["source"] == {
        "service": "emilounge",
        "event": str(event.id),
        "start": start.isoformat(),
    }
    (listing,) = _exactly(fakes.emilounge.logged("GET"), f"/prerecordings/{event.id}")
    assert (listing.query["after"], listing.query["before"]) == (
        (start - timedelta(seconds=1)).isoformat(),
        (start + timedelta(hours=1, seconds=1)).isoformat(),
    )
    assert await duration(tmp_path / "p.ogg") == pytest.approx(RECORDING_SECONDS, abs=0.5)
    assert _files(tmp_path / "cache") == []


async def test_cancel_while_streaming_stops_ffmpeg_and_removes_the_file(
    fakes: Neighbours, clients: Clients, long_recording: bytes, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, long_recording, seconds_ahead=1.5)
    stream = make_stream(
        clients, fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=1), start_before=timedelta(seconds=0.5),
    )  # fmt: skip

    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "c.ogg") as listener:
        run = asyncio.create_task(
            stream.run(
                {"id": str(replay.event.id), "start": replay.start.isoformat()}, {}, context()
            )
        )
        async with asyncio.timeout(15):
            await listener.connected.wait()
        assert len(streaming_ffmpegs()) == 1
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    assert streaming_ffmpegs() == []
    assert _files(tmp_path / "cache") == []


# -- every named failure --


async def _fails(stream: Stream, parameters: dict[str, Any]) -> OperationError:
    async with asyncio.timeout(20):
        with pytest.raises(OperationError) as raised:
            await stream.run(parameters, {}, context())
    return raised.value


async def test_unknown_event(fakes: Neighbours, clients: Clients, tmp_path: Path) -> None:
    missing = uuid.uuid4()
    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(missing), "start": "2026-11-23T20:00:00"}
    )

    assert isinstance(error, EventNotFound)
    assert str(error) == f"No event found for id {missing}."


async def test_no_schedule_on_that_day(fakes: Neighbours, clients: Clients, tmp_path: Path) -> None:
    _, start = _ahead(3600)
    event = fakes.emishows.add_event(start, start + timedelta(hours=1))
    other_day = start - timedelta(days=3)

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": other_day.isoformat()}
    )

    assert isinstance(error, ScheduleNotFound)
    assert str(error) == f"No schedule found for event {event.id}."


async def test_no_instance_at_that_start(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    _, start = _ahead(3600)
    event = fakes.emishows.add_event(start, start + timedelta(hours=1))
    wrong = start.replace(second=(start.second + 1) % 60)

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": wrong.isoformat()}
    )

    assert isinstance(error, InstanceNotFound)
    assert str(error) == f"No instance found for event {event.id} and start {wrong.isoformat()}."


async def test_the_last_hour_of_a_25_hour_day_is_found(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    """Warsaw falls back on 2025-10-26: that local day is 25 h long, 22:00 to 23:00 UTC."""
    start = datetime(2025, 10, 26, 23, 30)
    event = fakes.emishows.add_event(start, start + timedelta(minutes=15))

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": start.isoformat()}
    )

    assert isinstance(error, InstanceEnded)  # found, and then refused as past
    (day,) = fakes.emishows.logged("GET", "/schedule")
    assert (day.query["start"], day.query["end"]) == ("2025-10-25T22:00:00", "2025-10-26T23:00:00")
    assert day.query["where"] == f'{{"id":"{event.id}"}}'


async def test_live_events_are_not_streamed(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    _, start = _ahead(3600)
    event = fakes.emishows.add_event(start, start + timedelta(hours=1), type="live")

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": start.isoformat()}
    )

    assert isinstance(error, UnexpectedEventType)
    assert str(error) == f"Event {event.id} has unexpected type live."


async def test_an_ended_instance_is_not_streamed(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    _, start = _ahead(-2 * 3600)
    end = start + timedelta(hours=1)
    event = fakes.emishows.add_event(start, end)

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": start.isoformat()}
    )

    assert isinstance(error, InstanceEnded)
    assert str(error) == (
        f"Instance for event {event.id} and start {start.isoformat()} "
        f"has already ended at {end.isoformat()}."
    )


async def test_a_replay_without_a_recording(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    _, start = _ahead(3600)
    event = fakes.emishows.add_event(start, start + timedelta(hours=1))
    fakes.emishows.add_event(  # a live event of another show, with a recording
        start - timedelta(days=1), start - timedelta(hours=23), type="live"
    )

    error = await _fails(
        make_stream(clients, fakes, tmp_path), {"id": str(event.id), "start": start.isoformat()}
    )

    assert isinstance(error, NoDownload)
    assert (
        str(error) == f"No download available for event {event.id} and start {start.isoformat()}."
    )


async def test_an_unreachable_neighbour(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    async with Emishows(neighbour_settings("http://127.0.0.1:9"), retry_delays=FAST) as dead:
        stream = make_stream(clients, fakes, tmp_path)
        stream.emishows = dead
        error = await _fails(stream, {"id": str(uuid.uuid4()), "start": "2026-11-23T20:00:00"})

    assert str(error).startswith("emishows is unreachable: GET /events/")


async def test_the_reservation_deadline(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, recording, seconds_ahead=30)
    stream = make_stream(  # reserving 60 s ahead of a start 30 s away: at once
        clients, fakes, tmp_path / "cache",
        timeout=timedelta(seconds=0.5), reserve_before=timedelta(seconds=60),
    )  # fmt: skip
    fakes.emistream.occupy(uuid.uuid4())

    error = await _fails(stream, {"id": str(replay.event.id), "start": replay.start.isoformat()})

    assert isinstance(error, ReservationDeadlinePassed)
    assert str(error).startswith(
        f"Reservation deadline passed for event {replay.event.id}: emistream was still busy at "
    )
    assert {r.status for r in fakes.emistream.logged("POST", "/reserve")} == {409}
    assert _files(tmp_path / "cache") == []


async def test_ffmpeg_failing_fails_the_run_and_removes_the_file(
    fakes: Neighbours, clients: Clients, tmp_path: Path
) -> None:
    replay = replay_with_recordings(fakes, b"this is not Ogg at all", seconds_ahead=1)

    error = await _fails(
        make_stream(clients, fakes, tmp_path / "cache"),
        {"id": str(replay.event.id), "start": replay.start.isoformat()},
    )

    assert isinstance(error, FfmpegFailed)
    assert str(error).startswith("ffmpeg exited with code")
    assert _files(tmp_path / "cache") == []
    assert streaming_ffmpegs() == []


async def test_malformed_parameters(fakes: Neighbours, clients: Clients, tmp_path: Path) -> None:
    error = await _fails(make_stream(clients, fakes, tmp_path), {"id": "nope"})

    assert isinstance(error, StreamError)
    assert "2 validation errors for StreamParameters" in str(error)


def test_the_operation_plugs_into_the_registry(tmp_path: Path) -> None:
    registry = Registry([Stream])  # type: ignore[list-item]

    parsed = registry.parameters(
        "stream", {"id": str(uuid.UUID(int=1)), "start": "2026-11-23T20:00:00"}, "operation"
    )

    assert parsed == StreamParameters(id=uuid.UUID(int=1), start=datetime(2026, 11, 23, 20))
    assert Stream.policy.misfire_grace is None
    assert (Stream.policy.retry.attempts, Stream.policy.retry.backoff) == (3, timedelta(seconds=5))

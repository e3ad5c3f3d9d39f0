"""Readiness before air, against the contract fakes and real ffmpeg, on SQLite and PostgreSQL:
three upcoming broadcasts (a recording with a long silence, one too long for its slot, one
missing) each go `at_risk` with the right reason at their first lead, a webhook receiver gets
one signed alert per problem, and a ready broadcast's recording is prefetched and then taken by
its stream run instead of a second download."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from onair.audio.asrun import AsRun
from onair.broadcast.models import StreamParameters
from onair.config import AlertsSettings, ReadinessSettings
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec
from onair.engine.registry import Registry
from onair.ffmpeg import ffmpeg_path
from onair.operations.readiness import (
    CheckBroadcast,
    CheckParameters,
    ReadinessPlanner,
    check_id,
    upcoming,
)
from onair.operations.test import Test
from onair.operations.webhook import Alerter, DeliverWebhook
from onair.store.database import Store
from tests.fakes import Neighbours
from tests.fakes.server import serve
from tests.fakes.webhooks import FakeReceiver
from tests.integration.test_alerts import SECRET, delivered, verified
from tests.integration.test_stream_operation import (
    TOKEN,
    WARSAW,
    Clients,
    Listener,
    clients,
    context,
    fakes,
    make_stream,
    recording,
)

__all__ = ["clients", "fakes", "recording"]

STREAM_LEAD = timedelta(minutes=30)
START_IN = timedelta(hours=1)
FIRST_LEAD = START_IN - timedelta(seconds=1.5)
"""The first check is due 1.5 s after the broadcasts are planned; the second in 20 minutes."""


def _encode(path: Path, graph: str) -> bytes:
    subprocess.run(
        [ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", graph,
         "-c:a", "libvorbis", str(path)],
        check=True,
    )  # fmt: skip
    return path.read_bytes()


@pytest.fixture(scope="module")
def silent_middle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """8 s: a tone, 4 s of silence, a tone."""
    graph = (
        "sine=duration=2[a];anullsrc=d=4:r=44100:cl=mono[b];sine=duration=2[c];"
        "[a][b][c]concat=n=3:v=0:a=1"
    )
    return _encode(tmp_path_factory.mktemp("r") / "silent.ogg", graph)


@pytest.fixture(scope="module")
def eight_seconds(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _encode(tmp_path_factory.mktemp("r") / "eight.ogg", "sine=duration=8")


def replay(fakes: Neighbours, start: datetime, slot: timedelta, audio: bytes | None) -> Any:
    """A replay at `start` (aware UTC) and a live instance of its show the day before with the
    recording `audio` (none: nothing recorded)."""
    local = start.astimezone(WARSAW).replace(tzinfo=None)
    show = uuid.uuid4()
    event = fakes.emishows.add_event(local, local + slot, type="replay", show_id=show)
    day = local - timedelta(days=1)
    live = fakes.emishows.add_event(day, day + slot, type="live", show_id=show)
    if audio is not None:
        fakes.emirecords.add(live.id, day, audio)
    return event, local


async def test_each_broadcast_at_risk_gets_its_reason_and_one_signed_alert(
    fakes: Neighbours,
    clients: Clients,
    store: Store,
    silent_middle: bytes,
    eight_seconds: bytes,
    tmp_path: Path,
) -> None:
    receiver = FakeReceiver()
    start = (datetime.now(UTC) + START_IN).replace(microsecond=0)
    eight = timedelta(seconds=8)
    silent, silent_start = replay(fakes, start, eight, silent_middle)
    long, long_start = replay(fakes, start, timedelta(seconds=4), eight_seconds)
    missing, missing_start = replay(fakes, start, eight, None)
    readiness = ReadinessSettings(
        leads=[FIRST_LEAD, timedelta(minutes=40)],
        duration_tolerance=timedelta(seconds=1),
        max_silence=timedelta(seconds=2),
    )
    stream = make_stream(clients, fakes, tmp_path / "cache")
    verdicts: list[dict[str, Any]] = []

    def heard(event: Event) -> None:
        if event.kind == "readiness" and event.data is not None:
            verdicts.append(dict(event.data))

    with serve(receiver):
        hook = {"url": f"{receiver.url}/hook", "secret": SECRET, "alerts": ["at_risk"]}
        alerts = AlertsSettings.model_validate({"webhooks": {"ops": hook}})
        registry = Registry([Test(), DeliverWebhook(alerts), stream])
        async with Engine(store, registry) as engine:
            registry.add(CheckBroadcast(stream, readiness, engine))
            engine.events.subscribe(heard)
            async with (
                Alerter(engine, AsRun(), alerts),
                ReadinessPlanner(engine, readiness, STREAM_LEAD) as planner,
            ):
                tasks = {}
                for event, local in ((silent, silent_start), (long, long_start),
                                     (missing, missing_start)):  # fmt: skip
                    params = StreamParameters(id=event.id, start=local)
                    task = await engine.add(
                        NewTask(
                            Spec("stream", params.model_dump(mode="json")),
                            Spec("at", {"datetime": (start - STREAM_LEAD).isoformat()}),
                        )
                    )
                    tasks[event.id] = task.id
                received = await delivered(receiver, 3, within=30)
                await asyncio.wait_for(_until(lambda: len(verdicts) >= 3), 10)
                second = await engine.get(check_id(tasks[silent.id], timedelta(minutes=40)))
                assert second.status.value == "pending"
                assert second.next_at == start - timedelta(minutes=40)
                assert not planner._pending
                board = await upcoming(engine)
                # A check after the broadcast's run has started (10 min ahead, its run 30 min
                # ahead): it sees the recording is still there, downloads nothing, keeps what
                # only the file could tell, and raises nothing new.
                late = await CheckBroadcast(stream, readiness, engine, STREAM_LEAD).run(
                    CheckParameters(
                        id=silent.id,
                        start=silent_start,
                        lead_seconds=600,
                        previous=check_id(tasks[silent.id], FIRST_LEAD),
                    ),
                    {},
                    context(),
                )

    assert (late["state"], [r["check"] for r in late["reasons"]], late["new"]) == (
        "at_risk", ["silence"], [])  # fmt: skip
    assert late["recording"] is None

    # Each upcoming broadcast's state, as GET /readiness answers it.
    states = sorted((b["event"], b["state"], [r["check"] for r in b["reasons"]]) for b in board)
    assert states == sorted([
        (str(silent.id), "at_risk", ["silence"]),
        (str(long.id), "at_risk", ["duration"]),
        (str(missing.id), "at_risk", ["recording"]),
    ])  # fmt: skip
    assert all(b["lead_seconds"] == FIRST_LEAD.total_seconds() for b in board)

    verdicts = [v for v in verdicts if v["lead_seconds"] == FIRST_LEAD.total_seconds()]
    by_event = {v["event"]: v for v in verdicts}
    assert {e: [r["check"] for r in v["reasons"]] for e, v in by_event.items()} == {
        str(silent.id): ["silence"],
        str(long.id): ["duration"],
        str(missing.id): ["recording"],
    }
    assert all(v["state"] == "at_risk" and v["new"] == v["reasons"] for v in verdicts)
    assert by_event[str(silent.id)]["reasons"][0]["message"].startswith(
        "The recording is silent for 4.0 s from 2.0 s"
    )
    assert by_event[str(long.id)]["recording"]["slot_seconds"] == 4.0
    assert by_event[str(missing.id)]["recording"] is None
    # The first lead prefetched the recordings it found, kept for the broadcasts.
    # and their analyses, for the later leads.
    kept = sorted(p.name for p in (tmp_path / "cache" / "prefetch").iterdir())
    stem = {str(silent.id): silent_start, str(long.id): long_start}
    assert kept == sorted(
        f"{event}_{start:%Y%m%dT%H%M%S}{suffix}"
        for event, start in stem.items()
        for suffix in (".ogg", ".json", ".analysis.json")
    )
    # One signed alert per problem, each naming its broadcast and reason.
    got = sorted(
        (a["detail"]["event"], a["detail"]["reason"]["check"]) for a in map(verified, received)
    )
    assert got == sorted([
        (str(silent.id), "silence"), (str(long.id), "duration"), (str(missing.id), "recording"),
    ])  # fmt: skip
    assert len(receiver.deliveries()) == 3


async def _until(done: Any) -> None:
    while not done():
        await asyncio.sleep(0.02)


async def test_a_prefetched_recording_is_taken_by_the_broadcast(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    event, local = replay(fakes, start, timedelta(hours=1), recording)
    stream = make_stream(
        clients, fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=1), start_before=timedelta(seconds=0.5),
    )  # fmt: skip
    found = await stream.locate(StreamParameters(id=event.id, start=local))
    path = await stream.prefetch(*found)
    assert path.read_bytes() == recording
    assert await stream.prefetch(*found) == path  # kept: not downloaded again
    downloads = [r for r in fakes.emirecords.logged("GET") if r.path.count("/") == 3]
    assert len(downloads) == 1

    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "r.ogg") as listener:
        async with asyncio.timeout(20):
            result = await stream.run(
                {"id": str(event.id), "start": local.isoformat()}, {}, context()
            )
            await listener.finished()

    assert result["bytes"] == len(recording)
    assert result["source"]["service"] == "emirecords"
    downloads = [r for r in fakes.emirecords.logged("GET") if r.path.count("/") == 3]
    assert len(downloads) == 1  # the run took the prefetched file
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


async def test_a_newer_recording_replaces_the_prefetched_one(
    fakes: Neighbours, clients: Clients, recording: bytes, tmp_path: Path
) -> None:
    """Prefetched a day ahead, a replay may have a newer live show before it airs: the later
    check and the broadcast take the newer recording."""
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    local = start.astimezone(WARSAW).replace(tzinfo=None)
    hour = timedelta(hours=1)
    show = uuid.uuid4()
    event = fakes.emishows.add_event(local, local + hour, type="replay", show_id=show)
    days = [local - timedelta(days=2), local - timedelta(hours=3)]
    live = fakes.emishows.add_event(
        days[0], days[0] + hour, type="live", show_id=show, instances=[(d, d + hour) for d in days]
    )
    fakes.emirecords.add(live.id, days[0], b"the older show")
    stream = make_stream(
        clients, fakes, tmp_path / "cache",
        reserve_before=timedelta(seconds=1), start_before=timedelta(seconds=0.5),
    )  # fmt: skip
    found = await stream.locate(StreamParameters(id=event.id, start=local))
    path = await stream.prefetch(*found)
    assert path.read_bytes() == b"the older show"

    fakes.emirecords.add(live.id, days[1], recording)  # the newer show was recorded
    assert (await stream.prefetch(*found)).read_bytes() == recording
    async with Listener(fakes.emistream.srt_port, TOKEN, tmp_path / "r.ogg") as listener:
        async with asyncio.timeout(20):
            result = await stream.run(
                {"id": str(event.id), "start": local.isoformat()}, {}, context()
            )
            await listener.finished()
    assert (result["source"]["start"], result["bytes"]) == (days[1].isoformat(), len(recording))
    downloads = [r for r in fakes.emirecords.logged("GET") if r.path.count("/") == 3]
    assert len(downloads) == 2  # the older, then the newer; the broadcast took the newer one

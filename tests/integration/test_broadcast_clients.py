"""The neighbours' clients against the contract-faithful fakes, over real HTTP.

Retry delays are scaled down (the pattern's shape is asserted on its own, with 0.1/0.2/0.4 s).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from onair.broadcast.clients import (
    Busy,
    DownloadFailed,
    Emilounge,
    Emirecords,
    Emishows,
    Emistream,
    NeighbourRefused,
    NeighbourUnreachable,
    UnexpectedAnswer,
)
from onair.broadcast.models import Reservation
from tests.fakes import Fault, Neighbours, neighbour_settings, served_neighbours

FAST = (0.01, 0.02, 0.04)
LOCAL = datetime(2026, 11, 23, 20, 0)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def fakes() -> Iterator[Neighbours]:
    with served_neighbours() as neighbours:
        yield neighbours


@pytest.fixture
async def emishows(fakes: Neighbours) -> AsyncIterator[Emishows]:
    async with Emishows(fakes.settings("emishows"), retry_delays=FAST) as client:
        yield client


@pytest.fixture
async def emirecords(fakes: Neighbours) -> AsyncIterator[Emirecords]:
    async with Emirecords(fakes.settings("emirecords"), retry_delays=FAST) as client:
        yield client


@pytest.fixture
async def emilounge(fakes: Neighbours) -> AsyncIterator[Emilounge]:
    async with Emilounge(fakes.settings("emilounge"), retry_delays=FAST) as client:
        yield client


@pytest.fixture
async def emistream(fakes: Neighbours) -> AsyncIterator[Emistream]:
    async with Emistream(fakes.emistream_settings(), retry_delays=FAST) as client:
        yield client


# -- emishows --


async def test_event_is_parsed_from_camel_case(fakes: Neighbours, emishows: Emishows) -> None:
    added = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="prerecorded")

    event = await emishows.event(added.id)

    assert event is not None
    assert (event.id, event.type, event.show_id) == (added.id, "prerecorded", added.show_id)
    assert (event.start, event.end, event.timezone) == (
        LOCAL,
        LOCAL + timedelta(hours=1),
        "Europe/Warsaw",
    )
    assert event.start.tzinfo is None


async def test_unknown_event_is_none_at_once(fakes: Neighbours, emishows: Emishows) -> None:
    missing = uuid.uuid4()

    assert await emishows.event(missing) is None
    assert [r.status for r in fakes.emishows.logged("GET", f"/events/{missing}")] == [404]


async def test_events_page_by_offset_with_where_as_compact_json(
    fakes: Neighbours, emishows: Emishows
) -> None:
    ids = [fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1)).id for _ in range(23)]
    fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1))  # not asked for
    where = {"id": {"in": [str(i) for i in ids]}}

    events = await emishows.events(where)

    assert [e.id for e in events] == ids
    requests = fakes.emishows.logged("GET", "/events")
    assert [r.query["offset"] for r in requests] == ["0", "10", "20"]
    assert {r.query["where"] for r in requests} == {json.dumps(where, separators=(",", ":"))}
    assert all("limit" not in r.query for r in requests)


async def test_schedule_sends_naive_utc_bounds_and_lowercase_or(
    fakes: Neighbours, emishows: Emishows
) -> None:
    day = [(LOCAL + timedelta(hours=h), LOCAL + timedelta(hours=h, minutes=30)) for h in (0, 1)]
    replay = fakes.emishows.add_event(*day[0], type="replay", instances=day)
    prerecorded = fakes.emishows.add_event(*day[1], type="prerecorded")
    fakes.emishows.add_event(*day[0], type="live")
    where = {"or": [{"type": "replay"}, {"type": "prerecorded"}]}
    start = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 19:00 in Warsaw

    schedules = await emishows.schedule(start, start + timedelta(days=1), where)

    assert [(s.event.id, [i.start for i in s.instances]) for s in schedules] == [
        (replay.id, [day[0][0], day[1][0]]),
        (prerecorded.id, [day[1][0]]),
    ]
    (request,) = fakes.emishows.logged("GET", "/schedule")
    assert request.query == {
        "start": "2026-11-23T18:00:00",
        "end": "2026-11-24T18:00:00",
        "where": '{"or":[{"type":"replay"},{"type":"prerecorded"}]}',
        "offset": "0",
    }


async def test_schedule_count_counts_events_across_pages(
    fakes: Neighbours, emishows: Emishows
) -> None:
    show = uuid.uuid4()
    three = [(LOCAL + timedelta(minutes=m), LOCAL + timedelta(minutes=m + 5)) for m in (0, 10, 20)]
    ids = [
        fakes.emishows.add_event(*three[0], show_id=show, type="live", instances=three).id
        for _ in range(12)
    ]

    schedules = await emishows.schedule(
        LOCAL - timedelta(hours=3), LOCAL + timedelta(hours=3), {"showId": str(show)}
    )

    assert [s.event.id for s in schedules] == ids
    assert all(len(s.instances) == 3 for s in schedules)
    assert [r.query["offset"] for r in fakes.emishows.logged("GET", "/schedule")] == ["0", "10"]


async def test_listing_stops_on_an_empty_page(fakes: Neighbours, emishows: Emishows) -> None:
    lying = {"count": 5, "limit": 10, "offset": 0, "schedules": []}
    fakes.emishows.inject(Fault("/schedule", garbage=json.dumps(lying).encode(), times=100))

    async with asyncio.timeout(5):
        assert await emishows.schedule(LOCAL, LOCAL + timedelta(days=1)) == []
    assert len(fakes.emishows.logged("GET", "/schedule")) == 1


async def test_failures_are_retried_then_succeed(fakes: Neighbours, emishows: Emishows) -> None:
    added = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1))
    fakes.emishows.inject(Fault(f"/events/{added.id}", status=503, times=3))

    event = await emishows.event(added.id)

    assert event is not None
    assert event.id == added.id
    assert [r.status for r in fakes.emishows.logged("GET", "/events/")] == [503, 503, 503, 200]


async def test_retry_pattern_is_four_attempts_with_doubling_gaps(fakes: Neighbours) -> None:
    fakes.emishows.inject(Fault("/events", status=500, times=10))
    async with Emishows(fakes.settings("emishows"), retry_delays=(0.1, 0.2, 0.4)) as client:
        with pytest.raises(NeighbourRefused) as raised:
            await client.events()

    assert str(raised.value) == (
        "emishows answered GET /events with HTTP 500 after 4 attempts: Injected fault."
    )
    times = [r.at for r in fakes.emishows.logged("GET", "/events")]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps == pytest.approx([0.1, 0.2, 0.4], abs=0.08)


async def test_no_answer_is_unreachable_naming_the_neighbour() -> None:
    dead = neighbour_settings("http://127.0.0.1:9")  # discard port: nothing listens
    async with Emishows(dead, retry_delays=FAST) as client:
        with pytest.raises(NeighbourUnreachable) as raised:
            await client.event(uuid.uuid4())

    assert re.fullmatch(
        r"emishows is unreachable: GET /events/[0-9a-f-]+ failed 4 times, last: ConnectError.*",
        str(raised.value),
    )


async def test_a_silent_neighbour_times_out_instead_of_hanging(fakes: Neighbours) -> None:
    fakes.emishows.inject(Fault("/events", delay=3, times=4))
    settings = fakes.settings("emishows", timeout=timedelta(seconds=0.3))
    began = time.monotonic()
    async with Emishows(settings, retry_delays=(0, 0, 0)) as client:
        with pytest.raises(NeighbourUnreachable, match="ReadTimeout"):
            await client.events()

    assert time.monotonic() - began < 2.5


async def test_garbage_is_an_unexpected_answer(fakes: Neighbours, emishows: Emishows) -> None:
    added = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1))
    fakes.emishows.inject(Fault("/events/", garbage=b"<html>gateway</html>"))

    with pytest.raises(UnexpectedAnswer) as raised:
        await emishows.event(added.id)

    assert str(raised.value).startswith(
        f"emishows answered GET /events/{added.id} with an unexpected body ("
    )


# -- emirecords and emilounge --


async def test_records_after_and_before_are_exclusive_and_paged(
    fakes: Neighbours, emirecords: Emirecords
) -> None:
    live = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="live")
    starts = [LOCAL + timedelta(days=d) for d in range(14)]
    for start in starts:
        fakes.emirecords.add(live.id, start, b"OggS")

    records = await emirecords.list_recordings(live.id, after=starts[0], before=starts[-1])

    assert sorted(r.start for r in records) == starts[1:-1]
    assert {r.event for r in records} == {live.id}
    requests = fakes.emirecords.logged("GET", f"/records/{live.id}")
    assert [r.query for r in requests] == [
        {"after": "2026-11-23T20:00:00", "before": "2026-12-06T20:00:00", "offset": o}
        for o in ("0", "10")
    ]


async def test_download_streams_the_whole_file(
    fakes: Neighbours, emirecords: Emirecords, tmp_path: Path
) -> None:
    live = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="live")
    data = bytes(range(256)) * 400
    stored = fakes.emirecords.add(live.id, LOCAL, data)
    destination = tmp_path / "cache" / "one.ogg"

    download = await emirecords.download(live.id, LOCAL, destination)

    assert destination.read_bytes() == data
    assert (download.size, download.etag, download.content_type) == (
        len(data),
        stored.etag,
        "audio/ogg",
    )
    assert download.last_modified == stored.last_modified.replace(microsecond=0)
    (request,) = fakes.emirecords.logged("GET", f"/records/{live.id}/")
    assert request.raw_path == f"/records/{live.id}/2026-11-23T20:00:00"
    assert _files(destination.parent) == ["one.ogg"]


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        pytest.param({"omit_headers": ("ETag",)}, "without a etag header", id="no_etag"),
        pytest.param(
            {"omit_headers": ("Last-Modified",)},
            "without a last-modified header",
            id="no_last_modified",
        ),
        pytest.param(
            {"omit_headers": ("Content-Length",)},
            "without a content-length header",
            id="no_content_length",
        ),
        pytest.param(
            {"content_type": "audio/mpeg"}, "as audio/mpeg, expected audio/ogg", id="not_ogg"
        ),
    ],
)
async def test_download_without_the_contract_headers_fails_and_leaves_nothing(
    fakes: Neighbours,
    emirecords: Emirecords,
    tmp_path: Path,
    knobs: dict[str, object],
    message: str,
) -> None:
    live = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="live")
    fakes.emirecords.add(live.id, LOCAL, b"OggS" * 1000, **knobs)

    with pytest.raises(DownloadFailed) as raised:
        await emirecords.download(live.id, LOCAL, tmp_path / "one.ogg")

    assert str(raised.value) == (
        f"emirecords sent /records/{live.id}/2026-11-23T20:00:00 {message}"
    )
    assert _files(tmp_path) == []


async def test_a_truncated_download_is_retried_and_never_used(
    fakes: Neighbours, emirecords: Emirecords, tmp_path: Path
) -> None:
    live = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="live")
    fakes.emirecords.add(live.id, LOCAL, b"OggS" * 10000, send_only=5000)

    with pytest.raises(NeighbourUnreachable, match="emirecords is unreachable: GET /records/"):
        await emirecords.download(live.id, LOCAL, tmp_path / "one.ogg")

    assert len(fakes.emirecords.logged("GET", f"/records/{live.id}/")) == 4
    assert _files(tmp_path) == []


async def test_emilounge_lists_and_downloads_prerecordings(
    fakes: Neighbours, emilounge: Emilounge, tmp_path: Path
) -> None:
    event = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="prerecorded")
    fakes.emilounge.add(event.id, LOCAL, b"OggS-prerecorded")

    found = await emilounge.list_recordings(
        event.id, after=LOCAL - timedelta(seconds=1), before=LOCAL + timedelta(hours=1)
    )
    download = await emilounge.download(event.id, LOCAL, tmp_path / "p.ogg")

    assert [(r.event, r.start) for r in found] == [(event.id, LOCAL)]
    assert download.size == len(b"OggS-prerecorded")
    assert (tmp_path / "p.ogg").read_bytes() == b"OggS-prerecorded"


async def test_emilounge_refuses_other_event_types_with_its_message(
    fakes: Neighbours, emilounge: Emilounge
) -> None:
    live = fakes.emishows.add_event(LOCAL, LOCAL + timedelta(hours=1), type="live")

    with pytest.raises(NeighbourRefused) as raised:
        await emilounge.list_recordings(live.id)

    assert raised.value.status == 400
    assert raised.value.detail == "Event of type live cannot have a prerecording."


# -- emistream --


def _near_event(fakes: Neighbours) -> uuid.UUID:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return fakes.emishows.add_event(now, now + timedelta(hours=1), timezone="UTC").id


async def test_reserve_posts_the_contract_body_and_parses_credentials(
    fakes: Neighbours, emistream: Emistream
) -> None:
    event = _near_event(fakes)

    reservation = await emistream.reserve(event)

    assert isinstance(reservation, Reservation)
    assert re.fullmatch(r"[0-9a-f]{32}", reservation.credentials.token)
    assert reservation.port == fakes.emistream.srt_port
    (request,) = fakes.emistream.logged("POST", "/reserve")
    assert (request.status, request.json()) == (
        201,
        {"event": str(event), "format": "ogg", "record": False},
    )


async def test_a_busy_slot_is_retried_then_returned_as_busy(
    fakes: Neighbours, emistream: Emistream
) -> None:
    other = uuid.uuid4()
    fakes.emistream.occupy(other)

    answer = await emistream.reserve(_near_event(fakes))

    assert answer == Busy(f"Another stream is already being handled for event {other}.")
    assert [r.status for r in fakes.emistream.logged("POST", "/reserve")] == [409] * 4


async def test_reserve_without_a_near_instance_is_refused(
    fakes: Neighbours, emistream: Emistream
) -> None:
    far = fakes.emishows.add_event(LOCAL - timedelta(days=400), LOCAL - timedelta(days=399))

    with pytest.raises(NeighbourRefused) as raised:
        await emistream.reserve(far.id)

    assert (raised.value.status, raised.value.detail) == (
        422,
        f"No near instances of event {far.id} found.",
    )


async def test_subscription_sees_the_slot_freed(fakes: Neighbours, emistream: Emistream) -> None:
    fakes.emistream.occupy(uuid.uuid4())
    async with emistream.subscribe() as events:
        fakes.emistream.publish_raw('data: {"type":"foo","createdAt":"2026-11-23T06:43:20"}')
        fakes.emistream.free()
        async with asyncio.timeout(5):
            availability = await events.availability()

    assert availability.event is None
    assert availability.checked_at.tzinfo is None
    (request,) = fakes.emistream.logged("GET", "/sse")
    assert request.status == 200


async def test_subscription_waits_until_bounded(fakes: Neighbours, emistream: Emistream) -> None:
    async with emistream.subscribe() as events:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await events.availability()


async def test_subscription_garbage_is_an_unexpected_answer(
    fakes: Neighbours, emistream: Emistream
) -> None:
    async with emistream.subscribe() as events:
        fakes.emistream.publish_raw("data: not json")
        with pytest.raises(UnexpectedAnswer, match="emistream sent an unexpected event on /sse"):
            async with asyncio.timeout(5):
                await events.availability()


async def test_subscription_closed_by_emistream_is_unreachable(
    fakes: Neighbours, emistream: Emistream
) -> None:
    async with emistream.subscribe() as events:
        fakes.emistream.close()
        with pytest.raises(NeighbourUnreachable, match="emistream closed its event stream"):
            async with asyncio.timeout(5):
                await events.availability()

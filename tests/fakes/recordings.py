"""Fakes of emirecords (gecko @ 03024f4, §2.2) and emilounge (numbat @ c858711, §2.3).

Both are one design: audio files keyed `{event}/{start}` (start naive, in the event's zone),
a paged listing with exclusive `after`/`before`, and a streamed download with the four headers
the scheduler relies on. Which events may have files is asked of the fake emishows, as the real
services ask the real one.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.emishows import DEFAULT_LIMIT, FakeEmishows
from tests.fakes.server import Fake, error, invalid, utcnow


@dataclass
class StoredFile:
    """One file. The misbehaviour knobs break the contract on purpose for client tests."""

    data: bytes
    content_type: str = "audio/ogg"
    last_modified: datetime = field(default_factory=utcnow)
    omit_headers: tuple[str, ...] = ()
    send_only: int | None = None
    """Send this many bytes of `data` while announcing all of them."""

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.data).hexdigest()}"'


class FakeRecordings(Fake):
    collection: str
    items_key: str
    event_type: str
    wrong_type: str
    unknown_event: str
    missing_file: str

    def __init__(self, emishows: FakeEmishows) -> None:
        super().__init__()
        self.emishows = emishows
        self.files: dict[tuple[UUID, datetime], StoredFile] = {}

    def add(self, event: UUID, start: datetime, data: bytes, **knobs: object) -> StoredFile:
        stored = StoredFile(data, **knobs)  # type: ignore[arg-type]
        with self.lock:
            self.files[(event, start)] = stored
        self.changed()
        return stored

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route(f"/{self.collection}/{{event}}", self.listing, methods=["GET"]),
            Route(f"/{self.collection}/{{event}}/{{start}}", self.download, methods=["GET"]),
        ]

    def _event(self, raw: str) -> UUID | Response:
        try:
            event_id = UUID(raw)
        except ValueError:
            return error(404)
        with self.emishows.lock:
            event = self.emishows.events.get(event_id)
        if event is None:
            return error(404, self.unknown_event.format(id=event_id))
        if event.type != self.event_type:
            return error(400, self.wrong_type.format(type=event.type))
        return event_id

    async def listing(self, request: Request) -> Response:
        event_id = self._event(request.path_params["event"])
        if isinstance(event_id, Response):
            return event_id
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return invalid(request, "offset", "Input should be a valid integer")
        bounds: dict[str, datetime | None] = {}
        for key in ("after", "before"):
            raw = params.get(key)
            try:
                bounds[key] = datetime.fromisoformat(raw) if raw is not None else None
            except ValueError:
                return invalid(request, key, "Input should be a valid datetime")
        after, before = bounds["after"], bounds["before"]
        with self.lock:
            starts = [start for (event, start) in self.files if event == event_id]
        starts = [
            s for s in starts if (after is None or s > after) and (before is None or s < before)
        ]
        order = params.get("order")
        if order in ("asc", "desc"):
            starts.sort(reverse=order == "desc")
        page = starts[offset : offset + limit]
        return JSONResponse(
            {
                "count": len(starts),
                "limit": limit,
                "offset": offset,
                self.items_key: [{"event": str(event_id), "start": s.isoformat()} for s in page],
            }
        )

    async def download(self, request: Request) -> Response:
        event_id = self._event(request.path_params["event"])
        if isinstance(event_id, Response):
            return event_id
        try:
            start = datetime.fromisoformat(request.path_params["start"])
        except ValueError:
            return error(404)
        with self.lock:
            stored = self.files.get((event_id, start))
        if stored is None:
            return error(404, self.missing_file.format(id=event_id, start=start.isoformat()))
        headers = {
            "content-length": str(len(stored.data)),
            "etag": stored.etag,
            "last-modified": format_datetime(stored.last_modified, usegmt=True),
        }
        for name in stored.omit_headers:
            headers.pop(name.lower(), None)
        body = stored.data if stored.send_only is None else stored.data[: stored.send_only]

        async def chunks() -> AsyncIterator[bytes]:
            for index in range(0, len(body), 16384):
                yield body[index : index + 16384]

        return StreamingResponse(chunks(), headers=headers, media_type=stored.content_type)


class FakeEmirecords(FakeRecordings):
    collection = "records"
    items_key = "records"
    event_type = "live"
    wrong_type = "Event of type {type} cannot be recorded."
    unknown_event = "Live event not found for id {id}."
    missing_file = "Record not found for event {id} and start {start}."


class FakeEmilounge(FakeRecordings):
    collection = "prerecordings"
    items_key = "prerecordings"
    event_type = "prerecorded"
    wrong_type = "Event of type {type} cannot have a prerecording."
    unknown_event = "Prerecorded event not found for id {id}."
    missing_file = "Prerecording not found for event {id} and start {start}."

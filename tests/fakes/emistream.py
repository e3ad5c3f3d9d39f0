"""A fake emistream (radio-aktywne/octopus @ 998b50f), from contracts/emischeduler.md §2.4.

One slot: `POST /reserve` takes it (201 with a 32-hex token) or answers 409 while it is held,
and 422 when emishows has no instance of the event within `window` of now. Every change of the
slot is published on `GET /sse` as `data: {json}\\r\\n\\r\\n`. The real service frees the slot
when its SRT ingest ends; here the test calls `free()` (the SRT side is a real ffmpeg listener
that the test runs itself).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from tests.fakes.emishows import FakeEmishows
from tests.fakes.server import Fake, error, invalid, naive, utcnow

_END = object()


@dataclass(frozen=True)
class Reserved:
    event: UUID
    token: str
    at: datetime
    expires_at: datetime


class FakeEmistream(Fake):
    def __init__(
        self,
        emishows: FakeEmishows,
        srt_port: int = 10000,
        window: timedelta = timedelta(hours=1),
        timeout: timedelta = timedelta(minutes=1),
    ) -> None:
        super().__init__()
        self.emishows = emishows
        self.srt_port = srt_port
        self.window = window
        self.timeout = timeout
        self.current: UUID | None = None
        self.next_token: str | None = None
        """The token of the next reservation (default: random), so that a test can start its
        SRT listener before the reservation happens."""
        self.reservations: list[Reserved] = []
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[object]]] = []

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/reserve", self.reserve, methods=["POST"]),
            Route("/sse", self.sse, methods=["GET"]),
            Route("/check", self.check, methods=["GET"]),
        ]

    # -- test hooks --

    def occupy(self, event: UUID) -> None:
        """Hold the slot for another stream."""
        self._set(event)

    def free(self) -> None:
        """End the current stream, as the end of an SRT ingest does."""
        self._set(None)

    def publish_raw(self, line: str) -> None:
        """Send `line` + CRLF CRLF to every subscriber, contract or not."""
        self._broadcast(line + "\r\n\r\n")

    def subscribers(self) -> int:
        with self.lock:
            return len(self._subscribers)

    def close(self) -> None:
        with self.lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    # -- the service --

    def _set(self, event: UUID | None) -> None:
        with self.lock:
            self.current = event
        now = naive(utcnow())
        message = {
            "type": "availability-changed",
            "createdAt": now,
            "data": {"availability": {"event": str(event) if event else None, "checkedAt": now}},
        }
        self._broadcast(f"data: {json.dumps(message, separators=(',', ':'))}\r\n\r\n")
        self.changed()

    def _broadcast(self, text: str) -> None:
        with self.lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(queue.put_nowait, text)

    def _near(self, event_id: UUID) -> bool:
        with self.emishows.lock:
            event = self.emishows.events.get(event_id)
        if event is None:
            return False
        now = utcnow()
        return any(
            event.utc(s) <= now + self.window and event.utc(e) >= now - self.window
            for s, e in event.instances
        )

    async def reserve(self, request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body())
            event_id = UUID(body["event"])
            fmt = body.get("format", "ogg")
            record = body.get("record", False)
        except (ValueError, KeyError, TypeError):
            return invalid(request, "event", "Field required")
        if fmt != "ogg" or not isinstance(record, bool):
            return invalid(request, "format", "Input should be 'ogg'")
        if not self._near(event_id):
            return error(422, f"No near instances of event {event_id} found.")
        with self.lock:
            if self.current is not None:
                return error(
                    409, f"Another stream is already being handled for event {self.current}."
                )
            token = self.next_token or secrets.token_hex(16)
            self.next_token = None
            now = utcnow()
            reserved = Reserved(event_id, token, now, now + self.timeout)
            self.reservations.append(reserved)
        self._set(event_id)
        return JSONResponse(
            {
                "credentials": {"token": token, "expiresAt": naive(reserved.expires_at)},
                "port": self.srt_port,
            },
            status_code=201,
        )

    async def check(self, request: Request) -> Response:
        with self.lock:
            current = self.current
        return JSONResponse(
            {"event": str(current) if current else None, "checkedAt": naive(utcnow())}
        )

    async def sse(self, request: Request) -> Response:
        queue: asyncio.Queue[object] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), queue)
        with self.lock:
            self._subscribers.append(entry)
        self.changed()

        async def messages() -> AsyncIterator[str]:
            try:
                while (item := await queue.get()) is not _END:
                    assert isinstance(item, str)
                    yield item
            finally:
                with self.lock:
                    self._subscribers.remove(entry)

        return StreamingResponse(messages(), media_type="text/event-stream")

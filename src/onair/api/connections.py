"""Connections bounded in time and size, where uvicorn leaves them open.

uvicorn closes a keep-alive connection that stays idle between two requests
(`timeout_keep_alive`) and bounds how many it serves (`limit_concurrency`), but a connection
that never sends its first request, or sends its headers a byte at a time, stays open for as
long as the client likes, and httptools' parser reads headers of any size. `bounded_http`
makes uvicorn's httptools protocol close both:

- a connection is closed after `idle` seconds without a request, from the moment it opens
  (uvicorn starts that clock only after a first response);
- a request's line and headers must arrive within `head_timeout` seconds of its first byte,
  else 408 and the connection is closed;
- they may be at most `max_head` bytes, else 431 and the connection is closed.

A body that stalls is `onair.api.middleware.BodyLimit`'s (408). It relies on these parts of
uvicorn's `HttpToolsProtocol`, pinned by `tests/integration/test_connections.py`: the parser
callbacks `on_message_begin`, `on_url`, `on_header`, `on_headers_complete`, `on_body` and
`on_message_complete`, `connection_made` / `connection_lost`, and the keep-alive timer
(`timeout_keep_alive`, `timeout_keep_alive_task`, `timeout_keep_alive_handler`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from onair.config import ServerSettings


def _closing_answer(status: bytes) -> bytes:
    return b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring; build a subclass
    with them through `bounded_http`."""

    head_timeout: float = 10.0
    max_head: int = 64 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_due: asyncio.TimerHandle | None = None
        self._head_size = self._head_bytes = 0
        self._refused = False
        # The idle clock runs from the start, not from a first response; the first byte
        # stops it (`data_received`), as it does between requests.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # answered and closing: the rest is not read
            return
        super().data_received(data)
        if self._head_due is not None:
            # Still in a head: the parser reports a header only once it is whole, so a
            # single endless line is counted here, by the bytes that came meanwhile.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head:
                self._refuse(b"431 Request Header Fields Too Large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_size = self._head_bytes = 0
        self._stop_head_clock()
        self._head_due = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def on_url(self, url: bytes) -> None:
        if self._grew(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._grew(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_clock()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _grew(self, size: int) -> bool:
        """Count `size` more bytes of the head; False once it is over the limit (answered)."""
        if self._refused:
            return False
        self._head_size += size
        if self._head_size <= self.max_head:
            return True
        self._refuse(b"431 Request Header Fields Too Large")
        return False

    def _head_too_slow(self) -> None:
        self._head_due = None
        self._refuse(b"408 Request Timeout")

    def _refuse(self, status: bytes) -> None:
        self._refused = True
        self._stop_head_clock()
        if not self.transport.is_closing():
            self.transport.write(_closing_answer(status))
            self.transport.close()

    def _stop_head_clock(self) -> None:
        if self._head_due is not None:
            self._head_due.cancel()
            self._head_due = None


def bounded_http(settings: ServerSettings) -> type[BoundedHttp]:
    """The protocol class for uvicorn's `http` option, with the bounds of `settings`."""
    return type(
        "BoundedHttp",
        (BoundedHttp,),
        {
            "head_timeout": settings.header_timeout.total_seconds(),
            "max_head": settings.max_header_size,
        },
    )


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The options of `uvicorn.run` that bound connections (docs/operations.md)."""
    return {
        "http": bounded_http(settings),
        "timeout_keep_alive": settings.idle_timeout.total_seconds(),
        "limit_concurrency": settings.max_connections,
        "h11_max_incomplete_event_size": settings.max_header_size,
    }

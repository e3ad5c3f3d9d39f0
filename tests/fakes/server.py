"""What every fake neighbour shares: Litestar-style error bodies, a request log the test can
await, injected faults, and serving over real HTTP on a free localhost port.

A fake runs in uvicorn on its own thread and event loop, while the test mutates its state and
awaits its log from the test's loop. State is therefore guarded by a lock, and waiters are woken
with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def error(status: int, extra: Any = None, detail: str | None = None) -> JSONResponse:
    """Litestar's error body: `{"status_code", "detail", "extra"}`, `extra` only when given."""
    phrases = {
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        409: "Conflict",
        422: "Unprocessable Content",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }
    body: dict[str, Any] = {"status_code": status, "detail": detail or phrases.get(status, "")}
    if extra is not None:
        body["extra"] = extra
    return JSONResponse(body, status_code=status)


def invalid(request: Request, key: str, message: str) -> JSONResponse:
    """Litestar's answer to a parameter that fails validation."""
    return error(
        400,
        [{"message": message, "key": key}],
        detail=f"Validation failed for {request.method} {request.url.path}",
    )


def naive(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat()


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Logged:
    """One request a fake received. `raw_path` is the path as sent (colons and all)."""

    method: str
    path: str
    raw_path: str
    query: dict[str, str]
    at: datetime
    body: bytes = b""
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """Served instead of the real answer to the next `times` requests whose path starts with
    `path`: an error `status`, a 200 with a `garbage` body, or a `delay` before the real
    answer."""

    path: str = "/"
    times: int = 1
    status: int | None = None
    garbage: bytes | None = None
    delay: float = 0.0


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)


class Fake:
    """Base of the fakes: subclasses give `routes()` and their state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.requests: list[Logged] = []
        self._faults: list[Fault] = []
        self._waiters: list[_Waiter] = []
        self.url = ""

    def routes(self) -> Sequence[BaseRoute]:
        raise NotImplementedError

    def close(self) -> None:
        """Called before the server stops: end any endless responses."""

    def app(self) -> ASGIApp:
        async def http_error(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            return error(exc.status_code)

        async def server_error(request: Request, exc: Exception) -> Response:
            return error(500)

        app = Starlette(
            routes=list(self.routes()),
            exception_handlers={HTTPException: http_error, Exception: server_error},
        )
        return self._middleware(app)

    # -- what the test sets and reads --

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self._faults.append(fault)

    def logged(self, method: str | None = None, prefix: str = "/") -> list[Logged]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(prefix)
            ]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate()` holds; it is re-checked after every request and state
        change. Bound it with `asyncio.timeout`."""
        waiter = _Waiter(asyncio.get_running_loop())
        with self.lock:
            self._waiters.append(waiter)
        try:
            while True:
                waiter.event.clear()
                with self.lock:
                    if predicate():
                        return
                await waiter.event.wait()
        finally:
            with self.lock:
                self._waiters.remove(waiter)

    def changed(self) -> None:
        """Wake the waiters: call after any change of state."""
        with self.lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            with contextlib.suppress(RuntimeError):  # the waiter's loop has closed
                waiter.loop.call_soon_threadsafe(waiter.event.set)

    # -- plumbing --

    def _fault_for(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if path.startswith(fault.path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _middleware(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            entry = Logged(
                method=scope["method"],
                path=scope["path"],
                raw_path=scope.get("raw_path", b"").decode("latin-1"),
                query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                at=utcnow(),
            )
            with self.lock:
                self.requests.append(entry)
            self.changed()

            async def logging_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    entry.body += message.get("body", b"")
                return message

            async def logging_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    entry.status = message["status"]
                    self.changed()
                await send(message)

            fault = self._fault_for(entry.path)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if fault is not None and fault.status is not None:
                await error(fault.status, "Injected fault.")(scope, logging_receive, logging_send)
            elif fault is not None and fault.garbage is not None:
                response = Response(fault.garbage, media_type="application/json")
                await response(scope, logging_receive, logging_send)
            else:
                await app(scope, logging_receive, logging_send)

        return middleware


class Served:
    """`fake` served by uvicorn on a free localhost port, in a thread of its own."""

    def __init__(self, fake: Fake) -> None:
        self.fake = fake
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        config = uvicorn.Config(
            fake.app(),
            log_level="error",
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> str:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:  # startup of our own thread, not a state under test
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self.fake).__name__} did not start")
            time.sleep(0.005)
        self.fake.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        return self.fake.url

    def begin_stop(self) -> None:
        self.fake.close()
        self._server.should_exit = True

    def join(self) -> None:
        self._thread.join(timeout=10)
        self._sock.close()


@contextlib.contextmanager
def serve(*fakes: Fake) -> Iterator[list[str]]:
    """Serve each fake on its own free port; yields their base URLs. They stop together."""
    served = [Served(fake) for fake in fakes]
    try:
        yield [s.start() for s in served]
    finally:
        for s in served:
            s.begin_stop()
        for s in served:
            s.join()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on right now (for an SRT listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

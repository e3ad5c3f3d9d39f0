"""What every request passes before it reaches a route: the gate (whose `Host`, from which
site, with what body), the limits of what it sends (`BodyLimit`: size, pace, NaN and NUL
characters), and the reference's trailing slashes.

The gate is why a node is safe to run on a laptop next to a browser (docs/auth.md):

- a `Host` that is not one of the node's own names is refused (400), which closes DNS
  rebinding, where a web page's own name is pointed at 127.0.0.1 to read a loopback port;
  IP addresses are always the node's own (a page cannot be served from a name it does not have);
- an unsafe request (POST, PUT, PATCH, DELETE) sent by a browser from another site is refused
  (403): its `Origin` names another host, or its `Sec-Fetch-Site` says `cross-site`;
- an unsafe request with a body must say `Content-Type: application/json` (415), uploads
  excepted: a web page can post `text/plain` or a form to any address without asking, but never
  JSON.

Each refusal is answered in the error shape of the surface the path belongs to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import socket
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onair.api.errors import NUL_IN_TEXT, Location, Refused, error_response, refusal, shape_of

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = re.compile(r"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)


def own_names(host: str, allowed: Iterable[str]) -> frozenset[str]:
    """The host names a node bound to `host` answers to, besides IP addresses: loopback names,
    this machine's names, `host` itself and `allowed` (lower case; `*` allows any)."""
    names = {"localhost", host, *allowed}
    try:
        names |= {socket.gethostname(), socket.getfqdn()}
    except OSError:  # no name: only the others then
        pass
    return frozenset(name.lower().rstrip(".") for name in names if name)


class Gate:
    """Refuses foreign hosts, cross-site writes and bodies that are not JSON (see the module
    docstring). `uploads` are path prefixes whose bodies may be multipart."""

    def __init__(self, app: ASGIApp, names: frozenset[str], uploads: Iterable[str] = ()) -> None:
        self.app = app
        self.names = names
        self.uploads = tuple(uploads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, _headers(scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, detail = refusal
        response = error_response(shape_of(scope["path"]), status, detail)
        await response(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Mapping[str, str]) -> tuple[int, str] | None:
        host = _hostname(headers.get("host", ""))
        if not self._ours(host):
            return 400, (
                f"This node does not answer to the host name {host!r}; a proxy that forwards "
                "it must be named in ONAIR__SERVER__ALLOWED_HOSTS."
            )
        if scope["method"] not in UNSAFE:
            return None
        origin = headers.get("origin")
        cross = headers.get("sec-fetch-site") == "cross-site"
        if cross or (origin is not None and not self._same_origin(origin, headers)):
            return 403, f"Cross-site requests are refused ({origin or 'another site'})."
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        kind = headers.get("content-type", "")
        uploading = scope["path"].startswith(self.uploads) if self.uploads else False
        if has_body and not uploading and not JSON_TYPES.match(kind):
            return 415, (
                f"The body must be JSON, sent with Content-Type: application/json "
                f"(not {kind or 'no content type'})."
            )
        return None

    def _ours(self, host: str) -> bool:
        if "*" in self.names or host in self.names:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    @staticmethod
    def _same_origin(origin: str, headers: Mapping[str, str]) -> bool:
        """Whether `origin` is the page of this very host and port (`null` never is)."""
        parts = urlsplit(origin)
        return bool(parts.netloc) and parts.netloc.lower() == headers.get("host", "").lower()


_WANTED = frozenset(
    (
        b"host",
        b"origin",
        b"sec-fetch-site",
        b"content-length",
        b"content-type",
        b"transfer-encoding",
    )
)


def _headers(scope: Scope) -> dict[str, str]:
    """The few headers the gate reads, from the raw list: cheaper than building `Headers`."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _WANTED
    }


def _hostname(host: str) -> str:
    """The name in a `Host` header, without its port and brackets, in lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class StripTrailingSlash:
    """`/tasks/` is `/tasks`, as on the reference, without a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = dict(scope, path=re.sub("/+$", "", path) or "/")
        await self.app(scope, receive, send)


class BodyLimit:
    """What a request may send: a path and query without NUL characters, a body of at most
    `limit` bytes (under a path prefix of `larger`: its limit) whose parts each arrive within
    `timeout` seconds, and, when it is JSON, no NaN, infinity or NUL character in it.

    - 413 for a body over the limit, raised as an `HTTPException` from the body's first read
      when the Content-Length says so, else from the read that goes over (a chunked body), so
      each surface answers it in its own error shape and nothing of the body is kept.
      Starlette's own limiter answers in plain text whatever the application sends.
    - 408 when the next part of a body takes longer than `timeout` (a client that stalls
      mid-body would otherwise hold its connection and its request for ever; uvicorn has no
      such timeout), and the connection is closed. Once the body is in, a read only waits
      for the client to leave (an event stream's), and waits as long as it takes.
    - NaN and infinities are not JSON (RFC 8259), yet Python's and Pydantic's parsers read
      them, and NUL characters are text no PostgreSQL column holds: both are refused from the
      read that ends the body (`Refused`: 400 on the Tasks API, 422 on the user API, naming
      each field), on every database alike. A body is looked at closely only when a scan of
      its bytes finds one of them, which costs the requests that carry none nearly nothing.
    """

    def __init__(
        self, app: ASGIApp, limit: int, larger: Mapping[str, int], timeout: float | None = None
    ) -> None:
        self.app, self.limit, self.larger, self.timeout = app, limit, larger, timeout
        self._stalls = None if timeout is None else _Stalls(timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        problems = _nul_in_target(path, scope.get("query_string", b""))
        if problems:
            response = refusal(shape_of(path), scope["method"], path, problems)
            await response(scope, receive, send)
            return
        limit = next((n for p, n in self.larger.items() if path.startswith(p)), self.limit)
        declared = kind = b""
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"content-type":
                kind = value
            elif name == b"transfer-encoding":
                chunked = True
        received = int(declared) if declared.isdigit() else 0
        chunks: list[bytes] | None = [] if kind and _JSON_BYTES.match(kind) else None
        timeout, stalls = self.timeout, self._stalls
        # Once the body is in (at once, without one), a read only waits for the client to
        # leave: no timeout, and no timer to pay for.
        complete = not received and not chunked

        async def limited() -> Message:
            nonlocal received, complete
            if received > limit:
                raise HTTPException(413, f"The request body is over {limit} bytes.")
            if stalls is None or complete:
                message = await receive()
            else:
                task = asyncio.current_task()
                assert task is not None
                stalls.wait(task)
                try:
                    message = await receive()
                except asyncio.CancelledError:
                    if not stalls.stalled(task):
                        raise
                    raise HTTPException(
                        408,
                        f"The request body stalled: no part of it came for {timeout:g} s.",
                        headers={"connection": "close"},
                    ) from None
                finally:
                    stalls.done(task)
            if message["type"] != "http.request":
                return message
            complete = not message.get("more_body", False)
            body: bytes = message.get("body", b"")
            if not declared:
                received += len(body)
                if received > limit:
                    raise HTTPException(413, f"The request body is over {limit} bytes.")
            if chunks is not None:
                chunks.append(body)
                if complete:
                    whole = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    if _SUSPECT.search(whole) and (found := json_problems(whole)):
                        raise Refused(found)
            return message

        await self.app(scope, limited, send)


class _Stalls:
    """The requests waiting for the next part of their body, each cancelled once it has
    waited `timeout` seconds. One timer looks at them all every `timeout / 4` seconds (at most
    1 s) while any waits: a timer per read (`asyncio.timeout`) cost three times the rest of
    `BodyLimit` on every `POST /tasks`, and most reads find their part already there."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.every = min(1.0, timeout / 4)
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._late: set[asyncio.Task[Any]] = set()
        self._sweep: asyncio.TimerHandle | None = None

    def wait(self, task: asyncio.Task[Any]) -> None:
        loop = asyncio.get_running_loop()
        self._waiting[task] = loop.time() + self.timeout
        if self._sweep is None:
            self._sweep = loop.call_later(self.every, self._cancel_late)

    def done(self, task: asyncio.Task[Any]) -> None:
        self._waiting.pop(task, None)

    def stalled(self, task: asyncio.Task[Any]) -> bool:
        """Whether `task` was cancelled here (then its cancellation is taken back)."""
        if task not in self._late:
            return False
        self._late.discard(task)
        task.uncancel()
        return True

    def _cancel_late(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for task, due in list(self._waiting.items()):
            if due <= now:
                del self._waiting[task]
                self._late.add(task)
                task.cancel()
        self._sweep = loop.call_later(self.every, self._cancel_late) if self._waiting else None


_JSON_BYTES = re.compile(JSON_TYPES.pattern.encode(), re.IGNORECASE)
_SUSPECT = re.compile(rb"NaN|Infinity|\\u0000|[0-9][eE][+-]?[0-9]{3}|[0-9]{309}")
"""What a JSON body holding NaN, an infinity (written out, or a number beyond a float's range,
which reads as one: with an exponent of three digits, or 309 digits written out) or a NUL
character must contain; most bodies contain none of it. One
expression costs less than four `in` tests (benchmarks.instructions)."""

_NOT_FINITE = "Not a finite number: NaN, Infinity and numbers beyond ±1.8e308 are not JSON numbers."


def json_problems(raw: bytes, most: int = 20) -> list[tuple[Location, str]]:
    """Where the JSON document `raw` holds a NUL character (in a key or a string) or a number
    that is not finite, as (location, message), at most `most` of them in document order.
    None for a document that is not JSON: the route's own parser answers that."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    problems: list[tuple[Location, str]] = []
    pending: deque[tuple[Location, Any]] = deque([(("body",), document)])
    while pending and len(problems) < most:
        where, value = pending.popleft()
        if isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    problems.append(((*where, key), NUL_IN_TEXT))
                pending.append(((*where, key), item))
        elif isinstance(value, list):
            pending.extend(((*where, index), item) for index, item in enumerate(value))
        elif isinstance(value, str):
            if "\x00" in value:
                problems.append((where, NUL_IN_TEXT))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((where, _NOT_FINITE))
    return problems[:most]


def _nul_in_target(path: str, query: bytes) -> list[tuple[Location, str]]:
    """The query parameters (and the path) of a request that hold a NUL character."""
    if "\x00" not in path and b"%00" not in query and b"\x00" not in query:
        return []
    problems: list[tuple[Location, str]] = []
    if "\x00" in path:
        problems.append((("path",), "The path contains a NUL character."))
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            problems.append((("query", name), NUL_IN_TEXT))
    return problems

"""What every request passes before it reaches a route: the gate (whose `Host`, from which
site, with what body), the body size limit, and the reference's trailing slashes.

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

import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onair.api.errors import error_response, shape_of

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
    """413 for a request body over `limit` bytes (under a path prefix of `larger`: its
    limit). It is raised as an `HTTPException` from the body's first read when the
    Content-Length says so, else from the read that goes over (a chunked body), so each
    surface answers it in its own error shape and nothing of the body is kept. Starlette's
    own limiter answers in plain text whatever the application sends."""

    def __init__(self, app: ASGIApp, limit: int, larger: Mapping[str, int]) -> None:
        self.app, self.limit, self.larger = app, limit, larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = next((n for p, n in self.larger.items() if path.startswith(p)), self.limit)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        received = int(declared) if declared.isdigit() else 0

        async def limited() -> Message:
            nonlocal received
            if received > limit:
                raise HTTPException(413, f"The request body is over {limit} bytes.")
            message = await receive()
            if not declared and message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"The request body is over {limit} bytes.")
            return message

        await self.app(scope, limited, send)

"""What the routes share: the node they serve, who is calling, and FastAPI's dependency aliases.

The node is read once per request from the lifespan state (`request.state.api`), the same way
on the main application and on the mounted user API. Tokens are read by one parser,
`token_of`: an `Authorization: Bearer` header wins over the `access_token` cookie. Who a
request acts for is decided here, once per surface (docs/auth.md):

- the Tasks API (`/tasks`, `/events`, `/synchronizer`) and the dashboard's JSON: a token when
  one is sent (an admin acts for the system and sees every task, a user for themselves); none
  is the station, while the Tasks API is open (`auth.protect_tasks_api` off) and the request
  came in on loopback or the node is explicitly open (`auth.open_tasks_api`);
- the user API (`/api/v1`): a token, always.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from fastapi.telemetry import TelemetryConfig

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Principal
from onair.api.eventlog import EventLog
from onair.api.metrics import Metrics
from onair.audio.asrun import AsRun
from onair.audio.library import Library
from onair.broadcast.synchronizer import Synchronizer
from onair.engine.admission import Caller, Role
from onair.errors import Forbidden, Unauthorized
from onair.node import Node
from onair.tasks import SchedulerService

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry hooks, off: onair exports its metrics at `/metrics`, and the
check whether a tracer is configured would otherwise run on every request."""

MAX_OFFSET = 100_000
"""The furthest a listing pages (`offset`): a page is read by skipping the rows before it,
so its cost grows with the offset; past this, narrow the listing with its filters."""

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]

STATION = Caller(None, Role.STATION)
"""The open Tasks API's caller without a token."""


@dataclass(frozen=True)
class ApiState:
    """What the HTTP surfaces serve: the node, and the API's own watchers of its engine."""

    node: Node
    metrics: Metrics
    events: EventLog


def api_of(request: Request) -> ApiState:
    """The state of the application serving `request`. Routes on the hot path read it here
    rather than through a dependency (`Depends`): FastAPI solves dependencies anew on every
    request, and one alone was 6% of a `POST /tasks`."""
    state: ApiState = request.state.api
    return state


def node_of(request: Request) -> Node:
    return api_of(request).node


def service_of(request: Request) -> SchedulerService:
    return api_of(request).node.tasks


def token_of(request: Request) -> str | None:
    """The caller's token: `Authorization: Bearer <token>` wins over the `access_token`
    cookie; None when there is neither. Read from the raw headers: most requests to the
    Tasks API carry neither, and parsing every header and cookie for that costs more than
    the rest of the check."""
    authorization: bytes | None = None
    cookie: bytes | None = None
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"cookie":
            cookie = value
    if authorization is not None:
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if cookie is None:
        return None
    return request.cookies.get("access_token") or None


async def _verified(node: Node, token: str) -> Principal:
    """The principal of a valid token; their account is created on first use.

    Raises: Unauthorized."""
    principal = node.authenticator.verify(token)
    await node.accounts.ensure(principal)
    return principal


def as_caller(principal: Principal, *, system: bool = False) -> Caller:
    """Who a verified token acts as: an admin for the system's tasks (with `system`) or their
    own; a user for their own."""
    if principal.is_admin:
        return Caller(None if system else principal.user_id, Role.ADMIN)
    return Caller(principal.user_id, Role.USER)


async def caller_of(request: Request, *, users: bool = False) -> Caller:
    """Who a request to the Tasks API (or, with `users`, the dashboard's JSON) acts as.

    Raises:
        Unauthorized: no token while the Tasks API is protected (or reached beyond loopback
            without `auth.open_tasks_api`), or a token that is not valid.
        Forbidden: a user token while the Tasks API is protected (unless `users`).
    """
    scope = request.scope
    known: Caller | None = scope.get(_CALLER)
    if known is not None:  # the route class asked already, before the body was read
        return known
    scope[_CALLER] = caller = await _resolve(request, users)
    return caller


_CALLER = "onair.caller"
"""The scope key of a request's caller, once known."""


async def _resolve(request: Request, users: bool) -> Caller:
    node = node_of(request)
    auth = node.settings.auth
    token = token_of(request)
    if token is None:
        if auth.protect_tasks_api:
            raise Unauthorized(
                "the Tasks API is protected: send an admin token as `Authorization: Bearer "
                "<token>` (the CLI: --token or ONAIR_TOKEN)"
            )
        if not auth.open_tasks_api and not _on_loopback(request):
            raise Unauthorized(
                "the Tasks API is open on loopback only: send an admin token, or set "
                "ONAIR__AUTH__OPEN_TASKS_API=true"
            )
        return STATION
    principal = await _verified(node, token)
    if auth.protect_tasks_api and not principal.is_admin and not users:
        raise Forbidden("the Tasks API is protected: it needs an admin token, not a user's")
    return as_caller(principal, system=True)


def _on_loopback(request: Request) -> bool:
    """Whether the request came in on a loopback address of this machine."""
    server = request.scope.get("server")
    if not server:
        return True  # in process (tests' ASGI transport): no socket at all
    return _loopback(server[0])


@functools.lru_cache(maxsize=64)
def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


# The user API's dependencies ---------------------------------------------------------------

# Declared for the OpenAPI document (its security schemes); the token itself is read by
# `token_of`, the one parser.
_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`.")
_cookie = APIKeyCookie(
    name="access_token", auto_error=False, description="A JWT in the `access_token` cookie."
)


async def _principal(
    request: Request,
    _bearer: Annotated[object, Depends(_bearer)],
    _cookie: Annotated[object, Depends(_cookie)],
) -> Principal:
    """The verified caller of the user API.

    Raises: Unauthorized, without a valid token."""
    token = token_of(request)
    if token is None:
        raise Unauthorized(
            "send a JWT as `Authorization: Bearer <token>` or the access_token cookie"
        )
    return await _verified(node_of(request), token)


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _admin(principal: CurrentUser) -> Principal:
    principal.require_admin()
    return principal


AdminUser = Annotated[Principal, Depends(_admin)]


async def _service(request: Request) -> SchedulerService:
    return service_of(request)


async def _accounts(request: Request) -> Accounts:
    return node_of(request).accounts


async def _library(request: Request) -> Library:
    return node_of(request).library


async def _asrun(request: Request) -> AsRun:
    return node_of(request).asrun


async def _events(request: Request) -> EventLog:
    return api_of(request).events


async def _metrics(request: Request) -> Metrics:
    return api_of(request).metrics


async def _synchronizer(request: Request) -> Synchronizer:
    return node_of(request).synchronizer


ServiceDep = Annotated[SchedulerService, Depends(_service)]
AccountsDep = Annotated[Accounts, Depends(_accounts)]
LibraryDep = Annotated[Library, Depends(_library)]
AsRunDep = Annotated[AsRun, Depends(_asrun)]
EventLogDep = Annotated[EventLog, Depends(_events)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
SynchronizerDep = Annotated[Synchronizer, Depends(_synchronizer)]


async def _tasks_caller(request: Request) -> Caller:
    return await caller_of(request)


CallerDep = Annotated[Caller, Depends(_tasks_caller)]
"""The Tasks API's caller, for routes that take dependencies anyway (the hot ones call
`caller_of` themselves)."""

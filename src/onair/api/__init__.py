"""The HTTP surfaces. `create_api` assembles the routers onto one FastAPI application."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from onair.api import (
    events,
    media,
    metrics,
    preview,
    scheduler,
    synchronizer,
    tasks,
    ui,
    users,
)
from onair.api.deps import NO_TELEMETRY
from onair.api.errors import install_reference_errors


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


def create_api(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    *,
    max_body_size: int = 1 << 20,
    larger_bodies: Mapping[str, int] | None = None,
) -> FastAPI:
    """The application with both surfaces; `lifespan` provides `app.state.engine`. Request
    bodies over `max_body_size` bytes get 413 (under a path prefix of `larger_bodies`: over
    its limit)."""
    app = FastAPI(
        title="onair",
        summary="The scheduler for radio stations and audio platforms.",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
        telemetry=NO_TELEMETRY,
        # The Tasks API's routes are the application's own rather than included routers:
        # FastAPI matches an included router's routes twice per request, with bookkeeping,
        # which was 10% of a `POST /tasks`. Their route class protects them (`TasksRoute`).
        routes=[
            route
            for router in (tasks.router, synchronizer.router, preview.router, events.router)
            for route in router.routes
        ],
    )
    install_reference_errors(app)
    app.include_router(metrics.router)
    ui.install(app)
    app.mount(
        "/api/v1",
        users.create_user_api(
            app, scheduler.router, preview.user_router, events.user_router, media.router
        ),
    )
    app.add_middleware(BodyLimit, limit=max_body_size, larger=larger_bodies or {})
    app.add_middleware(StripTrailingSlash)
    _documentation_last(app)
    return app


def _documentation_last(app: FastAPI) -> None:
    """Starlette tries routes in order, and FastAPI adds its documentation pages first: moved
    behind the API, they are no longer matched against every request."""
    pages = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    routes = app.router.routes
    routes.sort(key=lambda route: getattr(route, "path", None) in pages)  # stable: order kept

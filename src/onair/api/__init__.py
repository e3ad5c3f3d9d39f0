"""The HTTP surfaces. `create_api` assembles the routers onto one FastAPI application."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

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


def create_api(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """The application with both surfaces; `lifespan` provides `app.state.engine`."""
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
    app.add_middleware(StripTrailingSlash)
    _documentation_last(app)
    return app


def _documentation_last(app: FastAPI) -> None:
    """Starlette tries routes in order, and FastAPI adds its documentation pages first: moved
    behind the API, they are no longer matched against every request."""
    pages = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    routes = app.router.routes
    routes.sort(key=lambda route: getattr(route, "path", None) in pages)  # stable: order kept

"""The HTTP surfaces. `create_api` assembles the routers of both surfaces onto one FastAPI
application serving one node."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI

from onair.api import (
    asrun,
    documentation,
    events,
    ical,
    media,
    monitoring,
    preview,
    scheduler,
    simulation,
    tasks,
    ui,
    users,
)
from onair.api.deps import NO_TELEMETRY, ApiState
from onair.api.errors import Shape, install_errors
from onair.api.eventlog import EventLog
from onair.api.metrics import Metrics
from onair.api.middleware import BodyLimit, Gate, StripTrailingSlash, own_names
from onair.node import Node

UPLOADS = "/api/v1/sounds"
"""The one route whose body is not JSON (multipart), with its own size limit."""

DOCUMENTS = (
    "This page documents the **Tasks API** (`/tasks`, `/ping`: the broadcast scheduler's "
    "contract) and the node's monitoring. The **user API** (users' and admins' scheduled tasks, "
    "sounds, playlists, credits: `/api/v1/...`) has its own: "
    "[/api/v1/docs](/api/v1/docs) ([OpenAPI](/api/v1/openapi.json), "
    "[ReDoc](/api/v1/redoc))."
)
"""Where each surface's documents are, shown atop both documentation pages: a newcomer who
opens `/docs` finds the other surface from there."""


def create_api(node: Node, start: Callable[[Node], AbstractAsyncContextManager[Any]]) -> FastAPI:
    """The application serving `node`; `start(node)` runs the node for the application's
    lifespan. Watchers of the engine's events (metrics, the event stream's history) subscribe
    here, before the engine starts, so that they miss no run."""
    state = ApiState(
        node, Metrics(node.engine, node.asrun), EventLog(node.engine, node.settings.events)
    )
    node.synchronizer.watch(state.metrics.cycle)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with start(node):
            _freeze_what_starting_built()
            yield {"api": state}  # `request.state.api`, on the user API too

    app = documentation.application(
        title="onair",
        summary="The scheduler for radio stations and audio platforms.",
        description=DOCUMENTS,
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
        telemetry=NO_TELEMETRY,
        # The Tasks API's routes are the application's own rather than included routers:
        # FastAPI matches an included router's routes twice per request, with bookkeeping,
        # which was 10% of a `POST /tasks`.
        routes=[
            route
            for router in (
                ical.router,
                simulation.router,
                tasks.router,
                monitoring.tasks_router,
                preview.router,
                events.router,
                asrun.router,
            )
            for route in router.routes
        ],
    )
    install_errors(app, Shape.REFERENCE)
    app.openapi = documentation.tasks_openapi(app)  # type: ignore[method-assign]
    app.include_router(monitoring.router)
    app.include_router(ical.public_router)
    ui.install(app)
    user_api = users.create_user_api(
        scheduler.router,
        preview.user_router,
        events.user_router,
        media.router,
        asrun.user_router,
        ical.user_router,
        simulation.user_router,
    )
    app.mount("/api/v1", user_api)
    settings = node.settings
    app.add_middleware(
        BodyLimit,
        limit=settings.server.max_body_size,
        larger={UPLOADS: settings.audio.max_upload_size},
        timeout=settings.server.body_timeout.total_seconds(),
    )
    app.add_middleware(StripTrailingSlash)
    names = own_names(settings.server.host, settings.server.allowed_hosts)
    app.add_middleware(Gate, names=names, uploads=(UPLOADS,))
    _documentation_last(app)
    return app


def _freeze_what_starting_built() -> None:
    """Move every object alive once the node has started (modules, the application, the
    settings: about 140k) out of the garbage collector's reach (`gc.freeze`). A full
    collection, which a request that allocates much (the 100k ids of `GET /tasks`) sets off,
    then scans only what was made since, instead of holding the event loop for 30-100 ms
    and every run due meanwhile with it (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def _documentation_last(app: FastAPI) -> None:
    """Starlette tries routes in order, and FastAPI adds its documentation pages first: moved
    behind the API, they are no longer matched against every request."""
    routes = app.router.routes
    routes.sort(key=lambda route: getattr(route, "path", None) in documentation.PAGES)  # stable

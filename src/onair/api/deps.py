"""What the routers and the applications share: dependency aliases, FastAPI settings."""

from __future__ import annotations

from fastapi import Request
from fastapi.telemetry import TelemetryConfig

from onair.engine.core import Engine


def engine_of(request: Request) -> Engine:
    """The node's engine. Routes take their `Request` and read it here rather than through a
    dependency (`Depends`): FastAPI solves dependencies anew on every request, and this one
    alone was 6% of a `POST /tasks`."""
    engine: Engine = request.app.state.engine
    return engine


NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry hooks, off: onair exports its metrics at `/metrics`, and the
check whether a tracer is configured would otherwise run on every request."""

"""What the routers and the applications share: dependency aliases, FastAPI settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.telemetry import TelemetryConfig

from onair.engine.core import Engine


async def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(_engine)]

NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""FastAPI's own OpenTelemetry hooks, off: onair exports its metrics at `/metrics`, and the
check whether a tracer is configured would otherwise run on every request."""

"""What operators watch: `GET /metrics` (Prometheus text, open like `/ping`: counts only) and
`GET /synchronizer`, what this node's synchronizer did last and when it runs next.

The synchronizer's state is this node's, in memory: on several nodes, each shows its own last
cycle, and a node that did not get the lock says so (`last.held` is false). It is a Tasks API
route: open or protected like `/tasks`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from onair.api.deps import CallerDep, MetricsDep, SynchronizerDep, node_of
from onair.api.routing import TasksRoute
from onair.operations.readiness import upcoming
from onair.timeutil import naive_utc

router = APIRouter()


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(found: MetricsDep) -> Response:
    """This node's metrics in Prometheus text format (open, like `/ping`: counts only)."""
    return Response(await found.exposition(), media_type=CONTENT_TYPE_LATEST)


class CyclePublic(BaseModel):
    at: datetime = Field(description="When the cycle started (naive UTC).")
    finished: datetime = Field(description="When it ended (naive UTC).")
    held: bool = Field(
        description="This node held the lock and synchronized; false: another node did."
    )
    expected: int | None = Field(description="Instances in the window that need a stream task.")
    added: list[UUID] = Field(description="Stream tasks added.")
    cancelled: list[UUID] = Field(description="Stream tasks cancelled.")
    failures: list[str] = Field(description="Single changes that failed, with why.")
    error: str | None = Field(description="Why the whole cycle failed (nothing was changed).")


class SynchronizerState(BaseModel):
    enabled: bool
    interval: timedelta = Field(description="Time between cycles (ISO 8601 duration).")
    window: timedelta = Field(description="How far ahead each cycle looks.")
    lead: timedelta = Field(description="How long before a broadcast its stream task starts.")
    last: CyclePublic | None = Field(description="The latest cycle on this node, if any.")
    next: datetime | None = Field(description="The next cycle (naive UTC), while enabled.")


tasks_router = APIRouter(tags=["synchronizer"], route_class=TasksRoute)


@tasks_router.get("/synchronizer")
async def synchronizer_state(_: CallerDep, synchronizer: SynchronizerDep) -> SynchronizerState:
    last = synchronizer.last
    upcoming = synchronizer.next
    return SynchronizerState(
        enabled=synchronizer.settings.enabled,
        interval=synchronizer.settings.interval,
        window=synchronizer.settings.window,
        lead=synchronizer.lead,
        last=None if last is None else CyclePublic.model_validate(last.as_json()),
        next=None if upcoming is None else naive_utc(upcoming),
    )


class BroadcastReadiness(BaseModel):
    task_id: UUID = Field(description="The broadcast's stream task.")
    event: UUID
    start: str = Field(description="The instance's start, naive wall time in its zone.")
    due: str | None = Field(description="When the stream task runs (UTC).")
    state: str = Field(description="ready, at_risk, or unchecked (before its first lead).")
    reasons: list[dict[str, str]] = Field(description="`{check, message}` of each problem.")
    lead_seconds: float | None = Field(description="The lead of the latest check.")
    checked_at: str | None = Field(description="When the latest check ended (UTC).")


@tasks_router.get("/readiness")
async def readiness(_: CallerDep, request: Request) -> list[BroadcastReadiness]:
    """The readiness of every upcoming broadcast, soonest first (docs/broadcasts.md)."""
    found = await upcoming(node_of(request).engine)
    return [BroadcastReadiness.model_validate(item) for item in found]

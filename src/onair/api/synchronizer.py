"""`GET /synchronizer`: what this node's synchronizer did last and when it runs next.

The state is this node's, in memory: on several nodes, each shows its own last cycle, and a
node that did not get the lock says so (`last.held` is false).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from onair.api.tasks import TasksRoute
from onair.broadcast.synchronizer import Synchronizer
from onair.timeutil import naive_utc

router = APIRouter(tags=["synchronizer"], route_class=TasksRoute)


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


async def _synchronizer(request: Request) -> Synchronizer:
    synchronizer: Synchronizer = request.app.state.services.synchronizer
    return synchronizer


SynchronizerDep = Annotated[Synchronizer, Depends(_synchronizer)]


@router.get("/synchronizer")
async def synchronizer_state(synchronizer: SynchronizerDep) -> SynchronizerState:
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

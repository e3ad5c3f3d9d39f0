"""A simulated window (`onair.engine.simulation`): `POST /tasks/simulate` on the Tasks API
(instants naive UTC, as the rest of `/tasks`) and `POST /api/v1/scheduler/simulate` on the user
API (aware UTC), each over the caller's tasks (an admin's: every task). Nothing is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field

from onair.api.deps import CurrentUser, ServiceDep, as_caller, caller_of, service_of
from onair.api.models import NaiveUTC
from onair.api.routing import TasksRoute
from onair.engine import simulation as engine
from onair.engine.admission import Caller
from onair.tasks import TaskService
from onair.timeutil import UTCInstant

MAX_DAYS = 31


class SimulateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: datetime | None = Field(
        None, description="Where the window begins (default: now; naive: UTC); not before now."
    )
    days: float = Field(7, gt=0, le=MAX_DAYS, description="How long the window is, in days.")


class SimulatedRun(BaseModel):
    task: UUID
    name: str
    operation: str
    due: NaiveUTC
    local: str = Field(description="The same instant in the task's zone, with its offset.")
    outcome: engine.Outcome = Field(description="run, skipped, paused or missed.")
    note: str | None = Field(description="A DST note, a move's origin, or why it does not run.")
    until: NaiveUTC | None = Field(description="Until when it holds its task's resource.")

    @classmethod
    def of(cls, item: engine.Occurrence) -> SimulatedRun:
        return cls(
            task=item.task.id,
            name=item.task.name or item.task.operation.type,
            operation=item.task.operation.type,
            due=item.due,
            local=item.local.isoformat(),
            outcome=item.outcome,
            note=item.note,
            until=item.until,
        )


class SimulatedConflict(BaseModel):
    resource: str
    first: UUID = Field(description="The task whose run holds the resource first.")
    second: UUID = Field(description="The task whose run would need it meanwhile.")
    at: NaiveUTC = Field(description="When the second run is due.")

    @classmethod
    def of(cls, conflict: engine.Conflict) -> SimulatedConflict:
        return cls(
            resource=conflict.resource,
            first=conflict.first.task.id,
            second=conflict.second.task.id,
            at=conflict.second.due,
        )


class Simulation(BaseModel):
    start: NaiveUTC
    end: NaiveUTC
    runs: list[SimulatedRun]
    conflicts: list[SimulatedConflict]
    truncated: bool = Field(description="Some tasks or occurrences were left out (bounds).")


class UserSimulatedRun(SimulatedRun):
    due: UTCInstant
    until: UTCInstant | None


class UserSimulatedConflict(SimulatedConflict):
    at: UTCInstant


class UserSimulation(BaseModel):
    start: UTCInstant
    end: UTCInstant
    runs: list[UserSimulatedRun]
    conflicts: list[UserSimulatedConflict]
    truncated: bool


async def run(service: TaskService, caller: Caller, body: SimulateRequest) -> engine.Simulation:
    """The simulation `body` asks of `caller`'s tasks (a start before now begins now)."""
    now = service.engine.clock.now()
    start = now if body.start is None else body.start
    start = max(start if start.tzinfo else start.replace(tzinfo=UTC), now)
    return await service.simulate(caller, start, start + timedelta(days=body.days))


router = APIRouter(route_class=TasksRoute)


@router.post("/tasks/simulate", operation_id="TasksSimulate", tags=["tasks"])
async def simulate(body: SimulateRequest, request: Request) -> Simulation:
    """onair: every run the caller's tasks would have in a window (default: the next 7 days),
    with the policies applied, and what would conflict. Nothing is stored or run."""
    found = await run(service_of(request), await caller_of(request), body)
    return Simulation(
        start=found.start,
        end=found.end,
        runs=[SimulatedRun.of(o) for o in found.occurrences],
        conflicts=[SimulatedConflict.of(c) for c in found.conflicts],
        truncated=found.truncated,
    )


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.post("/simulate")
async def simulate_user(
    body: Annotated[SimulateRequest, Body()], user: CurrentUser, scheduler: ServiceDep
) -> UserSimulation:
    """Every run the caller's tasks (an admin's: every task) would have in a window (default:
    the next 7 days), with the policies applied, and what would conflict."""
    found = await run(scheduler, as_caller(user), body)
    return UserSimulation(
        start=found.start,
        end=found.end,
        runs=[
            UserSimulatedRun.model_validate(SimulatedRun.of(o), from_attributes=True)
            for o in found.occurrences
        ],
        conflicts=[
            UserSimulatedConflict.model_validate(SimulatedConflict.of(c), from_attributes=True)
            for c in found.conflicts
        ],
        truncated=found.truncated,
    )

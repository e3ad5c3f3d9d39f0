"""Rule previews: the instants a condition would run at, before a task is trusted with it.

`POST /tasks/preview` takes a condition exactly as `POST /tasks` does (same 400 answers) and
`POST /api/v1/scheduler/preview` takes the seed's schedule fields. Both answer what the
engine would then run for a task added now: a series skips the occurrences before its
creation, as `Engine.add` does, and its `count` counts from there. DST moves come with a note.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from onair.api.deps import CurrentUser, ServiceDep, caller_of, service_of
from onair.api.models import NaiveUTC, Specification
from onair.api.routing import TasksRoute
from onair.engine.conditions import parse_condition, problems_of
from onair.engine.policies import Policy
from onair.engine.preview import PreviewItem, upcoming
from onair.engine.words import describe
from onair.errors import InvalidParameters
from onair.timeutil import UTCInstant
from onair.wire import TaskCreate, TaskType, seed_words

MAX_COUNT = 500


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    condition: Specification
    count: int = Field(10, ge=1, le=MAX_COUNT, description="How many instants (at most).")
    policy: dict[str, Any] | None = Field(
        None, description="The task's policy overrides; its `dst_gap` and `dst_fold` apply."
    )


class Instant(BaseModel):
    utc: NaiveUTC = Field(description="The due instant, naive UTC like the rest of /tasks.")
    local: str = Field(description="The same instant in the condition's zone, with its offset.")
    note: str | None = Field(description="Why it moved (DST gap) or is ambiguous (DST fold).")

    @classmethod
    def of(cls, item: PreviewItem) -> Instant:
        return cls(utc=item.utc, local=item.local.isoformat(), note=item.note)


class Preview(BaseModel):
    description: str = Field(description="The condition in words.")
    instants: list[Instant]


router = APIRouter(route_class=TasksRoute)


@router.post("/tasks/preview", operation_id="TasksPreview", tags=["tasks"])
async def preview_condition(body: PreviewRequest, request: Request) -> Preview:
    """onair: the next instants of a condition, for a task added now (nothing is stored)."""
    await caller_of(request)  # open or protected as the rest of the Tasks API
    condition = parse_condition(body.condition.type, dict(body.condition.parameters))
    engine = service_of(request).engine
    policy = None
    if body.policy:
        try:
            policy = Policy().merged(body.policy).model_dump(include={"dst_gap", "dst_fold"})
        except ValidationError as error:
            raise InvalidParameters(problems_of(error, "policy")) from error
    now, floor = engine.clock.now(), engine.settings.min_interval
    items = upcoming(condition, now, body.count, floor, policy)
    return Preview(description=describe(condition), instants=[Instant.of(item) for item in items])


class SchedulePreview(TaskCreate):
    """The schedule fields of a task create request; `name`, `task_type` and `parameters` may
    be sent too (so a form can preview what it is about to create) and are ignored."""

    name: str = Field("preview", min_length=1, max_length=256)
    task_type: TaskType = TaskType.PLAY_SOUND
    count: int = Field(10, ge=1, le=MAX_COUNT, description="How many instants (at most).")


class SeedInstant(BaseModel):
    utc: UTCInstant
    local: str
    note: str | None

    @classmethod
    def of(cls, item: PreviewItem) -> SeedInstant:
        return cls(utc=item.utc, local=item.local.isoformat(), note=item.note)


class SeedPreview(BaseModel):
    description: str = Field(description="The schedule in words.")
    instants: list[SeedInstant]


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.post("/preview")
async def preview_schedule(
    request: Annotated[SchedulePreview, Body()], user: CurrentUser, scheduler: ServiceDep
) -> SeedPreview:
    """The next instants of a schedule, for a task created now (nothing is stored). Errors
    name the request's fields, as creating the task would."""
    condition = request.parsed_condition()
    engine = scheduler.engine
    now, floor = engine.clock.now(), engine.settings.min_interval
    with seed_words():  # the request's DST policy applies, as it would to the task
        items = upcoming(condition, now, request.count, floor, request.overrides())
    return SeedPreview(
        description=describe(condition), instants=[SeedInstant.of(item) for item in items]
    )

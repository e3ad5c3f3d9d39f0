"""The iCalendar feeds (`onair.ical`): each caller makes, rotates and revokes the secret URL of
their own feed (`POST` / `DELETE /tasks/feed` on the Tasks API, `/api/v1/scheduler/feed` on
the user API), and calendar apps read `GET /calendar/{secret}.ics`, which needs no token: the
secret is the credential."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from onair.api.deps import CurrentUser, ServiceDep, as_caller, caller_of, service_of
from onair.api.routing import TasksRoute
from onair.engine.admission import Caller
from onair.ical import Feeds


class FeedURL(BaseModel):
    url: str = Field(
        description=(
            "The feed's secret URL, shown this once: subscribe to it from a calendar app. "
            "Making a new one revokes this one."
        )
    )


def _url(request: Request, secret: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/calendar/{secret}.ics"


async def _rotate(request: Request, caller: Caller, feeds: Feeds) -> FeedURL:
    return FeedURL(url=_url(request, await feeds.rotate(caller)))


router = APIRouter(route_class=TasksRoute)


@router.post("/tasks/feed", status_code=201, operation_id="TasksFeed", tags=["tasks"])
async def make_feed(request: Request) -> FeedURL:
    """onair: a new secret URL of the caller's iCalendar feed (an admin's: every task; the
    open Tasks API's: the system's), revoking the one before."""
    caller = await caller_of(request)
    return await _rotate(request, caller, Feeds(service_of(request).engine))


@router.delete("/tasks/feed", status_code=204, operation_id="TasksFeedRevoke", tags=["tasks"])
async def revoke_feed(request: Request) -> Response:
    """onair: revoke the caller's feed URL (204 even when there was none)."""
    await Feeds(service_of(request).engine).revoke(await caller_of(request))
    return Response(status_code=204)


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.post("/feed", status_code=201)
async def make_user_feed(request: Request, user: CurrentUser, scheduler: ServiceDep) -> FeedURL:
    """A new secret URL of the caller's own iCalendar feed (an admin's: every task), revoking
    the one before."""
    return await _rotate(request, as_caller(user), Feeds(scheduler.engine))


@user_router.delete("/feed", status_code=204)
async def revoke_user_feed(user: CurrentUser, scheduler: ServiceDep) -> Response:
    """Revoke the caller's feed URL (204 even when there was none)."""
    await Feeds(scheduler.engine).revoke(as_caller(user))
    return Response(status_code=204)


public_router = APIRouter(include_in_schema=False)


@public_router.get("/calendar/{secret}.ics")
async def calendar(secret: str, request: Request) -> Response:
    """The feed of `secret`; 404 once it has been rotated or revoked."""
    body = await Feeds(service_of(request).engine).calendar(secret)
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"cache-control": "private, max-age=300", "referrer-policy": "no-referrer"},
    )

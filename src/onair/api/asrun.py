"""The as-run log over HTTP (`onair.audio.asrun`): what went on air in a time range, as JSON
pages or as a CSV export.

`GET /asrun` (Tasks API) is the station's log: the station and admins read every item. `GET
/api/v1/scheduler/asrun` gives a user their own items and an admin every item. Both take the
range as `from` and `to` (ISO 8601; naive is UTC; by default the last 24 hours), items being
those *planned* in [from, to), in planned order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from onair.api.deps import AsRunDep, CallerDep, CurrentUser
from onair.api.routing import TasksRoute
from onair.audio.asrun import MAX_EXPORT, AsRun, to_csv
from onair.timeutil import as_utc

From = Annotated[
    datetime | None,
    Query(alias="from", description="Start of the range (planned instants; default: 24 h ago)."),
]
To = Annotated[datetime | None, Query(description="End of the range, excluded (default: now).")]
Format = Annotated[
    Literal["json", "csv"], Query(description="json: a page of items; csv: all of them.")
]
PageLimit = Annotated[int, Query(ge=1, le=1000, description="Items per JSON page.")]
PageOffset = Annotated[int, Query(ge=0, le=MAX_EXPORT, description="Items to skip.")]


class AsRunPage(BaseModel):
    items: list[dict[str, Any]] = Field(description="As-run items (docs/operations.md).")
    total: int
    limit: int
    offset: int
    since: datetime = Field(serialization_alias="from")
    until: datetime = Field(serialization_alias="to")


async def _answer(
    log: AsRun,
    owner: str | None,
    since: datetime | None,
    until: datetime | None,
    form: str,
    limit: int,
    offset: int,
) -> Response | AsRunPage:
    now = datetime.now(UTC)
    end = now if until is None else as_utc(until)
    start = end - timedelta(days=1) if since is None else as_utc(since)
    if form == "csv":
        items, _ = await log.page(start, end, owner, limit=MAX_EXPORT)
        name = f"asrun_{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}.csv"
        return Response(
            to_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )
    items, total = await log.page(start, end, owner, limit=limit, offset=offset)
    return AsRunPage(
        items=[item.as_json() for item in items],
        total=total,
        limit=limit,
        offset=offset,
        since=start,
        until=end,
    )


router = APIRouter(route_class=TasksRoute)


@router.get("/asrun", tags=["asrun"], response_model=AsRunPage, response_model_by_alias=True)
async def station_asrun(
    caller: CallerDep,
    log: AsRunDep,
    since: From = None,
    to: To = None,
    format: Format = "json",
    limit: PageLimit = 100,
    offset: PageOffset = 0,
) -> Response | AsRunPage:
    """The station's as-run log: every item for the station and admins (a user's token, where
    the Tasks API takes one, reads that user's own)."""
    owner = None if caller.owner is None or caller.admin else caller.owner
    return await _answer(log, owner, since, to, format, limit, offset)


user_router = APIRouter(prefix="/scheduler", tags=["scheduler"])


@user_router.get("/asrun", response_model=AsRunPage, response_model_by_alias=True)
async def my_asrun(
    user: CurrentUser,
    log: AsRunDep,
    since: From = None,
    to: To = None,
    format: Format = "json",
    limit: PageLimit = 100,
    offset: PageOffset = 0,
) -> Response | AsRunPage:
    """The caller's items of the as-run log (an admin: every item)."""
    owner = None if user.is_admin else user.user_id
    return await _answer(log, owner, since, to, format, limit, offset)

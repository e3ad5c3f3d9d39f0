"""The operator's dashboard at `/ui`: server-rendered page shells (Jinja2) and a little plain
JavaScript that reads `/ui/api/...` and follows the event stream, so there is no build step.

The pages hold no data. The JSON they read needs what the APIs need: nothing while the Tasks
API is open, otherwise a token (a `Bearer` header, or the `access_token` cookie); an admin
sees every task, a user only their own. Cancelling goes through the real APIs
(`DELETE /tasks/{id}` or `DELETE /api/v1/scheduler/tasks/{id}`), with their rights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from onair.api.deps import caller_of, node_of, service_of
from onair.api.ui.views import media_of, overview, task_page, week
from onair.engine.admission import Caller

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)


def _protected(request: Request) -> bool:
    return node_of(request).settings.auth.protect_tasks_api


async def _viewer(request: Request) -> Caller:
    """Who reads: as on the Tasks API, but a user's token is honoured while it is protected
    too (they see their own tasks)."""
    return await caller_of(request, users=True)


ViewerDep = Annotated[Caller, Depends(_viewer)]


PAGE_HEADERS = {
    "cache-control": "no-store",
    # No page of another site may frame the dashboard (clickjacking its cancel buttons), and
    # the pages run only their own scripts and styles, and talk only to this node.
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {
            "protected": _protected(request),
            "zone": node_of(request).settings.ui.timezone,
            **context,
        },
        headers=PAGE_HEADERS,
    )


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    return _page(request, "dashboard.html")


@router.get("/week", response_class=HTMLResponse)
async def week_view(request: Request) -> HTMLResponse:
    return _page(request, "week.html")


@router.get("/api/week")
async def week_data(request: Request, who: ViewerDep) -> dict[str, Any]:
    return await week(service_of(request), who)


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task(request: Request, task_id: UUID) -> HTMLResponse:
    return _page(request, "task.html", task_id=str(task_id))


@router.get("/api/overview")
async def overview_data(request: Request, who: ViewerDep) -> dict[str, Any]:
    return await overview(service_of(request), who, node_of(request).asrun)


@router.get("/api/tasks/{task_id}")
async def task_data(task_id: UUID, request: Request, who: ViewerDep) -> dict[str, Any]:
    data = await task_page(service_of(request), who, task_id)
    parameters = data["task"]["operation_parameters"]
    data["task"]["media"] = await media_of(node_of(request).library, parameters)
    return data


def install(app: FastAPI) -> None:
    """Serve the dashboard on `app`: the pages, their JSON and the static files."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

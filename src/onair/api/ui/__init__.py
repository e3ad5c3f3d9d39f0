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

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from onair.accounts.tokens import Authenticator
from onair.api.deps import engine_of
from onair.api.ui.views import Viewer, overview, task_page
from onair.errors import Unauthorized

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get("access_token") or None


def _protected(request: Request) -> bool:
    return bool(request.app.state.services.settings.auth.protect_tasks_api)


async def viewer(request: Request) -> Viewer:
    """Who reads: a token is honoured when given (user: own tasks, admin: all); without one,
    everything while the Tasks API is open, and 401 once it is protected."""
    protected = _protected(request)
    token = _token(request)
    if token is None:
        if protected:
            raise HTTPException(401, "send a token", {"WWW-Authenticate": "Bearer"})
        return Viewer(protected=False)
    authenticator: Authenticator = request.app.state.authenticator
    try:
        principal = authenticator.verify(token)
    except Unauthorized as error:
        raise HTTPException(401, str(error), {"WWW-Authenticate": "Bearer"}) from None
    user = None if principal.is_admin else principal.user_id
    return Viewer(user=user, role=principal.role.value, protected=protected)


ViewerDep = Annotated[Viewer, Depends(viewer)]


def _page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {"protected": _protected(request), **context},
        headers={"cache-control": "no-store"},
    )


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    return _page(request, "dashboard.html")


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task(request: Request, task_id: UUID) -> HTMLResponse:
    return _page(request, "task.html", task_id=str(task_id))


@router.get("/api/overview")
async def overview_data(request: Request, who: ViewerDep) -> dict[str, Any]:
    return await overview(engine_of(request), who)


@router.get("/api/tasks/{task_id}")
async def task_data(task_id: UUID, request: Request, who: ViewerDep) -> dict[str, Any]:
    return await task_page(engine_of(request), who, task_id)


def install(app: FastAPI) -> None:
    """Serve the dashboard on `app`: the pages, their JSON and the static files."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

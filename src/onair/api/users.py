"""The user-facing surface, mounted at `/api/v1`: who is calling (JWT in the `access_token`
cookie or an `Authorization: Bearer` header), `/users/me`, and this surface's errors.

It is its own FastAPI application so that its errors are FastAPI's (`{"detail": ...}`, 422
with field paths) while the Tasks API keeps the reference's shape. It reads the node's parts
from the parent application's state (set by the composition root's lifespan). Domain errors
are mapped to HTTP once, in `create_user_api`; routes never catch.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.datastructures import State

from onair.accounts.credits import Accounts, CreditTransaction, User
from onair.accounts.tokens import Authenticator, Principal, Role
from onair.api.deps import NO_TELEMETRY
from onair.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OnairError,
    Unauthorized,
)
from onair.scheduler import SchedulerService
from onair.timeutil import UTCInstant

log = logging.getLogger("onair.api")

_bearer = HTTPBearer(auto_error=False, description="A JWT: `Authorization: Bearer <token>`.")
_cookie = APIKeyCookie(
    name="access_token", auto_error=False, description="A JWT in the `access_token` cookie."
)


def _node(request: Request) -> State:
    """The state of the application this surface is mounted on."""
    parent: FastAPI = request.app.state.parent
    return parent.state


def _token(bearer: HTTPAuthorizationCredentials | None, cookie: str | None) -> str:
    """The caller's token: the Authorization header wins over the cookie.

    Raises: Unauthorized, when there is neither."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    if cookie:
        return cookie
    raise Unauthorized("send a JWT as `Authorization: Bearer <token>` or the access_token cookie")


async def _principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    """The verified caller; their account is created on first use."""
    node = _node(request)
    authenticator: Authenticator = node.authenticator
    principal = authenticator.verify(_token(bearer, cookie))
    accounts: Accounts = node.services.accounts
    await accounts.ensure(principal)
    return principal


CurrentUser = Annotated[Principal, Depends(_principal)]


async def _admin(principal: CurrentUser) -> Principal:
    principal.require_admin()
    return principal


AdminUser = Annotated[Principal, Depends(_admin)]


async def _scheduler(request: Request) -> SchedulerService:
    node = _node(request)
    return SchedulerService(node.engine, node.services.play_checks)


async def _accounts(request: Request) -> Accounts:
    accounts: Accounts = _node(request).services.accounts
    return accounts


SchedulerDep = Annotated[SchedulerService, Depends(_scheduler)]
AccountsDep = Annotated[Accounts, Depends(_accounts)]


def protect_tasks_api(request: Request) -> None:
    """On the Tasks API: require an admin token when `auth.protect_tasks_api` is on (`/ping`
    stays open for health checks). Answers in the Tasks API's own error shape, and reads the
    token without security dependencies so that the Tasks API's OpenAPI stays the reference's."""
    services = request.app.state.services
    if not services.settings.auth.protect_tasks_api or request.scope["path"] == "/ping":
        return
    authenticator: Authenticator = request.app.state.authenticator
    try:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        bearer = (
            HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials.strip())
            if scheme.lower() == "bearer"
            else None
        )
        principal = authenticator.verify(_token(bearer, request.cookies.get("access_token")))
        principal.require_admin()
    except Unauthorized as error:
        raise HTTPException(401, str(error), {"WWW-Authenticate": "Bearer"}) from None
    except Forbidden as error:
        raise HTTPException(403, str(error)) from None


# /users ---------------------------------------------------------------------------------------


class PlanPublic(BaseModel):
    credits: int
    max_credits: int


class UserPublic(BaseModel):
    id: str
    role: Role
    credits: int
    plan: PlanPublic
    created_at: UTCInstant
    updated_at: UTCInstant

    @classmethod
    def of(cls, user: User) -> UserPublic:
        return cls(
            id=user.id,
            role=user.role,
            credits=user.credits,
            plan=PlanPublic(credits=user.plan.credits, max_credits=user.plan.max_credits),
            created_at=user.created_at,
            updated_at=user.updated_at,
        )


class TransactionPublic(BaseModel):
    id: str
    reason: str
    amount: int
    balance: int
    task_id: str | None
    run_id: str | None
    created_at: UTCInstant

    @classmethod
    def of(cls, t: CreditTransaction) -> TransactionPublic:
        return cls(
            id=str(t.id),
            reason=t.reason,
            amount=t.amount,
            balance=t.balance,
            task_id=None if t.task_id is None else str(t.task_id),
            run_id=None if t.run_id is None else str(t.run_id),
            created_at=t.created_at,
        )


class TransactionPage(BaseModel):
    transactions: list[TransactionPublic]
    total: int
    limit: int
    offset: int


router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
async def me(user: CurrentUser, accounts: AccountsDep) -> UserPublic:
    """The caller's account: role, credit balance and plan."""
    found = await accounts.get(user.user_id)
    assert found is not None  # the dependency created it
    return UserPublic.of(found)


@router.get("/me/credit-transactions")
async def my_transactions(
    user: CurrentUser,
    accounts: AccountsDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TransactionPage:
    """The caller's credit movements, newest first."""
    page, total = await accounts.transactions(user.user_id, limit=limit, offset=offset)
    return TransactionPage(
        transactions=[TransactionPublic.of(t) for t in page],
        total=total,
        limit=limit,
        offset=offset,
    )


# The application and its errors ---------------------------------------------------------------


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def create_user_api(parent: FastAPI, *routers: APIRouter) -> FastAPI:
    """The `/api/v1` application: `/users` and `routers`, reading the node from `parent`."""
    api = FastAPI(
        title="onair user API",
        summary="Users' and admins' scheduled tasks, accounts and credits (seed 004).",
        version="0.1.0",
        redirect_slashes=False,
        telemetry=NO_TELEMETRY,
    )
    api.state.parent = parent
    api.include_router(router)
    for extra in routers:
        api.include_router(extra)

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})

    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        return _error(403, str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(404, str(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return _error(409, str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidInput)
        problems = [(p.key, p.message) for p in exc.problems] or [(None, str(exc))]
        return _error(
            422,
            [
                {"type": "value_error", "loc": ["body", *(key.split(".") if key else [])], "msg": m}
                for key, m in problems
            ],
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "Internal Server Error")

    api.add_exception_handler(Unauthorized, unauthorized)
    api.add_exception_handler(Forbidden, forbidden)
    api.add_exception_handler(NotFound, not_found)
    api.add_exception_handler(Conflict, conflict)
    api.add_exception_handler(InvalidInput, invalid)
    api.add_exception_handler(OnairError, unexpected)
    api.add_exception_handler(Exception, unexpected)
    return api

"""The user-facing surface, mounted at `/api/v1`: `/users/me` and the application that holds
the surface's routers.

It is its own FastAPI application so that its errors are FastAPI's (`{"detail": ...}`, 422
with field paths) while the Tasks API keeps the reference's shape (`onair.api.errors`). Who is
calling is `onair.api.deps`'s (a JWT in the `access_token` cookie or an `Authorization:
Bearer` header).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from onair.accounts.credits import CreditTransaction, User
from onair.accounts.roles import Role
from onair.api import documentation
from onair.api.deps import NO_TELEMETRY, AccountsDep, CurrentUser, Limit, Offset
from onair.api.errors import Shape, install_errors
from onair.timeutil import UTCInstant

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
    limit: Limit = 50,
    offset: Offset = 0,
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


def create_user_api(*routers: APIRouter) -> FastAPI:
    """The `/api/v1` application: `/users` and `routers`, answering errors in FastAPI's
    shape. It reads the node from the lifespan state its parent hands down with each request."""
    api = documentation.application(
        title="onair user API",
        summary="Users' and admins' scheduled tasks, accounts and credits (seed 004).",
        description=(
            "This page documents the **user API** (`/api/v1/...`). The **Tasks API** "
            "(`/tasks`, `/ping`) and the monitoring routes have their own: [/docs](/docs) "
            "([OpenAPI](/openapi.json), [ReDoc](/redoc))."
        ),
        version="0.1.0",
        redirect_slashes=False,
        telemetry=NO_TELEMETRY,
    )
    api.include_router(router)
    for extra in routers:
        api.include_router(extra)
    install_errors(api, Shape.FASTAPI)
    return api

"""Users and their credits.

A user is known by the `sub` of their token and is created on first use, with the default plan
from the settings and that plan's credits as the opening balance. A plan says how many credits
a recharge adds and the balance a recharge never goes beyond (a balance already above it is
left alone, not cut).

Recharges are idempotent per occurrence: each credited user gets one transaction keyed by
(occurrence, user id) under a unique constraint, written in the same database transaction as
the new balance. Running the same occurrence again (a retry, a run interrupted after its
commit and run again) credits nobody twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from onair.accounts.roles import Role
from onair.accounts.tokens import Principal
from onair.config import PlanSettings
from onair.store import accounts as queries
from onair.store.database import Store
from onair.timeutil import Clock, SystemClock

_PAGE = 1000
"""Users locked and credited per statement during a recharge of everyone."""


@dataclass(frozen=True)
class Plan:
    credits: int
    max_credits: int

    def recharged(self, balance: int) -> int:
        """The balance after one recharge: `credits` more, up to `max_credits`."""
        if balance >= self.max_credits:
            return balance
        return min(balance + self.credits, self.max_credits)


@dataclass(frozen=True)
class User:
    id: str
    role: Role
    credits: int
    plan: Plan
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> User:
        return cls(
            id=row["id"],
            role=Role(row["role"]),
            credits=row["credits"],
            plan=Plan(row["plan_credits"], row["plan_max_credits"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class CreditTransaction:
    id: UUID
    user_id: str
    run_id: UUID | None
    task_id: UUID | None
    occurrence: UUID | None
    """The key of what this movement is for (a recharge's task occurrence)."""
    reason: str
    amount: int
    """Credits added (0 when the balance was already at the plan's maximum)."""
    balance: int
    """The balance after this movement."""
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> CreditTransaction:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class Accounts:
    """Users and credits on one store."""

    def __init__(
        self, store: Store, plan: PlanSettings | None = None, clock: Clock | None = None
    ) -> None:
        self.store = store
        default = plan or PlanSettings()
        self.plan = Plan(default.credits, default.max_credits)
        self.clock = clock or SystemClock()

    async def ensure(self, principal: Principal) -> User:
        """The user a token speaks for, created on first use; their role follows the token."""
        now = self.clock.now()
        async with self.store.begin() as conn:
            row = await queries.get_user(conn, principal.user_id)
            if row is None:
                await queries.insert_user(
                    conn,
                    {
                        "id": principal.user_id,
                        "role": principal.role.value,
                        "credits": self.plan.credits,
                        "plan_credits": self.plan.credits,
                        "plan_max_credits": self.plan.max_credits,
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            elif row["role"] != principal.role.value:
                await queries.set_role(conn, principal.user_id, principal.role.value, now)
            row = await queries.get_user(conn, principal.user_id)
        assert row is not None
        return User.from_row(row)

    async def get(self, user_id: str) -> User | None:
        async with self.store.begin() as conn:
            row = await queries.get_user(conn, user_id)
        return None if row is None else User.from_row(row)

    async def recharge(
        self,
        occurrence: UUID,
        *,
        run_id: UUID | None = None,
        task_id: UUID | None = None,
        user_id: str | None = None,
    ) -> list[CreditTransaction]:
        """Recharge one user (`user_id`) or everyone (None) by their plan, all in one database
        transaction, once per `occurrence`. Returns the transactions this call recorded: none
        for users that a recharge for `occurrence` had already credited."""
        now = self.clock.now()
        recorded: list[CreditTransaction] = []
        after: str | None = None
        async with self.store.begin() as conn:
            while True:
                rows = await queries.unrecharged_users(conn, occurrence, user_id, after, _PAGE)
                if not rows:
                    return recorded
                page = [
                    CreditTransaction(
                        id=uuid.uuid4(),
                        user_id=row["id"],
                        run_id=run_id,
                        task_id=task_id,
                        occurrence=occurrence,
                        reason="recharge",
                        amount=balance - row["credits"],
                        balance=balance,
                        created_at=now,
                    )
                    for row in rows
                    for balance in [User.from_row(row).plan.recharged(row["credits"])]
                ]
                await queries.insert_transactions(conn, [vars(t) for t in page])
                await queries.set_balances(conn, {t.user_id: t.balance for t in page}, now)
                recorded += page
                after = rows[-1]["id"]

    async def transactions(
        self, user_id: str, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[CreditTransaction], int]:
        """A page of the user's credit movements, newest first, and how many there are."""
        async with self.store.begin() as conn:
            rows, total = await queries.list_transactions(conn, user_id, limit=limit, offset=offset)
        return [CreditTransaction.from_row(r) for r in rows], total

    async def spend(
        self, user_id: str, *, run_id: UUID, task_id: UUID, cost: int, wanted: int
    ) -> int:
        """Take `cost` credits for each of up to `wanted` items from `user_id`, as many as the
        balance pays for, into the run's one transaction (keyed by `run_id`). Returns how many
        items are paid for: 0 when not even one (nothing changes; also for an unknown user)."""
        async with self.store.begin() as conn:
            return await queries.reserve(
                conn, user_id, run_id, task_id, "play", cost, wanted, self.clock.now()
            )

    async def refund(self, user_id: str, *, run_id: UUID, credits: int) -> None:
        """Give back `credits` of what run `run_id` took from `user_id` (items it did not
        play); a run that spent nothing in the end leaves no transaction."""
        if credits <= 0:
            return
        async with self.store.begin() as conn:
            await queries.refund(conn, user_id, run_id, credits, self.clock.now())

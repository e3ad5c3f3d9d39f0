"""The accounts' statements (`onair.accounts.credits` is their only user: the only writer of
users and their credits), by name. Each takes an open connection (the caller owns the
transaction) and returns plain rows or values."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from onair.store.database import Connection
from onair.store.schema import credit_transactions, users


async def get_user(conn: Connection, user_id: str) -> RowMapping | None:
    return (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()


async def insert_user(conn: Connection, values: Mapping[str, Any]) -> bool:
    """Add a user; False (and the transaction still usable) when the id is taken, e.g. by a
    concurrent first request of the same user."""
    try:
        async with conn.begin_nested():
            await conn.execute(insert(users), [dict(values)])
    except IntegrityError:
        return False
    return True


async def set_role(conn: Connection, user_id: str, role: str, now: datetime) -> None:
    query = update(users).where(users.c.id == user_id).values(role=role, updated_at=now)
    await conn.execute(query)


async def unrecharged_users(
    conn: Connection, occurrence: UUID, user_id: str | None, after: str | None, limit: int
) -> list[RowMapping]:
    """Lock up to `limit` users (one if `user_id` is given; by id, after `after`) that no
    recharge for `occurrence` has credited yet."""
    done = exists().where(
        credit_transactions.c.occurrence == occurrence,
        credit_transactions.c.user_id == users.c.id,
    )
    query = select(users).where(~done)
    if user_id is not None:
        query = query.where(users.c.id == user_id)
    if after is not None:
        query = query.where(users.c.id > after)
    query = query.order_by(users.c.id).limit(limit).with_for_update()
    return list((await conn.execute(query)).mappings())


async def insert_transactions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record credit movements. Raises IntegrityError if an occurrence credits a user twice."""
    if rows:
        await conn.execute(insert(credit_transactions), [dict(r) for r in rows])


async def set_balances(conn: Connection, balances: Mapping[str, int], now: datetime) -> None:
    if not balances:
        return
    query = (
        update(users)
        .where(users.c.id == bindparam("user"))
        .values(credits=bindparam("balance"), updated_at=now)
    )
    await conn.execute(query, [{"user": u, "balance": b} for u, b in balances.items()])


async def list_transactions(
    conn: Connection, user_id: str, *, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """A page of a user's credit movements, newest first, and how many there are."""
    where = credit_transactions.c.user_id == user_id
    total = (
        await conn.execute(select(func.count()).select_from(credit_transactions).where(where))
    ).scalar_one()
    page = (
        select(credit_transactions)
        .where(where)
        .order_by(credit_transactions.c.created_at.desc(), credit_transactions.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(page)).mappings()), total


# Credits spent by play runs ----------------------------------------------------------------


async def reserve(
    conn: Connection,
    user_id: str,
    run_id: UUID,
    task_id: UUID,
    reason: str,
    cost: int,
    wanted: int,
    now: datetime,
) -> int:
    """Take the credits of up to `wanted` sounds at `cost` each from `user_id`, as many as the
    balance pays for, into the run's one transaction (keyed by run id, amount negative).
    Returns how many sounds are paid for: 0 when the balance pays for none (nothing changes,
    also for an unknown user)."""
    locked = select(users.c.credits).where(users.c.id == user_id).with_for_update()
    balance = (await conn.execute(locked)).scalar()
    if balance is None:
        return 0
    paid = wanted if cost == 0 else min(wanted, balance // cost)
    if paid <= 0:
        return 0
    await _move(conn, user_id, run_id, task_id, reason, balance, -paid * cost, now)
    return paid


async def refund(conn: Connection, user_id: str, run_id: UUID, credits: int, now: datetime) -> None:
    """Give back `credits` of what run `run_id` took from `user_id` (sounds it did not play)."""
    if credits <= 0:
        return
    locked = select(users.c.credits).where(users.c.id == user_id).with_for_update()
    balance = (await conn.execute(locked)).scalar()
    if balance is not None:
        await _move(conn, user_id, run_id, None, "", balance, credits, now)
        # A run that played nothing leaves no trace in the user's statement.
        keyed = (credit_transactions.c.run_id == run_id) & (
            credit_transactions.c.user_id == user_id
        )
        await conn.execute(
            delete(credit_transactions).where(keyed, credit_transactions.c.amount == 0)
        )


async def _move(
    conn: Connection,
    user_id: str,
    run_id: UUID,
    task_id: UUID | None,
    reason: str,
    balance: int,
    amount: int,
    now: datetime,
) -> None:
    """Add `amount` to the user's balance and to the run's transaction (created if needed)."""
    after = balance + amount
    await conn.execute(
        update(users).where(users.c.id == user_id).values(credits=after, updated_at=now)
    )
    keyed = (credit_transactions.c.run_id == run_id) & (credit_transactions.c.user_id == user_id)
    moved = await conn.execute(
        update(credit_transactions)
        .where(keyed)
        .values(amount=credit_transactions.c.amount + amount, balance=after)
    )
    if moved.rowcount == 0:
        row = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "run_id": run_id,
            "task_id": task_id,
            "reason": reason,
            "amount": amount,
            "balance": after,
            "created_at": now,
        }
        await conn.execute(insert(credit_transactions), [row])

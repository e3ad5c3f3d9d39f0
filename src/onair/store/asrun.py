"""The as-run log's statements (`onair.audio.asrun` is their only user), by name. Each takes an
open connection (the caller owns the transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, func, insert, select

from onair.store.database import Connection
from onair.store.schema import asrun


async def insert_items(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(asrun), [dict(row) for row in rows])


def _where(since: datetime, until: datetime, owner: str | None) -> list[Any]:
    where = [asrun.c.planned_at >= since, asrun.c.planned_at < until]
    if owner is not None:
        where.append(asrun.c.owner == owner)
    return where


async def list_items(
    conn: Connection,
    since: datetime,
    until: datetime,
    owner: str | None,
    *,
    limit: int,
    offset: int = 0,
) -> tuple[list[RowMapping], int]:
    """A page of the items planned in [`since`, `until`) (of `owner`, or everyone's when None),
    in planned order, and how many there are in all."""
    where = _where(since, until, owner)
    total = (await conn.execute(select(func.count()).select_from(asrun).where(*where))).scalar()
    page = (
        select(asrun)
        .where(*where)
        .order_by(asrun.c.planned_at, asrun.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(page)).mappings()), int(total or 0)


async def prune_items(conn: Connection, before: datetime, batch: int) -> int:
    """Delete up to `batch` items that ended before `before`; how many went."""
    ids = select(asrun.c.id).where(asrun.c.ended_at < before).limit(batch)
    result = await conn.execute(delete(asrun).where(asrun.c.id.in_(ids.scalar_subquery())))
    return int(result.rowcount or 0)

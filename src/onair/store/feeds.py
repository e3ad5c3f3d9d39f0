"""The calendar feeds' statements (`onair.ical.Feeds` is their only user): one secret per
scope, kept as its SHA-256 digest, so the store never holds a usable feed URL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from onair.store.database import Connection
from onair.store.schema import calendar_feeds


async def replace_feed(conn: Connection, scope: str, digest: str, now: datetime) -> None:
    """Make `digest` the one secret of `scope` (the previous one stops working)."""
    await conn.execute(delete(calendar_feeds).where(calendar_feeds.c.scope == scope))
    await conn.execute(insert(calendar_feeds).values(scope=scope, digest=digest, created_at=now))


async def drop_feed(conn: Connection, scope: str) -> bool:
    """Revoke the secret of `scope`; False when it had none."""
    query = delete(calendar_feeds).where(calendar_feeds.c.scope == scope)
    return (await conn.execute(query)).rowcount == 1


async def feed_scope(conn: Connection, digest: str) -> str | None:
    """The scope whose secret has `digest`, if any."""
    query = select(calendar_feeds.c.scope).where(calendar_feeds.c.digest == digest)
    scope: str | None = (await conn.execute(query)).scalar_one_or_none()
    return scope

"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from onair.store.database import Store
from onair.store.schema import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_upgrade_head_leaves_no_autogenerate_diff(store: Store) -> None:
    async with store.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrating_twice_is_harmless(store: Store) -> None:
    await store.migrate()
    async with store.connect() as connection:
        assert await connection.run_sync(_diff) == []

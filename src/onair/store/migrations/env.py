"""Alembic environment. `Store.migrate()` passes its own connection; the `alembic` command line
(for autogenerate) connects to `ONAIR__STORE__URL`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from onair.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from onair.config import Settings
    from onair.store.database import Store

    async with Store(Settings().store.url) as store, store.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_settings())

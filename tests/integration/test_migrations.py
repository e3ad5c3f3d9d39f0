"""The migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert

from onair.accounts.credits import Accounts
from onair.store.database import Store, alembic_config
from onair.store.schema import credit_transactions, metadata, users


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


def _at_revision(connection: Connection, revision: str) -> None:
    """The schema of `revision`, from an empty database or a newer schema."""
    command.upgrade(alembic_config(connection), revision)
    command.downgrade(alembic_config(connection), revision)


async def test_recharges_recorded_before_0004_stay_once_per_run(database_url: str) -> None:
    """0004 keys recharges by occurrence: a recharge recorded before it is keyed by its run,
    so running that run's recharge again still credits nobody."""
    run_id, now = uuid.uuid4(), datetime.now(UTC)
    async with Store(database_url) as store:
        async with store.connect() as connection:
            await connection.run_sync(_at_revision, "0003")
            await connection.commit()
        async with store.begin() as connection:
            user = {"id": "alice", "role": "user", "credits": 200, "plan_credits": 100}
            await connection.execute(
                insert(users),
                [user | {"plan_max_credits": 250, "created_at": now, "updated_at": now}],
            )
            old = {"id": uuid.uuid4(), "user_id": "alice", "run_id": run_id, "reason": "recharge"}
            movement = {"amount": 100, "balance": 200, "created_at": now}
            await connection.execute(insert(credit_transactions), [old | movement])
        await store.migrate()
        accounts = Accounts(store)
        assert await accounts.recharge(run_id) == []
        [old] = (await accounts.transactions("alice"))[0]
        assert (old.run_id, old.occurrence) == (run_id, run_id)

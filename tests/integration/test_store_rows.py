"""The store's own row conversions: instants and many-row statements keep exactly what
SQLAlchemy's general path would, on both databases."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from onair.store import queries
from onair.store.database import Store
from onair.store.schema import runs, tasks


def task_row(created: datetime, **values: Any) -> dict[str, Any]:
    """A pending task's row: every column given, None where it may be."""
    return (
        dict.fromkeys(tasks.c.keys())
        | {
            "id": uuid.uuid4(),
            "operation": "test",
            "operation_parameters": {"n": 1, "text": "é", "nested": [1, 2.5, None, True]},
            "condition": "at",
            "condition_parameters": {"datetime": "2099-01-01T00:00:00+00:00"},
            "dependencies": {},
            "status": "pending",
            "name": "a name",
            "created_at": created,
            "updated_at": created,
            "next_at": created + timedelta(days=1),
            "occurrences": 0,
            "runs": 0,
            "active": 0,
            "attempt": 1,
        }
        | values
    )


async def stored(store: Store, ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """The rows of `ids` but their ids, as the database gives them to its driver: no
    conversion by onair or SQLAlchemy."""
    async with store.begin() as conn:
        by_id = {
            row[0]: tuple(row[1:])
            for row in (await conn.exec_driver_sql("SELECT * FROM tasks")).all()
        }
    encode = (lambda i: i.hex) if store.dialect == "sqlite" else (lambda i: i)
    return [by_id[encode(i)] for i in ids]


async def test_execute_many_stores_what_sqlalchemy_stores(store: Store) -> None:
    # Microseconds, none, another offset, and a year below 1000: the text SQLite sorts by.
    instants = [
        datetime(2026, 11, 23, 21, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 3, 30, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        datetime(999, 1, 1, tzinfo=UTC),
    ]
    general = [task_row(at) for at in instants]
    fast = [task_row(at) for at in instants]
    async with store.begin() as conn:
        await conn.execute(queries.INSERT_TASK, general)
        await queries.execute_many(conn, queries.INSERT_TASK, fast)

    assert await stored(store, [r["id"] for r in fast]) == await stored(
        store, [r["id"] for r in general]
    )
    if store.dialect == "sqlite":  # the text of SQLAlchemy's SQLite DATETIME, which sorts
        assert [row[10] for row in await stored(store, [r["id"] for r in fast])] == [
            "2026-11-23 21:00:00.123456",
            "2026-03-29 01:00:00.000000",
            "2026-10-25 01:30:00.000001",
            "0999-01-01 00:00:00.000000",
        ]
    async with store.begin() as conn:
        back = (await conn.execute(select(tasks).where(tasks.c.id == fast[2]["id"]))).one()
    assert back.created_at == instants[2]
    assert back.created_at.tzinfo is UTC
    assert back.operation_parameters == fast[2]["operation_parameters"]


async def test_rows_without_a_column_leave_it_to_its_default(store: Store) -> None:
    created = datetime.now(UTC)
    row = task_row(created)
    run = {
        "id": uuid.uuid4(),
        "task_id": row["id"],
        "node": "n",
        "attempt": 1,
        "due_at": created,
        "started_at": created,
    }
    async with store.begin() as conn:
        await queries.insert_tasks(conn, [row], [])
        await queries.insert_runs(conn, [run])
        # Not given: SQL NULL, not the JSON text `null` that an explicit None would store.
        missing = (
            await conn.execute(
                select(runs.c.outcome, text("result IS NULL")).where(runs.c.id == run["id"])
            )
        ).one()
    assert tuple(missing) == (None, True)


async def test_a_naive_instant_is_refused(store: Store) -> None:
    row = task_row(datetime(2026, 1, 1))  # naive
    with pytest.raises(Exception, match="naive datetime"):
        async with store.begin() as conn:
            await queries.insert_tasks(conn, [row], [])


async def test_json_columns_keep_what_json_can_say(store: Store) -> None:
    plain = {"float": 0.1, "text": "é\u2028", "1": [{}], "nan": float("nan")}
    big = {"big": 2**70, "negative": -(2**64)}  # beyond orjson: the json module writes them
    rows = [task_row(datetime.now(UTC), operation_parameters=p) for p in (plain, big)]
    async with store.begin() as conn:
        await queries.insert_tasks(conn, rows, [])
        back = {
            row.id: row.operation_parameters
            for row in await conn.execute(select(tasks.c.id, tasks.c.operation_parameters))
        }
    # NaN, which JSON has not, comes back as null on both databases.
    assert back[rows[0]["id"]] == plain | {"nan": None}
    assert back[rows[1]["id"]] == big


async def test_json_text_written_by_the_json_module_still_reads(tmp_path: Path) -> None:
    """Before orjson, SQLite rows could hold the `NaN` that `json.dumps` wrote."""
    async with Store(f"sqlite:///{tmp_path / 'old.db'}") as store:
        await store.migrate()
        row = task_row(datetime.now(UTC))
        async with store.begin() as conn:
            await queries.insert_tasks(conn, [row], [])
            await conn.exec_driver_sql(
                "UPDATE tasks SET result = ? WHERE id = ?", ('{"x": NaN, "y": 1}', row["id"].hex)
            )
            back = (await conn.execute(select(tasks.c.result).where(tasks.c.id == row["id"]))).one()
    assert back.result["y"] == 1
    assert math.isnan(back.result["x"])


async def test_the_claim_loops_reads_use_their_indexes_without_statistics(
    postgresql_url: str,
) -> None:
    """A table PostgreSQL has never analyzed (new, bulk-loaded, autovacuum off): the count of
    the runs due soon and the lookup of a run's dependents read their indexes, not the whole
    table (a sequential scan of 40k finished tasks cost 4.7 ms every claim turn)."""
    now = datetime.now(UTC)
    async with Store(postgresql_url) as store, store.begin() as conn:
        await queries.execute_many(conn, tasks.insert(), [task_row(now) for _ in range(1)])
        await conn.exec_driver_sql(
            "INSERT INTO tasks SELECT gen_random_uuid(), operation, operation_parameters,"
            " condition, condition_parameters, dependencies, 'completed', owner, name, policy,"
            " created_at, updated_at, NULL, NULL, occurrences, runs, active, attempt"
            " FROM tasks, generate_series(1, 20000)"
        )
        plans = {}
        for name, statement, values in [
            ("count", queries.COUNT_DUE, {"horizon": now, "cap": 10_000}),
            ("claim", queries.CLAIM_DUE, {"horizon": now, "limit": 500}),
            ("earliest", queries.EARLIEST_DUE, {}),
            ("edges", queries.dependency_edges([uuid.uuid4()]), {}),
        ]:
            compiled = statement.compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
            )
            sql, params = str(compiled), compiled.construct_params(values)
            order = compiled.positiontup or []
            rows = await conn.exec_driver_sql(f"EXPLAIN {sql}", tuple(params[key] for key in order))
            plans[name] = "\n".join(row[0] for row in rows)
    scanned = {name: plan for name, plan in plans.items() if "Index" not in plan}
    assert not scanned, scanned

"""Every statement onair sends to its database, by name. Each takes an open connection (the
caller owns the transaction) and returns plain rows or values."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Dialect,
    RowMapping,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import UpdateBase

from onair.store.database import Connection
from onair.store.schema import nodes, runs, task_dependencies, tasks

FINISHED = ("cancelled", "failed", "completed")
ACTIVE = ("pending", "running")


INSERT_TASK = insert(tasks)
INSERT_DEPENDENCY = insert(task_dependencies)
INSERT_RUN = insert(runs)
FINISH_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"), runs.c.outcome.is_(None))
    .values(
        {
            column: bindparam(column)
            for column in ("started_at", "finished_at", "outcome", "result", "error")
        }
    )
)
_UPDATE_TASKS: dict[tuple[str, ...], UpdateBase] = {}


# Many rows, one statement ------------------------------------------------------------------


Encoder = Callable[[Mapping[str, Any]], tuple[Any, ...]]
_PLANS: dict[tuple[UpdateBase, str, tuple[str, ...]], tuple[str, Encoder]] = {}


async def execute_many(
    conn: Connection, statement: UpdateBase, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`conn.execute(statement, rows)`: one executemany, with the columns the first row
    gives (the others take their defaults); every row gives the same.

    For the statements that carry the hot paths (tasks added, claimed, finished), rows are
    many and SQLAlchemy's own work per row, matching each to the compiled statement's
    parameters, costs as much as the database: about 15% of adding a task. So `statement` is
    rendered once per dialect and set of columns, and each row becomes the driver's tuple
    directly, converted by the bind processor of each parameter's type, as SQLAlchemy would."""
    if not rows:
        return
    key = (statement, conn.dialect.name, tuple(rows[0]))
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _plan(statement, conn.dialect, key[2])
    sql, encode = plan
    await conn.exec_driver_sql(sql, [encode(row) for row in rows])


def _plan(statement: UpdateBase, dialect: Dialect, columns: Sequence[str]) -> tuple[str, Encoder]:
    compiled = statement.compile(dialect=dialect, column_keys=list(columns))
    names = compiled.positiontup
    if names is None:
        raise TypeError(f"{dialect.name} has no positional parameters")  # onair's two have
    binds = compiled.binds
    converters = [
        (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names
    ]

    def encode(row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            [row[name] if convert is None else convert(row[name]) for name, convert in converters]
        )

    return str(compiled), encode


class Duplicate(Exception):
    """A row with that key already exists."""


async def insert_task(
    conn: Connection,
    values: Mapping[str, Any],
    dependencies: Sequence[Mapping[str, Any]],
    *,
    may_exist: bool = False,
) -> None:
    """Add one task and the edges to its dependencies. With `may_exist` (a caller-chosen id),
    the insert runs in a savepoint, so that a duplicate leaves the transaction usable.

    Raises:
        Duplicate: a task with that id exists.
    """
    try:
        if may_exist:
            async with conn.begin_nested():
                await conn.execute(INSERT_TASK, dict(values))
        else:
            await conn.execute(INSERT_TASK, dict(values))
    except IntegrityError as error:
        raise Duplicate(values["id"]) from error
    await execute_many(conn, INSERT_DEPENDENCY, dependencies)


async def insert_tasks(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    dependencies: Sequence[Mapping[str, Any]],
) -> None:
    """Add tasks whose ids are new (generated), and edges to their dependencies, which must
    exist by then: one executemany each. Each row gives every column."""
    await execute_many(conn, INSERT_TASK, rows)
    await execute_many(conn, INSERT_DEPENDENCY, dependencies)


# Reads by id, built once: building a statement and its cache key costs more than running
# it (a `GET /tasks/{id}` spent half its time there).
GET_TASK = select(tasks).where(tasks.c.id == bindparam("id"))
GET_TASK_LOCKED = GET_TASK.with_for_update()
RUN_PAGE = (
    select(runs)
    .where(runs.c.task_id == bindparam("task_id"))
    .order_by(runs.c.due_at.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
COUNT_RUNS = select(func.count()).select_from(runs).where(runs.c.task_id == bindparam("task_id"))


async def get_task(conn: Connection, task_id: UUID, *, lock: bool = False) -> RowMapping | None:
    """One task by id; `lock` holds its row until the transaction ends (PostgreSQL)."""
    query = GET_TASK_LOCKED if lock else GET_TASK
    return (await conn.execute(query, {"id": task_id})).mappings().first()


async def get_tasks(
    conn: Connection, ids: Iterable[UUID], *, lock: bool = False
) -> list[RowMapping]:
    """Tasks by id, in id order; `lock` holds their rows until the transaction ends."""
    ids = sorted(set(ids))
    if not ids:
        return []
    query = select(tasks).where(tasks.c.id.in_(ids)).order_by(tasks.c.id)
    if lock:
        query = query.with_for_update()
    return list((await conn.execute(query)).mappings())


async def update_tasks(conn: Connection, changes: Mapping[UUID, Mapping[str, Any]]) -> None:
    """Change many tasks, one statement per set of changed columns (executemany)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for task_id, values in changes.items():
        groups.setdefault(tuple(sorted(values)), []).append({"_id": task_id, **values})
    for columns, params in groups.items():
        statement = _UPDATE_TASKS.get(columns)
        if statement is None:
            statement = _UPDATE_TASKS[columns] = (
                update(tasks)
                .where(tasks.c.id == bindparam("_id"))
                .values({column: bindparam(column) for column in columns})
            )
        await execute_many(conn, statement, params)


async def task_states(
    conn: Connection, ids: Iterable[UUID], *, lock: bool = False
) -> dict[UUID, tuple[str, Any]]:
    """`{id: (status, result)}` for those of `ids` that exist; `lock` holds their rows (in id
    order) until the transaction ends, so that their status cannot change meanwhile."""
    ids = sorted(set(ids))
    if not ids:
        return {}
    query = select(tasks.c.id, tasks.c.status, tasks.c.result).where(tasks.c.id.in_(ids))
    if lock:
        query = query.order_by(tasks.c.id).with_for_update()
    return {row.id: (row.status, row.result) for row in await conn.execute(query)}


async def holder(
    conn: Connection, resource: str, start: datetime, end: datetime | None, *, exclude: UUID
) -> RowMapping | None:
    """The earliest pending or running task (other than `exclude`) that holds `resource` for a
    span overlapping `[start, end)` (`end` None: from `start` on, for good)."""
    overlapping = [
        tasks.c.resource == resource,
        tasks.c.status.in_(ACTIVE),
        tasks.c.id != exclude,
        or_(tasks.c.held_until.is_(None), tasks.c.held_until > start),
    ]
    if end is not None:
        overlapping.append(tasks.c.held_from < end)
    query = (
        select(
            tasks.c.id,
            tasks.c.name,
            tasks.c.owner,
            tasks.c.status,
            tasks.c.held_from,
            tasks.c.held_until,
        )
        .where(*overlapping)
        .order_by(tasks.c.held_from)
        .limit(1)
    )
    return (await conn.execute(query)).mappings().first()


async def tasks_playing(
    conn: Connection, *, sound_id: UUID | None = None, playlist_ids: Sequence[UUID] = ()
) -> list[RowMapping]:
    """Pending and running tasks that name `sound_id` (play_sound) or one of `playlist_ids`
    (play_playlist). Ids are compared as text, as the task's JSON parameters hold them."""
    named = []
    if sound_id is not None:
        named.append(
            (tasks.c.operation == "play_sound")
            & (tasks.c.operation_parameters["sound_id"].as_string() == str(sound_id))
        )
    if playlist_ids:
        named.append(
            (tasks.c.operation == "play_playlist")
            & tasks.c.operation_parameters["playlist_id"]
            .as_string()
            .in_([str(i) for i in playlist_ids])
        )
    if not named:
        return []
    query = (
        select(tasks.c.id, tasks.c.name, tasks.c.status)
        .where(tasks.c.status.in_(ACTIVE), or_(*named))
        .order_by(tasks.c.created_at)
    )
    return list((await conn.execute(query)).mappings())


def _owned(owner: str | None, any_owner: bool) -> list[Any]:
    """The filter on tasks' owners: none with `any_owner`, else those of `owner` (None: the
    system's)."""
    if any_owner:
        return []
    return [tasks.c.owner == owner if owner is not None else tasks.c.owner.is_(None)]


async def index_ids(
    conn: Connection,
    status: str,
    size: int,
    *,
    owner: str | None = None,
    any_owner: bool = True,
) -> AsyncGenerator[list[UUID]]:
    """The ids of the tasks in `status` (of `owner`, unless `any_owner`), at most `size` at
    a time, from one cursor, so that each page costs the same however large the store; in no
    particular order (the index is a set). `conn` must be in a transaction (a server-side
    cursor on PostgreSQL)."""
    query = select(tasks.c.id).where(tasks.c.status == status, *_owned(owner, any_owner))
    result = await conn.stream(query)
    try:
        while rows := await result.fetchmany(size):
            yield [row[0] for row in rows]
    finally:
        await result.close()


async def list_tasks(
    conn: Connection,
    *,
    owner: str | None = None,
    any_owner: bool = True,
    status: str | None = None,
    operation: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RowMapping], int]:
    """A page of tasks, newest first, and the number of tasks matching the filters.
    With `any_owner` false, only the tasks of `owner` (None: system tasks)."""
    conditions = _owned(owner, any_owner)
    if status is not None:
        conditions.append(tasks.c.status == status)
    if operation is not None:
        conditions.append(tasks.c.operation == operation)
    where = and_(True, *conditions)
    total = (await conn.execute(select(func.count()).select_from(tasks).where(where))).scalar_one()
    page = (
        select(tasks)
        .where(where)
        .order_by(tasks.c.created_at.desc(), tasks.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(page)).mappings()), total


# The statements of the claim loop, built once: it runs them every turn, and building a
# statement costs SQLAlchemy more than SQLite takes to run these.
EARLIEST_DUE = select(func.min(tasks.c.due_at))
# Due "between the first instant there is and the horizon", not just "by the horizon": without
# statistics (a new or bulk-loaded table, autovacuum off) PostgreSQL guesses a third of the
# table for `due_at <= x` and reads all of it (4.7 ms every turn at 40k finished tasks), but
# a two-sided range it guesses small, and reads from the index, as it does with statistics.
DUE = tasks.c.due_at.between(datetime(1, 1, 1, tzinfo=UTC), bindparam("horizon"))
COUNT_DUE = select(func.count()).select_from(
    select(tasks.c.due_at).where(DUE).order_by(tasks.c.due_at).limit(bindparam("cap")).subquery()
)
CLAIM_DUE = (
    select(
        *(
            tasks.c[name]
            for name in (
                "id",
                "operation",
                "operation_parameters",
                "condition",
                "condition_parameters",
                "dependencies",
                "owner",
                "policy",
                "created_at",
                "next_at",
                "due_at",
                "occurrences",
                "runs",
                "active",
                "attempt",
                "resource",
                "hold",
                "changes",
            )
        )
    )  # fmt: skip
    .where(DUE)
    .order_by(tasks.c.due_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
"""What a claim reads of a task: what decides and starts its next run, not its last outcome."""


async def earliest_due(conn: Connection) -> datetime | None:
    """The earliest instant at which any task must be acted on."""
    earliest: datetime | None = (await conn.execute(EARLIEST_DUE)).scalar_one()
    return earliest


async def count_due(conn: Connection, horizon: datetime, cap: int) -> int:
    """How many tasks are due by `horizon`, counted up to `cap` (from the `due_at` index)."""
    return int((await conn.execute(COUNT_DUE, {"horizon": horizon, "cap": cap})).scalar_one())


async def claim_due(conn: Connection, horizon: datetime, limit: int) -> list[RowMapping]:
    """Lock up to `limit` tasks due by `horizon`, earliest first, skipping rows another node
    holds (PostgreSQL; SQLite has a single writer)."""
    result = await conn.execute(CLAIM_DUE, {"horizon": horizon, "limit": limit})
    return list(result.mappings())


async def update_task(
    conn: Connection,
    task_id: UUID,
    values: Mapping[str, Any],
    *,
    status_in: Sequence[str] | None = None,
) -> bool:
    """Change one task; with `status_in`, only while its status is one of those.
    Returns whether the row changed."""
    query = update(tasks).where(tasks.c.id == task_id).values(**values)
    if status_in is not None:
        query = query.where(tasks.c.status.in_(status_in))
    return (await conn.execute(query)).rowcount == 1


async def insert_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add runs; each row gives every column."""
    await execute_many(conn, INSERT_RUN, rows)


async def unfinished(conn: Connection, run_ids: Iterable[UUID]) -> set[UUID]:
    """Those of `run_ids` that have no outcome yet."""
    ids = list(run_ids)
    if not ids:
        return set()
    query = select(runs.c.id).where(runs.c.id.in_(ids), runs.c.outcome.is_(None))
    return set((await conn.execute(query)).scalars())


async def finish_runs(conn: Connection, ends: Sequence[Mapping[str, Any]]) -> None:
    """Record how many runs ended, in one executemany; each mapping has `run_id` and the
    columns `started_at`, `finished_at`, `outcome`, `result`, `error`."""
    await execute_many(conn, FINISH_RUN, ends)


RECORD_RUN_START = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"), runs.c.outcome.is_(None))
    .values(started_at=bindparam("started_at"))
)
RECORD_TASK_START = (
    update(tasks)
    .where(tasks.c.id == bindparam("task_id"), tasks.c.started_at <= bindparam("started"))
    .values(started_at=bindparam("started"))
)


async def record_starts(conn: Connection, starts: Sequence[Mapping[str, Any]]) -> None:
    """Replace the planned start of runs still in progress, and of their tasks, by the real
    one (`run_id`, `task_id`, `started_at`); a task whose later run has started since keeps
    that one's."""
    if not starts:
        return
    await conn.execute(RECORD_RUN_START, [dict(s) for s in starts])
    await conn.execute(
        RECORD_TASK_START,
        [{"task_id": s["task_id"], "started": s["started_at"]} for s in starts],
    )


async def finish_run(conn: Connection, run_id: UUID, values: Mapping[str, Any]) -> bool:
    """Record how a run ended, unless it already has an outcome (a cancel got there first)."""
    query = update(runs).where(runs.c.id == run_id, runs.c.outcome.is_(None)).values(**values)
    return (await conn.execute(query)).rowcount == 1


async def unfinished_runs(conn: Connection, task_id: UUID) -> list[RowMapping]:
    query = select(runs).where(runs.c.task_id == task_id, runs.c.outcome.is_(None))
    return list((await conn.execute(query)).mappings())


async def list_runs(
    conn: Connection, task_id: UUID, *, limit: int, offset: int, count: bool = True
) -> tuple[list[RowMapping], int]:
    """A page of a task's runs, newest first, and how many it has (-1 unless `count`)."""
    total = -1
    if count:
        total = (await conn.execute(COUNT_RUNS, {"task_id": task_id})).scalar_one()
    page = await conn.execute(RUN_PAGE, {"task_id": task_id, "limit": limit, "offset": offset})
    return list(page.mappings()), total


def dependency_edges(ids: Sequence[UUID]) -> Select[tuple[UUID]]:
    """The tasks that depend on any of `ids`, whatever their state."""
    return select(task_dependencies.c.task_id).where(task_dependencies.c.dependency_id.in_(ids))


async def dependents(conn: Connection, ids: Iterable[UUID]) -> list[UUID]:
    """Tasks waiting for any of `ids`: pending, with no due instant until their dependencies
    have settled."""
    ids = list(ids)
    if not ids:
        return []
    # The edges first, by their index: most runs that end have no dependents, and a join
    # left to the planner read every pending task when its statistics were stale (3-7 ms).
    waiting = set((await conn.execute(dependency_edges(ids))).scalars())
    if not waiting:
        return []
    query = select(tasks.c.id).where(
        tasks.c.id.in_(waiting), tasks.c.status == "pending", tasks.c.due_at.is_(None)
    )
    return list((await conn.execute(query)).scalars())


async def removable(
    conn: Connection,
    finished_before: datetime | None,
    limit: int,
    *,
    owner: str | None = None,
    any_owner: bool = True,
) -> list[UUID]:
    """Finished tasks (before `finished_before`, if given; of `owner` unless `any_owner`)
    that no task depends on."""
    query = select(tasks.c.id).where(
        tasks.c.status.in_(FINISHED),
        ~exists().where(task_dependencies.c.dependency_id == tasks.c.id),
        *_owned(owner, any_owner),
    )
    if finished_before is not None:
        query = query.where(tasks.c.finished_at < finished_before)
    return list((await conn.execute(query.limit(limit))).scalars())


async def delete_tasks(conn: Connection, ids: Sequence[UUID]) -> None:
    """Delete tasks with their runs and their edges to their own dependencies."""
    if ids:
        await conn.execute(delete(runs).where(runs.c.task_id.in_(ids)))
        await conn.execute(delete(task_dependencies).where(task_dependencies.c.task_id.in_(ids)))
        await conn.execute(delete(tasks).where(tasks.c.id.in_(ids)))


async def prune_runs(conn: Connection, finished_before: datetime, limit: int) -> int:
    """Delete up to `limit` finished runs that ended before `finished_before`."""
    old = select(runs.c.id).where(runs.c.finished_at < finished_before).limit(limit)
    ids = list((await conn.execute(old)).scalars())
    if ids:
        await conn.execute(delete(runs).where(runs.c.id.in_(ids)))
    return len(ids)


async def add_node(conn: Connection, name: str, now: datetime, expires: datetime) -> None:
    await conn.execute(insert(nodes).values(name=name, started_at=now, expires_at=expires))


async def extend_node(conn: Connection, name: str, expires: datetime) -> bool:
    """Push this node's lease to `expires`; False if the node was declared dead meanwhile."""
    query = update(nodes).where(nodes.c.name == name).values(expires_at=expires)
    return (await conn.execute(query)).rowcount == 1


async def remove_node(conn: Connection, name: str) -> None:
    await conn.execute(delete(nodes).where(nodes.c.name == name))


async def orphaned_runs(conn: Connection, now: datetime, limit: int) -> list[RowMapping]:
    """Unfinished runs whose node's lease has expired (or whose node is gone). Not locked:
    the caller ends them through `finish_run`, which only changes a run still unfinished."""
    alive = select(nodes.c.name).where(nodes.c.expires_at > now)
    query = select(runs).where(runs.c.outcome.is_(None), runs.c.node.not_in(alive)).limit(limit)
    return list((await conn.execute(query)).mappings())


async def remove_dead_nodes(conn: Connection, now: datetime) -> None:
    """Forget nodes whose lease expired and that hold no unfinished run."""
    holding = select(runs.c.node).where(runs.c.outcome.is_(None))
    await conn.execute(delete(nodes).where(nodes.c.expires_at <= now, nodes.c.name.not_in(holding)))

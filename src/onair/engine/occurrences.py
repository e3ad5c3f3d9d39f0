"""Skipping or moving one occurrence of a series, in the caller's transaction: the checks, the
stored change (`onair.engine.calendar`) and the task's next due instant recomputed from it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from onair.engine.admission import held
from onair.engine.calendar import MAX_CHANGES, Changed, Changes, is_occurrence
from onair.engine.dst import with_dst
from onair.engine.models import Record, Status
from onair.engine.transitions import ACTIVE, Rules, due
from onair.engine.triggers import OneShot, Unbounded
from onair.errors import InvalidParameters, Problem, TaskFinished, TaskNotFound
from onair.store import queries
from onair.store.database import Connection

_TICK = timedelta(microseconds=1)


async def change(
    conn: Connection,
    rules: Rules,
    task_id: UUID,
    now: datetime,
    original: datetime,
    to: datetime | None,
) -> Record:
    """Skip the occurrence `original` of a series (`to` None), or move it to `to` (aware UTC
    both). Moving an occurrence moved before moves it again. Returns the task as it is now.

    Raises:
        TaskNotFound: no such task.
        TaskFinished: it has completed, failed or been cancelled.
        InvalidParameters: keyed `at` (not a series, not an occurrence of its rule, already
            passed or skipped, too many changes) or `to` (not ahead, or at another occurrence).
    """
    found = await queries.get_task(conn, task_id, lock=True)
    if found is None:
        raise TaskNotFound(task_id)
    if found["status"] not in ACTIVE:
        raise TaskFinished(task_id, found["status"], "changed")
    row = dict(found)
    try:
        return await _change(conn, rules, row, now, original, to)
    except Unbounded as error:  # a rule whose occurrences lie beyond the search bound
        raise InvalidParameters([Problem(str(error), "at")]) from error


async def _change(
    conn: Connection,
    rules: Rules,
    row: dict[str, Any],
    now: datetime,
    original: datetime,
    to: datetime | None,
) -> Record:
    task_id = row["id"]
    base = with_dst(rules.condition(row).trigger(row["created_at"]), row["policy"])
    changes = Changes.of(row["changes"])
    next_at = row["next_at"]
    _check_original(base, changes, original, next_at)
    if to is None:
        updated = changes.skip(original)
    else:
        _check_target(Changed(base, changes), original, to, now)
        updated = changes.move(original, to)
    if len(updated) > MAX_CHANGES:
        raise InvalidParameters([Problem(f"a task holds at most {MAX_CHANGES} changes", "at")])
    trigger = Changed(base, updated)
    assert next_at is not None
    start = next_at if to is None else min(next_at, to)
    following = trigger.next_after(start - _TICK)
    values: dict[str, Any] = {"changes": updated.as_json(), "next_at": following, "updated_at": now}
    if row["due_at"] == next_at:  # due at its occurrence (not a retry, paused or waiting)
        values["due_at"] = due(row, following)
    if following is None and row["active"] == 0:
        values |= {"status": Status.COMPLETED.value, "finished_at": now, "due_at": None}
    elif following is not None and row["active"] == 0:
        values |= held(row, following, lambda: trigger.next_after(following))
    await queries.update_task(conn, task_id, values)
    return {**row, **values}


def _check_original(
    base: Any, changes: Changes, original: datetime, next_at: datetime | None
) -> None:
    def refuse(message: str) -> None:
        raise InvalidParameters([Problem(message, "at")])

    when = original.isoformat()
    if isinstance(base, OneShot):
        refuse("only an occurrence of a series can be skipped or moved")
    if not is_occurrence(base, original):
        refuse(f"{when} is not an occurrence of the task's rule")
    if original in changes.skipped:
        refuse(f"the occurrence at {when} is skipped already")
    if next_at is None or changes.moved.get(original, original) < next_at:
        refuse(f"the occurrence at {when} has already passed")


def _check_target(trigger: Changed, original: datetime, to: datetime, now: datetime) -> None:
    def refuse(message: str) -> None:
        raise InvalidParameters([Problem(message, "to")])

    if to <= now:
        refuse(f"{to.isoformat()} is not ahead: an occurrence moves to a future instant")
    if to != trigger.changes.moved.get(original) and trigger.next_after(to - _TICK) == to:
        refuse(f"another occurrence of the task is at {to.isoformat()}")

"""Pausing and resuming a task, with who and why.

One mechanism on both databases: a paused task has no `due_at`. Every claim selects only tasks
whose `due_at` has come (`queries.claim_due`, under `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
no node claims a paused task, and the earliest-due query never wakes a worker for it. Pausing
locks the task's row: a claim that holds it first finishes (its run goes on; pausing never
stops a run in progress), and a claim after the pause no longer sees it due. While paused, the
transitions that would give the task a `due_at` again (a run ending, a retry, a dependency
completing) leave it none (`transitions.due`); `next_at` keeps the series' next occurrence.

Resuming gives the task its `due_at` back, by its policy's `resume`:

- `drop` (default): the occurrences that passed while paused are dropped (not run, not
  recorded, not counted); the next run is the first occurrence after the resume.
- `latest`: when at least one occurrence passed while paused, one run is due at the resume
  (for the latest of them); the series then goes on from the next occurrence after it.

A one-shot task whose instant passed while paused is due at once, and its misfire grace
decides, as after a node was down. A retry that was pending when the task was paused is due
at the resume. A task still waiting for its dependencies stays waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from onair.engine.admission import held
from onair.engine.models import Record, Status
from onair.engine.transitions import ACTIVE, Rules
from onair.engine.triggers import OneShot, Unbounded
from onair.errors import (
    InvalidParameters,
    NotPaused,
    Problem,
    TaskFinished,
    TaskNotFound,
    TaskPaused,
)
from onair.store import queries
from onair.store.database import Connection

_TICK = timedelta(microseconds=1)


async def pause(
    conn: Connection, task_id: UUID, now: datetime, by: str, note: str | None
) -> Record:
    """Pause a pending or running task. Returns the task as it is now.

    Raises:
        TaskNotFound: no such task.
        TaskFinished: it has completed, failed or been cancelled.
        TaskPaused: it is paused already (the first pause's who and why stay).
    """
    row = await _active(conn, task_id, "paused")
    if row["paused_at"] is not None:
        raise TaskPaused(task_id, row["paused_by"], row["paused_at"])
    values = {
        "paused_at": now,
        "paused_by": by,
        "pause_note": note,
        "due_at": None,
        "updated_at": now,
    }
    await queries.update_task(conn, task_id, values)
    return {**row, **values}


async def resume(conn: Connection, rules: Rules, task_id: UUID, now: datetime) -> Record:
    """Resume a paused task by its policy's `resume` (module docstring). Returns the task as
    it is now; its `due_at` tells the worker when to wake.

    Raises:
        TaskNotFound: no such task.
        TaskFinished: it has completed, failed or been cancelled.
        NotPaused: it is not paused.
    """
    row = await _active(conn, task_id, "resumed")
    if row["paused_at"] is None:
        raise NotPaused(task_id)
    values: dict[str, Any] = {
        "paused_at": None,
        "paused_by": None,
        "pause_note": None,
        "updated_at": now,
    }
    next_at = row["next_at"]
    trigger = rules.trigger(row)
    if row["attempt"] > 1 and row["active"] == 0:  # a retry was pending
        values["due_at"] = now
    elif next_at is not None and next_at <= now and not isinstance(trigger, OneShot):
        # Occurrences of the series passed while it was paused.
        try:
            following = trigger.next_after(now - _TICK)
        except Unbounded as error:  # none within the search bound: the series is over
            raise InvalidParameters([Problem(str(error), "condition")]) from error
        if rules.policy(row).resume == "latest":
            values |= {"next_at": now, "due_at": now}
        else:
            values |= {"next_at": following, "due_at": following}
            if following is None and row["active"] == 0:
                values |= {"status": Status.COMPLETED.value, "finished_at": now}
        if values["next_at"] is not None:
            start = values["next_at"]
            values |= held(row, start, lambda: trigger.next_after(start))
    else:
        values["due_at"] = next_at
    if not await _dependencies_met(conn, row):
        values["due_at"] = None
    await queries.update_task(conn, task_id, values)
    return {**row, **values}


async def _active(conn: Connection, task_id: UUID, action: str) -> Record:
    row = await queries.get_task(conn, task_id, lock=True)
    if row is None:
        raise TaskNotFound(task_id)
    if row["status"] not in ACTIVE:
        raise TaskFinished(task_id, row["status"], action)
    return dict(row)


async def _dependencies_met(conn: Connection, row: Record) -> bool:
    ids = [UUID(str(i)) for i in row["dependencies"].values()]
    states = await queries.task_states(conn, ids)
    return all(states.get(i, ("",))[0] == Status.COMPLETED.value for i in ids)

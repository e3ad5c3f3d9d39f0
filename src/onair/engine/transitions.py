"""How tasks and runs change state. Each function runs inside the caller's transaction and takes
`now` explicitly, so the same rules serve the worker, the API and the tests.

A task's life: `pending` (waiting for its next occurrence, a retry, or its dependencies) →
`running` (one or more runs in progress) → back to `pending` while its series goes on, or to a
final status: `completed` (its series ended), `failed` (a run failed with no attempt left, or a
dependency did not complete) or `cancelled`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from onair.engine.admission import held
from onair.engine.calendar import task_trigger
from onair.engine.conditions import Condition, check_floor, parse_condition
from onair.engine.events import Event
from onair.engine.models import Outcome, Record, Status
from onair.engine.policies import Policy, decide
from onair.engine.registry import Registry
from onair.engine.triggers import Trigger, Unbounded, following
from onair.errors import InvalidInput
from onair.store import queries
from onair.store.database import Connection
from onair.store.schema import new_id

ACTIVE = (Status.PENDING.value, Status.RUNNING.value)


# `Claimed` and `Ended` are made per run, thousands at once in a burst: plain slotted
# dataclasses, because a frozen one's `__init__` costs about eight times as much (2.9 µs
# against 0.4 µs here), and each `Ended` is made between one run's start and the next's.
@dataclass(slots=True)
class Claimed:
    """A run this node has claimed and must start at `due`."""

    run_id: UUID
    task_id: UUID
    operation: str
    parameters: Mapping[str, Any]
    dependencies: Mapping[str, Any]
    due: datetime
    attempt: int
    owner: str | None
    occurrence: int
    next_occurrence: datetime | None = None
    """The series' following occurrence (`RunContext.next_occurrence`)."""


@dataclass(slots=True)
class Ended:
    """How a run ended, as the node that ran it saw it."""

    run_id: UUID
    task_id: UUID
    outcome: Outcome
    started: datetime | None
    finished: datetime
    result: Any = None
    error: str | None = None
    attempt: int = 1


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What PostgreSQL refuses in text: the NUL character, and the surrogates that no UTF-8 text
holds (Python strings may carry them, from `surrogateescape` decoding or JSON escapes)."""


def storable_text(text: str) -> str:
    """`text` with every character that a database refuses in text replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def _storable_json(value: Any) -> Any:
    if isinstance(value, str):
        return storable_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {storable_text(str(k)): _storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable_json(item) for item in value]
    return storable_text(repr(value))  # not JSON at all: an operation's bug, kept legible


def storable(end: Ended) -> Ended:
    """`end` with its error and result made writable on any store: unstorable characters
    replaced, and what is not JSON written as its `repr`. The recorder's last resort for a
    row that the store refused, so that one bad run end holds back no other."""
    error = None if end.error is None else storable_text(end.error)
    return replace(end, error=error, result=_storable_json(end.result))


class Rules:
    """Reads a task row's policy and trigger, from its operation's defaults and its condition.
    `min_interval` is the node's floor of how often a series may run (`check_floor`): a stored
    series below it (written before the floor, or before it was raised) fails when claimed."""

    def __init__(self, registry: Registry, min_interval: timedelta = timedelta(seconds=1)) -> None:
        self.registry = registry
        self.min_interval = min_interval

    def policy(self, row: Record) -> Policy:
        name = row["operation"]
        base = self.registry.get(name).policy if name in self.registry else Policy()
        return base.merged(row["policy"])

    def condition(self, row: Record) -> Condition:
        return parse_condition(row["condition"], row["condition_parameters"])

    def trigger(self, row: Record) -> Trigger:
        """The task's trigger, with its single-occurrence changes (`onair.engine.calendar`)."""
        trigger = self.condition(row).trigger(row["created_at"])
        return task_trigger(trigger, row.get("policy"), row.get("changes"))

    def following(self, row: Record, instant: datetime) -> datetime | None:
        """The occurrence after `instant`, for how long a run holds its resource: None (open
        ended) when the stored rule is no longer valid or its next is beyond the bound."""
        try:
            return following(self.trigger(row), instant)
        except InvalidInput:
            return None

    def final_status(self, row: Record, last: Outcome) -> Status:
        """The status a task ends with once nothing is left to run: a series has `completed`
        when its count or end is reached, whatever its last run did; a one-shot task takes
        the outcome of its run."""
        if row["condition"] not in ONE_SHOT or last == Outcome.COMPLETED:
            return Status.COMPLETED
        return Status.FAILED


ONE_SHOT = frozenset({"now", "at"})
"""The condition types of one run (their trigger is a `OneShot`)."""


def due(row: Record, instant: datetime | None) -> datetime | None:
    """The `due_at` to write for `row`: `instant`, or None while the task is paused
    (`onair.engine.pausing`): no node claims a task without one."""
    return None if row.get("paused_at") is not None else instant


def failure(operation: str, message: str) -> str:
    """The error a failed run leaves on its task (the reference's wording, one final period)."""
    message = message.strip() or "no message"
    return f"Operation {operation} failed: {message}" + ("" if message.endswith(".") else ".")


async def claim(
    conn: Connection,
    rules: Rules,
    node: str,
    now: datetime,
    horizon: datetime,
    limit: int,
    stopped: list[UUID],
    missed: list[Event],
) -> list[Claimed]:
    """Claim the tasks due by `horizon`: record a run for each (with this node's lease), move
    the task to `running` and advance its series. Occurrences beyond their misfire grace, or
    overlapping a run still in progress under the `skip` policy, are recorded as missed; runs
    replaced under the `replace` policy are ended and their ids appended to `stopped`, for the
    caller to stop wherever they run; the events of missed occurrences, and of tasks failed
    because their rule cannot be evaluated (`_fail_rule`), are appended to `missed`."""
    rows = await queries.claim_due(conn, horizon, limit)
    if not rows:
        return []
    results = await _dependency_results(conn, rows)
    claimed: list[Claimed] = []
    new_runs: list[dict[str, Any]] = []
    changes: dict[UUID, dict[str, Any]] = {}
    for row in rows:
        run, replaced = await _claim_one(conn, rules, row, node, now, missed, changes)
        stopped.extend(replaced)
        if run is None:
            continue
        new_runs.append(run)
        deps = {name: results.get(UUID(str(i))) for name, i in row["dependencies"].items()}
        claimed.append(
            Claimed(
                run_id=run["id"],
                task_id=row["id"],
                operation=row["operation"],
                parameters=row["operation_parameters"],
                dependencies=deps,
                due=run["due_at"],
                attempt=run["attempt"],
                owner=row["owner"],
                occurrence=changes[row["id"]]["occurrences"],
                next_occurrence=changes[row["id"]]["next_at"],
            )
        )
    await queries.update_tasks(conn, changes)
    await queries.insert_runs(conn, new_runs)
    return claimed


async def _claim_one(
    conn: Connection,
    rules: Rules,
    row: Record,
    node: str,
    now: datetime,
    missed: list[Event],
    changes: dict[UUID, dict[str, Any]],
) -> tuple[dict[str, Any] | None, list[UUID]]:
    """The run to start for `row` (None when its occurrence is missed instead), and the runs
    it replaces under the `replace` overlap policy. The task's new values go into `changes`,
    for the caller to write with the others'."""
    policy = rules.policy(row)
    if row["attempt"] > 1:  # a retry: due at its backoff instant, not at an occurrence
        run, changes[row["id"]] = _start(row, node, now, row["due_at"], row["next_at"], 0, [])
        return run, []
    try:  # every search is bounded; a rule that fails it fails its task, not the node
        condition = rules.condition(row)
        check_floor(condition, rules.min_interval)
        limit = condition.limit
        remaining = None if limit is None else max(limit - row["occurrences"], 1)
        trigger = task_trigger(condition.trigger(row["created_at"]), row["policy"], row["changes"])
        decision = decide(trigger.next_after, remaining, row["due_at"], now, policy)
    except (InvalidInput, Unbounded) as error:
        missed.append(await _fail_rule(conn, row, node, now, str(error)))
        return None, []
    occurrences = row["occurrences"] + decision.consumed
    if decision.missed:
        assert decision.first_missed is not None
        assert decision.reason is not None
        await _record_missed(conn, row, node, now, decision.first_missed, decision.reason, missed)
    replaced: list[UUID] = []
    reason = decision.reason
    if decision.run and row["active"] > 0 and policy.overlap == "skip":
        reason = "Skipped: the previous run was still in progress."
        await _record_missed(conn, row, node, now, decision.due, reason, missed)
    elif decision.run:
        if row["active"] > 0 and policy.overlap == "replace":
            replaced = await _replace_runs(conn, row["id"], now, decision.due)
        run, changes[row["id"]] = _start(
            row, node, now, decision.due, decision.next_at, occurrences, replaced
        )
        return run, replaced
    values: dict[str, Any] = {
        "next_at": decision.next_at,
        "due_at": decision.next_at,
        "occurrences": occurrences,
        "last_outcome": Outcome.MISSED.value,
        "error": reason,
        "updated_at": now,
    }
    following = decision.next_at
    if following is not None:  # what it holds for its next run, now due then
        values |= held(row, following, lambda: rules.following(row, following))
    if decision.next_at is None and row["active"] == 0:
        values |= {"status": rules.final_status(row, Outcome.MISSED).value, "finished_at": now}
        await queries.update_task(conn, row["id"], values)  # now: its dependents read it
        await settle_dependents(conn, [row["id"]], now)
    else:
        changes[row["id"]] = values
    return None, []


async def _fail_rule(conn: Connection, row: Record, node: str, now: datetime, reason: str) -> Event:
    """End a task whose stored rule cannot be evaluated (no longer valid, or its next
    occurrence not found within the search bound) as `failed`, with the reason; the event
    that says so."""
    error = f"Its rule can no longer be evaluated: {reason.rstrip('.')}."
    await queries.update_task(
        conn,
        row["id"],
        {
            "status": Status.FAILED.value,
            "finished_at": now,
            "next_at": None,
            "due_at": None,
            "error": error,
            "updated_at": now,
        },
    )
    await settle_dependents(conn, [row["id"]], now)
    return Event("failed", row["id"], row["operation"], now, node, error=error, owner=row["owner"])


def _start(
    row: Record,
    node: str,
    now: datetime,
    due: datetime,
    next_at: datetime | None,
    occurrences: int,
    replaced: Sequence[UUID],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run of `row` due at `due`, and the task's values once it is `running`."""
    run = {
        "id": new_id(),
        "task_id": row["id"],
        "node": node,
        "attempt": max(row["attempt"], 1),
        "due_at": due,
        "started_at": max(due, now),
    }
    task = {
        "status": Status.RUNNING.value,
        "active": row["active"] - len(replaced) + 1,
        "runs": row["runs"] + 1,
        "occurrences": occurrences or row["occurrences"],
        "attempt": run["attempt"],
        "next_at": next_at,
        "due_at": next_at,
        "started_at": run["started_at"],
        "updated_at": now,
        **held(row, run["started_at"], lambda: next_at),
    }
    return run, task


async def _replace_runs(
    conn: Connection, task_id: UUID, now: datetime, due: datetime
) -> list[UUID]:
    """End the task's runs in progress as cancelled, for the run due at `due`."""
    replaced = []
    for run in await queries.unfinished_runs(conn, task_id):
        error = f"Replaced by the run due at {due.isoformat()}."
        values = {"finished_at": now, "outcome": Outcome.CANCELLED.value, "error": error}
        if await queries.finish_run(conn, run["id"], values):
            replaced.append(run["id"])
    return replaced


async def _record_missed(
    conn: Connection,
    row: Record,
    node: str,
    now: datetime,
    due: datetime,
    reason: str,
    missed: list[Event],
) -> None:
    run_id = new_id()
    missed.append(
        Event(
            "missed",
            row["id"],
            row["operation"],
            now,
            node,
            run_id,
            due,
            None,
            reason,
            row["owner"],
        )
    )
    await queries.insert_runs(
        conn,
        [
            {
                "id": run_id,
                "task_id": row["id"],
                "node": node,
                "attempt": 1,
                "due_at": due,
                "finished_at": now,
                "outcome": Outcome.MISSED.value,
                "error": reason,
            }
        ],
    )


async def _dependency_results(conn: Connection, rows: Sequence[Record]) -> dict[UUID, Any]:
    ids = {UUID(str(i)) for row in rows for i in row["dependencies"].values()}
    return {id_: result for id_, (_, result) in (await queries.task_states(conn, ids)).items()}


async def end_runs(
    conn: Connection, rules: Rules, ended: Iterable[Ended], now: datetime
) -> datetime | None:
    """Record the ends of runs and move their tasks on: the next occurrence, a retry after the
    policy's backoff, or a final status (which settles the tasks waiting for them). Returns
    the earliest instant at which any of that made work due (None: nothing became due), so
    that the nodes are woken for it and only for it.

    Locks are taken task first, then run, in task id order: the order `cancel` and `claim`
    use too, so that concurrent transactions on PostgreSQL never deadlock."""
    ends = sorted(ended, key=lambda e: e.task_id)
    if not ends:
        return None
    rows = {
        row["id"]: dict(row)
        for row in await queries.get_tasks(conn, (e.task_id for e in ends), lock=True)
    }
    # Ends that a cancel or a recovery recorded first are theirs: that path moved the task on.
    still_open = await queries.unfinished(conn, (e.run_id for e in ends))
    ends = [e for e in ends if e.run_id in still_open]
    await queries.finish_runs(
        conn,
        [
            {
                "run_id": e.run_id,
                "started_at": e.started,
                "finished_at": e.finished,
                "outcome": e.outcome.value,
                "result": e.result,
                "error": e.error,
            }
            for e in ends
        ],
    )
    changes: dict[UUID, dict[str, Any]] = {}
    for end in ends:
        row = rows.get(end.task_id)
        if row is None or row["status"] not in ACTIVE:
            continue
        values = _after_run(rules, row, end, end.attempt, now)
        row.update(values)  # a later end of the same task in this batch builds on this one
        changes.setdefault(end.task_id, {}).update(values)
    await queries.update_tasks(conn, changes)
    finished = [task_id for task_id in changes if Status(rows[task_id]["status"]).finished]
    earliest = await settle_dependents(conn, finished, now)
    for values in changes.values():
        earliest = _earlier(earliest, values.get("due_at"))
    return earliest


async def abandon_run(conn: Connection, end: Ended, reason: str, now: datetime) -> None:
    """Record `end` without moving its task on by its rules, which failed (the store refused
    `end_runs` for this end, even made `storable`): the run ends as `end` says, and its task,
    unless already final, fails with `reason`, which settles the tasks waiting for it. The
    recorder's last resort, so that a task whose row its rules cannot read holds back no other
    run; the task's other runs in progress, if any, still end by `end_runs`."""
    end = storable(end)
    rows = await queries.get_tasks(conn, [end.task_id], lock=True)
    if not await queries.unfinished(conn, [end.run_id]):
        return  # a cancel or a recovery recorded it first
    values = {
        "started_at": end.started,
        "finished_at": end.finished,
        "outcome": end.outcome.value,
        "error": end.error,
    }
    await queries.finish_run(conn, end.run_id, values)
    if not rows or rows[0]["status"] not in ACTIVE:
        return
    await queries.update_task(
        conn,
        end.task_id,
        {
            "status": Status.FAILED.value,
            "finished_at": now,
            "due_at": None,
            "active": 0,
            "last_outcome": end.outcome.value,
            "error": storable_text(reason),
            "updated_at": now,
        },
        status_in=ACTIVE,
    )
    await settle_dependents(conn, [end.task_id], now)


def _after_run(
    rules: Rules, row: Record, end: Ended, attempt: int, now: datetime
) -> dict[str, Any]:
    """The task's new values once run number `attempt` has ended as `end` says."""
    active = max(row["active"] - 1, 0)
    values: dict[str, Any] = {
        "active": active,
        "last_outcome": end.outcome.value,
        "updated_at": now,
    }
    # The task's `started_at` was the run's planned start (claims come a little early); its
    # real start replaces it, unless a later run has started since (overlap `allow`).
    started = end.started
    if started is not None and (row["started_at"] is None or started >= row["started_at"]):
        values["started_at"] = started
    next_at = row["next_at"]
    if end.outcome == Outcome.COMPLETED:
        values |= {"result": end.result, "error": None, "attempt": 1}
    else:
        values["error"] = end.error
        delay = rules.policy(row).retry.delay(attempt)
        if delay is not None:
            retry_at = now + delay
            return values | {
                "status": Status.RUNNING.value if active else Status.PENDING.value,
                "attempt": attempt + 1,
                "due_at": due(row, retry_at),
                **({} if active else held(row, retry_at, lambda: next_at)),
            }
        values["attempt"] = 1
    if next_at is not None or active:
        values |= {
            "status": Status.RUNNING.value if active else Status.PENDING.value,
            "due_at": due(row, next_at),
        }
        if not active and next_at is not None:  # what it holds for its next run
            values |= held(row, next_at, lambda: rules.following(row, next_at))
        return values
    return values | {
        "status": rules.final_status(row, end.outcome).value,
        "finished_at": now,
        "due_at": None,
    }


async def cancel(conn: Connection, task_id: UUID, now: datetime) -> Record | None:
    """Cancel a pending or running task and the runs it has in progress. Returns the task as
    it was, or None when it does not exist; the caller checks the status first."""
    row = await queries.get_task(conn, task_id, lock=True)
    if row is None or row["status"] not in ACTIVE:
        return row
    await queries.update_task(
        conn,
        task_id,
        {
            "status": Status.CANCELLED.value,
            "finished_at": now,
            "due_at": None,
            "active": 0,
            "last_outcome": Outcome.CANCELLED.value if row["active"] else row["last_outcome"],
            "updated_at": now,
        },
        status_in=ACTIVE,
    )
    for run in await queries.unfinished_runs(conn, task_id):
        await queries.finish_run(
            conn,
            run["id"],
            {"finished_at": now, "outcome": Outcome.CANCELLED.value, "error": "Cancelled."},
        )
    await settle_dependents(conn, [task_id], now)
    return row


async def settle_dependents(
    conn: Connection, finished: Iterable[UUID], now: datetime
) -> datetime | None:
    """Move on the tasks that wait for `finished` tasks: a dependent whose dependencies have
    all completed becomes due; one with a failed or cancelled dependency fails, and so on down
    the chain. Returns the earliest instant at which a dependent became due (None: none did),
    for the caller to tell the nodes."""
    earliest: datetime | None = None
    frontier = list(finished)
    while frontier:
        waiting = await queries.dependents(conn, frontier)
        frontier = []
        for task_id in waiting:
            row = await queries.get_task(conn, task_id, lock=True)
            if row is None or row["due_at"] is not None or row["status"] != Status.PENDING.value:
                continue
            # A paused task's dependencies are checked again when it is resumed.
            ids = [UUID(str(i)) for i in row["dependencies"].values()]
            states = await queries.task_states(conn, ids)
            error = unmet_dependency(ids, states)
            if error is not None:
                await queries.update_task(
                    conn,
                    task_id,
                    {
                        "status": Status.FAILED.value,
                        "finished_at": now,
                        "error": error,
                        "updated_at": now,
                    },
                )
                frontier.append(task_id)
            elif all(states[i][0] == Status.COMPLETED.value for i in ids):
                await queries.update_task(
                    conn, task_id, {"due_at": due(row, row["next_at"]), "updated_at": now}
                )
                earliest = _earlier(earliest, row["next_at"])
    return earliest


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two instants, either of which may be missing."""
    if a is None or b is None:
        return a or b
    return min(a, b)


def unmet_dependency(ids: Sequence[UUID], states: Mapping[UUID, tuple[str, Any]]) -> str | None:
    """The reference's message for the first dependency that failed or was cancelled."""
    for id_ in ids:
        status = states[id_][0] if id_ in states else None
        if status in (Status.FAILED.value, Status.CANCELLED.value):
            return f"Dependency {id_} finished with status {status}."
    return None


async def recover(conn: Connection, rules: Rules, now: datetime, limit: int) -> int:
    """End the runs of nodes whose lease expired as `interrupted`; their tasks are retried or
    failed by their policy. Returns how many runs were recovered."""
    orphans = await queries.orphaned_runs(conn, now, limit)
    await end_runs(
        conn,
        rules,
        (
            Ended(
                run_id=run["id"],
                task_id=run["task_id"],
                outcome=Outcome.INTERRUPTED,
                started=run["started_at"],
                finished=now,
                error=(
                    f"Interrupted: node {run['node']} stopped while the run was in progress "
                    "(its lease expired)."
                ),
                attempt=run["attempt"],
            )
            for run in orphans
        ),
        now,
    )
    await queries.remove_dead_nodes(conn, now)
    return len(orphans)

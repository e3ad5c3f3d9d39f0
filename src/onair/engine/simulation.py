"""A simulated window: every run the engine would start across a set of tasks between two
instants, with the policies applied, and what would conflict. Pure: the tasks and `now` come
in, nothing is stored or run.

What is applied, per occurrence (in `Occurrence.outcome`):

- `run`: it starts at `due` (its DST note, if a gap moved it or a fold made it ambiguous; a
  moved occurrence says from where);
- `skipped`: one occurrence skipped (`onair.engine.calendar`); `paused`: its task is paused
  (what runs on resume is its `policy.resume`'s: not simulated);
- `missed`: already beyond its misfire grace at `now`, or, under the `skip` overlap policy,
  due while the task's previous run would still run (a run lasts what its task holds its
  resource for, when that is known; other runs are taken as instantaneous).

Retries are not counted: a simulated run succeeds. Two runs of different tasks holding the
same resource over overlapping spans are a `Conflict` (admission refuses most of them at
creation; shared tasks and series that drift into each other remain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from onair.engine.calendar import Changes
from onair.engine.conditions import parse_condition
from onair.engine.models import Task
from onair.engine.policies import Policy
from onair.engine.preview import remaining
from onair.engine.triggers import Unbounded
from onair.errors import InvalidInput

MAX_PER_TASK = 2000
"""Occurrences of one task simulated; a task with more in the window is cut (`truncated`)."""
MAX_CONFLICTS = 200

Outcome = Literal["run", "skipped", "paused", "missed"]


@dataclass(frozen=True)
class Occurrence:
    task: Task
    due: datetime
    """Aware UTC."""
    local: datetime
    """The same instant in the task's zone."""
    outcome: Outcome
    note: str | None = None
    """A DST note, a move's origin, or why it does not run."""
    until: datetime | None = None
    """Until when it holds its task's resource (None: unknown, or holds nothing)."""


@dataclass(frozen=True)
class Conflict:
    resource: str
    first: Occurrence
    second: Occurrence


@dataclass(frozen=True)
class Simulation:
    start: datetime
    end: datetime
    occurrences: list[Occurrence]
    conflicts: list[Conflict]
    truncated: bool


def simulate(
    tasks: Iterable[Task],
    start: datetime,
    end: datetime,
    now: datetime,
    policy: Callable[[Task], Policy],
) -> Simulation:
    """The occurrences of `tasks` due in `[start, end)` and their outcomes (module docstring),
    in due order, and the conflicts between them."""
    found: list[Occurrence] = []
    truncated = False
    for task in tasks:
        try:
            items, cut = _of(task, start, end, now, policy(task))
        except (InvalidInput, Unbounded):
            continue  # a rule this version no longer reads, or none within the bound
        found += items
        truncated = truncated or cut
    found.sort(key=lambda o: (o.due, str(o.task.id)))
    conflicts = _conflicts(found)
    return Simulation(start, end, found, conflicts[:MAX_CONFLICTS], truncated)


def _of(
    task: Task, start: datetime, end: datetime, now: datetime, policy: Policy
) -> tuple[list[Occurrence], bool]:
    if task.status.finished:
        return [], False
    zone = parse_condition(task.condition.type, dict(task.condition.parameters)).zone
    items = remaining(task, MAX_PER_TASK, end)
    cut = len(items) == MAX_PER_TASK and items[-1].utc < end
    hold = None if task.hold is None else timedelta(seconds=task.hold)
    result: list[Occurrence] = []
    busy_until: datetime | None = None
    for index, item in enumerate(items):
        if item.utc >= end:
            break
        following = items[index + 1].utc if index + 1 < len(items) else None
        until = item.utc + hold if hold is not None else following if task.resource else None
        outcome: Outcome = "run"
        note = item.note
        late = now - item.utc
        if task.paused:
            outcome = "paused"
            why = f": {task.pause_note}" if task.pause_note else ""
            note = f"paused by {task.paused_by}{why}"
        elif policy.misfire_grace is not None and late > policy.misfire_grace:
            outcome, note = "missed", "beyond its misfire grace"
        elif busy_until is not None and item.utc < busy_until and policy.overlap == "skip":
            outcome, note = "missed", "its previous run would still be in progress"
        if outcome == "run" and hold is not None:
            busy_until = item.utc + hold
        if item.utc >= start:
            result.append(Occurrence(task, item.utc, item.local, outcome, note, until))
    for skipped in sorted(Changes.of(task.changes).skipped):
        if start <= skipped < end:
            note = "skipped (this occurrence only)"
            result.append(Occurrence(task, skipped, skipped.astimezone(zone), "skipped", note))
    return result, cut


def _conflicts(occurrences: list[Occurrence]) -> list[Conflict]:
    """Runs of different tasks that hold one resource over overlapping spans (a span without
    an end holds it from its start on)."""
    by_resource: dict[str, list[Occurrence]] = {}
    for occurrence in occurrences:
        if occurrence.outcome == "run" and occurrence.task.resource:
            by_resource.setdefault(occurrence.task.resource, []).append(occurrence)
    conflicts = []
    for resource, runs in sorted(by_resource.items()):
        open_: list[Occurrence] = []
        for run in runs:  # in due order
            open_ = [o for o in open_ if o.until is None or o.until > run.due]
            conflicts += [Conflict(resource, o, run) for o in open_ if o.task.id != run.task.id]
            open_.append(run)
            if len(conflicts) >= MAX_CONFLICTS:
                return conflicts
    return conflicts

"""What the dashboard shows, computed through the task service for one caller: the next 24
hours, what runs now, recent failures, and one task's rule, next instants and run history.

The caller sees what it sees on the APIs: an admin every task, the station (the open Tasks API
without a token) the system's, a user their own; a task of someone else is reported as not
found.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from onair.audio.asrun import AsRun
from onair.audio.library import Library
from onair.engine.admission import Caller, Role
from onair.engine.calendar import Changes
from onair.engine.models import Outcome, Run, Status, Task
from onair.engine.preview import remaining
from onair.engine.triggers import search_budget
from onair.engine.words import describe_spec
from onair.errors import InvalidInput, NotFound
from onair.operations.readiness import upcoming
from onair.tasks import TaskService
from onair.timeutil import as_utc

HORIZON = timedelta(hours=24)
PENDING_SCANNED = 1000
"""Pending tasks looked at for the timeline (newest first); the answer says when there were more."""
PER_TASK = 200
"""Occurrences of one task drawn in the timeline (a minutely task would have 1440)."""
TIMELINE_INSTANTS = 2_000
"""Occurrences computed for the timeline in all; past them a task shows its next one only."""
TIMELINE_CANDIDATES = 20_000
"""What the timeline's rule searches may examine in all (`onair.engine.triggers.search_budget`):
with a thousand sparse rules pending, drawing it must not hold the event loop for seconds."""

GROUPS = {"stream": "Broadcasts", "play_sound": "Sounds", "play_playlist": "Playlists"}
"""Timeline rows by operation; every other operation is a system task."""


def group(operation: str) -> str:
    return GROUPS.get(operation, "System")


def _viewer(caller: Caller) -> dict[str, Any]:
    """Who looks, and where the page follows events and cancels tasks for them."""
    user = caller.role is Role.USER
    return {
        "user": caller.owner if user else None,
        "role": caller.role.value,
        "scope": "own" if user else "all" if caller.admin else "system",
        "events": "/api/v1/scheduler/events" if user else "/events",
        "cancel": "/api/v1/scheduler/tasks/{id}" if user else "/tasks/{id}",
        "pause": "/api/v1/scheduler/tasks/{id}/pause" if user else "/tasks/{id}/pause",
        "resume": "/api/v1/scheduler/tasks/{id}/resume" if user else "/tasks/{id}/resume",
        "skip": "/api/v1/scheduler/tasks/{id}/skip" if user else "/tasks/{id}/skip",
    }


def _instant(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _summary(task: Task) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "name": task.name or task.operation.type,
        "operation": task.operation.type,
        "group": group(task.operation.type),
        "status": task.status.value,
        "paused": task.paused,
        "owner": task.owner,
    }


MEDIA = {"sound_id": ("sound", "sound"), "playlist_id": ("playlist", "playlist")}
"""Parameters that name media, by the kind shown and the library's getter."""


async def media_of(library: Library, parameters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The sound or playlist a play task names, by name (None: a task of another kind).
    Media deleted since is shown as such rather than failing the page."""
    for key, (kind, getter) in MEDIA.items():
        if key not in parameters:
            continue
        try:
            found = await getattr(library, getter)(UUID(str(parameters[key])))
        except (NotFound, ValueError):
            return {"kind": kind, "id": str(parameters[key]), "name": None}
        return {"kind": kind, "id": str(found.id), "name": found.name}
    return None


AIRED_SHOWN = 20
"""Items of the as-run log the dashboard lists (the latest of the last 24 hours)."""


async def overview(
    service: TaskService, caller: Caller, asrun: AsRun | None = None
) -> dict[str, Any]:
    now = service.engine.clock.now()
    horizon = now + HORIZON
    scope: dict[str, Any] = {"any_owner": True}
    pending, pending_total = await service.page(
        caller, status=Status.PENDING, limit=PENDING_SCANNED, **scope
    )
    running, _ = await service.page(caller, status=Status.RUNNING, limit=500, **scope)
    failed, _ = await service.page(caller, status=Status.FAILED, limit=20, **scope)
    timeline = []
    left = TIMELINE_INSTANTS
    with search_budget(TIMELINE_CANDIDATES):
        for task in pending:
            retry = task.retry_at
            if retry is not None and retry <= horizon:  # a failed run's next attempt
                timeline.append({**_summary(task), "at": _instant(retry), "retry": task.attempt})
            if task.next_at is None or task.next_at > horizon:
                continue
            try:
                items = remaining(task, min(PER_TASK, left), horizon) if left > 0 else []
            except InvalidInput:  # a rule this version no longer accepts: show its next only
                items = []
            left -= len(items)
            instants = [i.utc for i in items] or [task.next_at]
            timeline += [{**_summary(task), "at": _instant(at)} for at in instants]
    timeline.sort(key=lambda item: item["at"])
    failures = [
        {**_summary(t), "at": _instant(t.finished_at or t.updated_at), "error": t.error}
        for t in failed + [t for t in pending + running if _failed_last(t)]
    ]
    failures.sort(key=lambda item: item["at"], reverse=True)
    return {
        "now": _instant(now),
        "horizon": _instant(horizon),
        "viewer": _viewer(caller),
        "timeline": timeline,
        "truncated": pending_total > len(pending),
        "running": [{**_summary(t), "started": _instant(t.started_at)} for t in running],
        "failures": failures[:20],
        "aired": await _aired(asrun, caller, now),
        # The station's broadcasts: not a user's to see.
        "readiness": [] if caller.role is Role.USER else await upcoming(service.engine),
    }


async def _aired(asrun: AsRun | None, caller: Caller, now: datetime) -> list[dict[str, Any]]:
    """The latest items of the as-run log the caller may see (a user: their own), newest
    first."""
    if asrun is None or asrun.store is None:
        return []
    owner = caller.owner if caller.role is Role.USER else None
    since = now - HORIZON
    _, total = await asrun.page(since, now + timedelta(seconds=1), owner, limit=1)
    items, _ = await asrun.page(
        since,
        now + timedelta(seconds=1),
        owner,
        limit=AIRED_SHOWN,
        offset=max(total - AIRED_SHOWN, 0),
    )
    return [item.as_json() for item in reversed(items)]


def _failed_last(task: Task) -> bool:
    """A series still pending whose latest run failed."""
    return task.last_outcome in (Outcome.FAILED, Outcome.INTERRUPTED)


async def task_page(service: TaskService, caller: Caller, task_id: UUID) -> dict[str, Any]:
    """Raises: TaskNotFound, also for a task the caller may not see."""
    task = await service.get(task_id, caller)
    runs, total = await service.runs(task_id, caller, limit=50)
    try:
        upcoming = remaining(task, 10)
    except InvalidInput:
        upcoming = []
    return {
        "viewer": _viewer(caller),
        "task": {
            **_summary(task),
            "owner": task.owner,
            "operation_parameters": dict(task.operation.parameters),
            "condition": {
                "type": task.condition.type,
                "parameters": dict(task.condition.parameters),
            },
            "description": describe_spec(task.condition.type, task.condition.parameters),
            "dependencies": {name: str(i) for name, i in task.dependencies.items()},
            "created": _instant(task.created_at),
            "next": _instant(task.next_due) if task.next_due is not None else None,
            "started": _instant(task.started_at),
            "finished": _instant(task.finished_at),
            "runs": task.runs,
            "error": task.error,
            "cancellable": not task.status.finished,
            "changes": _changes(task),
            "pause": None
            if task.paused_at is None
            else {"at": _instant(task.paused_at), "by": task.paused_by, "note": task.pause_note},
        },
        "next": [
            {"utc": _instant(i.utc), "local": i.local.isoformat(), "note": i.note} for i in upcoming
        ],
        "runs": [_run(run) for run in runs],
        "run_count": total,
    }


def _changes(task: Task) -> dict[str, Any]:
    """The occurrences skipped and moved, one by one, as instants."""
    changes = Changes.of(task.changes)
    return {
        "skipped": [_instant(at) for at in sorted(changes.skipped)],
        "moved": [{"at": _instant(a), "to": _instant(b)} for a, b in sorted(changes.moved.items())],
    }


def _run(run: Run) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "attempt": run.attempt,
        "node": run.node,
        "due": _instant(run.due_at),
        "started": _instant(run.started_at),
        "finished": _instant(run.finished_at),
        "lateness": run.lateness,
        "outcome": run.outcome.value if run.outcome else None,
        "error": run.error,
    }


WEEK = timedelta(days=7)


async def week(service: TaskService, caller: Caller) -> dict[str, Any]:
    """The next 7 days as the engine would run them (`TaskService.simulate`), for the week
    view's grid by day and hour."""
    now = service.engine.clock.now()
    found = await service.simulate(caller, now, now + WEEK)
    return {
        "now": _instant(now),
        "end": _instant(found.end),
        "viewer": _viewer(caller),
        "runs": [
            {
                **_summary(o.task),
                "at": _instant(o.due),
                "local": o.local.isoformat(),
                "outcome": o.outcome,
                "note": o.note,
            }
            for o in found.occurrences
        ],
        "conflicts": [
            {
                "resource": c.resource,
                "at": _instant(c.second.due),
                "first": _summary(c.first.task),
                "second": _summary(c.second.task),
            }
            for c in found.conflicts
        ],
        "truncated": found.truncated,
    }

"""Previews: the next runs a condition would give, with the DST adjustments spelled out, so a
user can check a schedule before trusting it. Pure: `created` stands for "now".

A preview is one bounded search (`triggers.search_budget`): its instants together may examine
`PREVIEW_CANDIDATES` candidates, and a preview that reaches that bound answers the instants it
found (the first one is proven, or the rule is refused, as `Engine.add` would)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from onair.engine.calendar import Changed, task_trigger
from onair.engine.conditions import Condition, check_floor, first_due, parse_condition
from onair.engine.dst import DstPolicy, with_dst
from onair.engine.models import Task
from onair.engine.triggers import (
    MAX_CANDIDATES,
    Every,
    Occurrence,
    OneShot,
    Trigger,
    Unbounded,
    WallClock,
    is_ambiguous,
    search_budget,
)

PREVIEW_CANDIDATES = 2 * MAX_CANDIDATES
"""What one preview (or one task's upcoming runs on the dashboard) may examine in all."""


@dataclass(frozen=True)
class PreviewItem:
    """One planned run: `utc` (aware UTC), `local` (the same instant in the condition's zone)
    and a `note` when a DST gap moved it or a fold made its wall time ambiguous."""

    utc: datetime
    local: datetime
    note: str | None = None


def preview(
    condition: Condition,
    created: datetime,
    count: int = 10,
    after: datetime | None = None,
    until: datetime | None = None,
    changes: Any = None,
    policy: Mapping[str, Any] | None = None,
) -> list[PreviewItem]:
    """The first `count` runs of `condition` for a task created at `created` (aware UTC),
    fewer when the series ends or its `limit` is smaller; with `after`, only runs strictly
    after it (what is still ahead of a series that began in the past); with `until`, only
    runs up to it. Bounded: the instants found before the search's bound
    (`PREVIEW_CANDIDATES`), none when the first is not found within it. `changes` are the
    task's single-occurrence changes (`onair.engine.calendar`), as stored, and `policy` its
    policy overrides (their DST policy applies, `onair.engine.dst`)."""
    trigger = task_trigger(condition.trigger(created), policy, changes)
    rule = trigger.base if isinstance(trigger, Changed) else trigger
    zone = condition.zone
    wanted = count if condition.limit is None else min(count, condition.limit)
    items: list[PreviewItem] = []
    with search_budget(PREVIEW_CANDIDATES):
        while len(items) < wanted:
            try:
                found = _occurrence(trigger, after)
            except Unbounded:
                break
            if found is None or (until is not None and found.utc > until):
                break
            local = found.utc.astimezone(zone)
            note = _note(found.wall, local, zone)
            if isinstance(rule, DstPolicy):
                note = rule.note(found) or note
            if isinstance(trigger, Changed) and (original := trigger.moved_from(found.utc)):
                note = f"moved from {original.astimezone(zone).isoformat()}"
            items.append(PreviewItem(found.utc, local, note))
            after = found.utc
    return items


def _occurrence(trigger: Trigger, after: datetime | None) -> Occurrence | None:
    if isinstance(trigger, OneShot | Every | WallClock | Changed | DstPolicy):
        return trigger.occurrence_after(after)
    instant = trigger.next_after(after)
    return None if instant is None else Occurrence(instant)


def _note(wall: datetime | None, local: datetime, zone: ZoneInfo) -> str | None:
    if wall is None:
        return None
    day = wall.date().isoformat()
    if local.replace(tzinfo=None) != wall:
        moved = _clock(local) if local.date() == wall.date() else f"{local.date()} {_clock(local)}"
        return f"{_clock(wall)} does not exist on {day} in {zone.key}; moved to {moved}"
    if is_ambiguous(wall, zone):
        first = wall.replace(tzinfo=zone, fold=0).strftime("%z")
        second = wall.replace(tzinfo=zone, fold=1).strftime("%z")
        return (
            f"{_clock(wall)} occurs twice on {day} in {zone.key} (UTC{_offset(first)}, then "
            f"UTC{_offset(second)}); the first is used"
        )
    return None


def _clock(value: datetime) -> str:
    return value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")


def _offset(text: str) -> str:
    return f"{text[:3]}:{text[3:5]}"


_TICK = timedelta(microseconds=1)


def upcoming(
    condition: Condition,
    now: datetime,
    count: int,
    floor: timedelta = timedelta(seconds=1),
    policy: Mapping[str, Any] | None = None,
) -> list[PreviewItem]:
    """The first `count` runs of a task with `condition` added at `now` (aware UTC). A one-shot
    keeps its instant even when it is past (the misfire policy decides); a series starts at
    its first occurrence from `now` on, as `Engine.add` places it, and refused as it refuses.

    Raises:
        InvalidParameters: the rule has no occurrence, or none within the search bound, or
            it would run more often than `floor` (the node's `engine.min_interval`).
    """
    check_floor(condition, floor)
    trigger = with_dst(condition.trigger(now), policy)
    first = first_due(condition, trigger, now)
    after = None if isinstance(trigger, OneShot) else first - _TICK
    return preview(condition, now, count, after, policy=policy)


def remaining(task: Task, count: int, until: datetime | None = None) -> list[PreviewItem]:
    """The next `count` runs still ahead of `task` (up to `until`, if given), from its next
    due instant; none once it has finished. A series' `count` limit takes off the occurrences
    already had."""
    if task.status.finished or task.next_at is None:
        return []
    condition = parse_condition(task.condition.type, dict(task.condition.parameters))
    if condition.limit is not None:
        count = min(count, condition.limit - task.occurrences)
    if count <= 0:
        return []
    after = task.next_at - _TICK
    return preview(condition, task.created_at, count, after, until, task.changes, task.policy)

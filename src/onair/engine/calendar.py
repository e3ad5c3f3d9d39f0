"""Single-occurrence changes of a series: skip one occurrence, or move it to another instant,
without touching the rest (as a calendar's EXDATE and RECURRENCE-ID overrides).

An occurrence is named by the instant its rule gives it (aware UTC), its *original*. The
changes of a task are stored with it (`tasks.changes`, JSON) and applied by wrapping its
trigger in `Changed`: the rule's occurrences, less the skipped and moved originals, merged with
the moved ones' new instants. So the claim loop, the previews and the feed all see the same
series, and a restart changes nothing.

A skipped occurrence is not run and does not count towards the series' `count` (the series
keeps its number of runs); a moved one counts once, at its new instant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from onair.engine.dst import DstPolicy, with_dst
from onair.engine.triggers import Every, Occurrence, OneShot, Trigger, WallClock

MAX_CHANGES = 200
"""Changes one task may hold: each one costs every evaluation of its trigger a comparison."""

_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Changes:
    """The skipped originals and the moves (original -> new instant) of one task."""

    skipped: frozenset[datetime] = frozenset()
    moved: Mapping[datetime, datetime] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.skipped or self.moved)

    def __len__(self) -> int:
        return len(self.skipped) + len(self.moved)

    @property
    def removed(self) -> frozenset[datetime]:
        """The originals that no longer happen at their own instant."""
        return self.skipped | frozenset(self.moved)

    def skip(self, original: datetime) -> Changes:
        return Changes(self.skipped | {original}, self.moved)

    def move(self, original: datetime, to: datetime) -> Changes:
        return Changes(self.skipped, {**self.moved, original: to})

    def as_json(self) -> dict[str, Any] | None:
        """The column's value (None when there is no change)."""
        if not self:
            return None
        return {
            "skipped": sorted(_text(s) for s in self.skipped),
            "moved": [{"from": _text(a), "to": _text(b)} for a, b in sorted(self.moved.items())],
        }

    @classmethod
    def of(cls, value: Any) -> Changes:
        """From the column's value (None: no change)."""
        if not value:
            return cls()
        return cls(
            frozenset(_instant(s) for s in value.get("skipped", ())),
            {_instant(m["from"]): _instant(m["to"]) for m in value.get("moved", ())},
        )


def _text(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@dataclass(frozen=True)
class Changed:
    """`base` with `changes` applied (module docstring). A `Trigger`, and like the rule
    triggers it tells previews the wall time a rule asked for (`occurrence_after`)."""

    base: Trigger
    changes: Changes

    def occurrence_after(self, instant: datetime | None) -> Occurrence | None:
        removed = self.changes.removed
        found = _base_after(self.base, instant)
        while found is not None and found.utc in removed:  # at most len(removed) turns
            found = _base_after(self.base, found.utc)
        moved = [to for to in self.changes.moved.values() if instant is None or to > instant]
        if moved and (found is None or min(moved) < found.utc):
            return Occurrence(min(moved))
        return found

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc

    def moved_from(self, instant: datetime) -> datetime | None:
        """The original of the occurrence moved to `instant`, if one was."""
        for original, to in self.changes.moved.items():
            if to == instant:
                return original
        return None


def _base_after(trigger: Trigger, instant: datetime | None) -> Occurrence | None:
    if isinstance(trigger, OneShot | Every | WallClock | DstPolicy):
        return trigger.occurrence_after(instant)
    found = trigger.next_after(instant)
    return None if found is None else Occurrence(found)


def changed(trigger: Trigger, value: Any) -> Trigger:
    """`trigger` with the changes stored as `value` (the column) applied; itself if none."""
    changes = Changes.of(value)
    return Changed(trigger, changes) if changes else trigger


def task_trigger(
    trigger: Trigger, policy: Mapping[str, Any] | None, changes: Any = None
) -> Trigger:
    """A task's trigger: its rule's `trigger` under its DST policy (`onair.engine.dst`), with
    its single-occurrence `changes` (as stored) applied."""
    return changed(with_dst(trigger, policy), changes)


def is_occurrence(trigger: Trigger, instant: datetime) -> bool:
    """Whether the rule itself (no change applied) has an occurrence at `instant`."""
    return trigger.next_after(instant - _TICK) == instant

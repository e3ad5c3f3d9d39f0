"""A DST policy per task: what a wall-clock rule does with a wall time its zone skips (a gap)
or shows twice (a fold), beyond the written default.

The default (docs/scheduling.md) stays: a wall time in a gap runs at the first instant after
it (`dst_gap: shift`), one in a fold runs once, at its first pass (`dst_fold: first`). A task's
`policy` may choose `dst_gap: skip` (no run for it: Temporal's and EventBridge's reading) and
`dst_fold: second` (its second pass) or `both` (each pass; Dagster's cron reading of a fold
differs in places, `both` is the one that never loses a run). `DstPolicy` wraps the rule's
`WallClock` and maps each of its occurrences to the instants the policy gives; previews, the
simulated window and the feed mark each instant a policy moved (`note`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from onair.engine.triggers import Occurrence, Trigger, WallClock, is_ambiguous

Gap = Literal["shift", "skip"]
Fold = Literal["first", "second", "both"]

_TICK = timedelta(microseconds=1)
_MARGIN = timedelta(hours=3)
"""Longer than any gap or fold (Antarctica/Troll's are 2 hours): a policy never moves an
occurrence further than this from where the rule puts it."""


@dataclass(frozen=True)
class DstPolicy:
    """`base` with the `gap` and `fold` policies applied. A `Trigger`."""

    base: WallClock
    gap: Gap = "shift"
    fold: Fold = "first"

    def _instants(self, found: Occurrence) -> list[Occurrence]:
        wall, zone = found.wall, self.base.zone
        if wall is None:
            return [found]
        local = found.utc.astimezone(zone).replace(tzinfo=None)
        if local != wall:  # in a gap: shifted to its end, where the rule may have its own
            if self.gap == "shift":
                return [found]
            own = self.base.pattern.after(local - _TICK, None)
            return [Occurrence(found.utc, local)] if own == local else []
        if self.fold == "first" or not is_ambiguous(wall, zone):
            return [found]
        second = Occurrence(wall.replace(tzinfo=zone, fold=1).astimezone(UTC), wall)
        if self.base.until is not None and second.utc > self.base.until:
            return [found] if self.fold == "both" else []
        return [found, second] if self.fold == "both" else [second]

    def occurrence_after(self, instant: datetime | None) -> Occurrence | None:
        """Raises: Unbounded, as the rule's."""
        probe = None if instant is None else instant - _MARGIN
        best: Occurrence | None = None
        while True:
            found = self.base.occurrence_after(probe)
            if found is None or (best is not None and found.utc > best.utc):
                return best
            for candidate in self._instants(found):
                if instant is None or candidate.utc > instant:
                    if best is None or candidate.utc < best.utc:
                        best = candidate
            probe = found.utc

    def next_after(self, instant: datetime | None) -> datetime | None:
        found = self.occurrence_after(instant)
        return None if found is None else found.utc

    def note(self, found: Occurrence) -> str | None:
        """What the policy did to `found`, when it is not the default's doing (None)."""
        wall, zone = found.wall, self.base.zone
        if wall is None or self.fold == "first" or not is_ambiguous(wall, zone):
            return None
        clock = wall.strftime("%H:%M")
        first = found.utc == wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        which = "first" if first else "second"
        each = "each pass runs" if self.fold == "both" else "its second pass runs"
        return (
            f"{clock} occurs twice on {wall.date()} in {zone.key}; {each} (dst_fold: "
            f"{self.fold}): this is the {which}"
        )


def with_dst(trigger: Trigger, policy: Mapping[str, Any] | None) -> Trigger:
    """`trigger` under the DST policy of a task's `policy` overrides (itself when it has none
    or the rule has no wall clock)."""
    gap = (policy or {}).get("dst_gap", "shift")
    fold = (policy or {}).get("dst_fold", "first")
    if not isinstance(trigger, WallClock) or (gap, fold) == ("shift", "first"):
        return trigger
    return DstPolicy(trigger, gap, fold)

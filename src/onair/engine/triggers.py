"""Triggers: when a task's runs are due. Pure functions of an instant; no clock is read here.

Every instant in and out is an aware UTC datetime. Wall-clock rules are evaluated in their zone
(see docs/scheduling.md for the DST rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Trigger(Protocol):
    """The instants a task is due at, in increasing order."""

    def next_after(self, instant: datetime | None) -> datetime | None:
        """The first due instant strictly after `instant`, or the series' first one when
        `instant` is None. None means the series has ended."""
        ...


@dataclass(frozen=True)
class OneShot:
    """Due once, at `instant` (which may already be past: the misfire policy decides)."""

    instant: datetime

    def next_after(self, instant: datetime | None) -> datetime | None:
        if instant is None or self.instant > instant:
            return self.instant
        return None

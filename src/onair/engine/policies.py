"""Per-task policies: retries, misfire grace and overlap. Pure functions of explicit instants.

Each operation gives defaults (`Operation.policy`); a task may override any field with its own
`policy` object. See docs/scheduling.md for the rules.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Retry(BaseModel):
    """How often a failed run is tried again, and after how long.

    Attempt `n` (1-based) that fails is followed by attempt `n + 1` after
    `min(backoff * factor ** (n - 1), cap)`, until `attempts` have been made.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(1, ge=1, le=100, description="Attempts in all; 1 means no retry.")
    backoff: timedelta = Field(timedelta(seconds=1), description="Delay before the 2nd attempt.")
    factor: float = Field(2.0, ge=1.0, le=10.0, description="Growth of the delay per attempt.")
    cap: timedelta = Field(timedelta(minutes=10), description="Longest delay between attempts.")

    def delay(self, failed_attempt: int) -> timedelta | None:
        """The wait before the attempt after `failed_attempt`, or None when none is left."""
        if failed_attempt >= self.attempts:
            return None
        seconds = self.backoff.total_seconds() * self.factor ** (failed_attempt - 1)
        return min(timedelta(seconds=seconds), self.cap)


class Policy(BaseModel):
    """What the engine does when a run fails, is late, or would overlap the previous one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry: Retry = Field(default_factory=Retry)
    misfire_grace: timedelta | None = Field(
        None,
        description=(
            "How late a run may still start. Beyond it the occurrence is missed. "
            "None: no limit, a late run always starts."
        ),
    )
    overlap: Literal["skip", "allow", "replace"] = Field(
        "skip", description="When an occurrence is due while the previous run still runs."
    )
    catch_up: bool = Field(
        False, description="After missed occurrences, run once for them (at most one catch-up)."
    )

    def merged(self, overrides: dict[str, Any] | None) -> Policy:
        """This policy with a task's `overrides` applied (validated)."""
        if not overrides:
            return self
        data = self.model_dump()
        for key, value in overrides.items():
            if key == "retry" and isinstance(value, dict):
                data["retry"] = {**data["retry"], **value}
            else:
                data[key] = value
        return Policy.model_validate(data)

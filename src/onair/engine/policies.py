"""Per-task policies: retries, misfire grace and overlap. Pure functions of explicit instants.

Each operation gives defaults (`Operation.policy`); a task may override any field with its own
`policy` object. See docs/scheduling.md for the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from onair.timeutil import human_duration


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
    """What the engine does when a run fails, is late, would overlap the previous one, or
    needs a resource another task holds."""

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
    resume: Literal["drop", "latest"] = Field(
        "drop",
        description=(
            "On resuming a paused task: drop the occurrences missed while it was paused, or "
            "run the latest of them once, at the resume."
        ),
    )
    dst_gap: Literal["shift", "skip"] = Field(
        "shift",
        description=(
            "A wall time its zone skips (DST gap): shift runs it at the first instant after "
            "the gap; skip runs nothing for it."
        ),
    )
    dst_fold: Literal["first", "second", "both"] = Field(
        "first",
        description="A wall time its zone shows twice (DST fold): which pass runs.",
    )
    resource: Literal["exclusive", "shared"] = Field(
        "exclusive",
        description=(
            "exclusive: refused when its first run would overlap another task holding the same "
            "resource (an output); shared: admitted anyway (it still holds the resource)."
        ),
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


@dataclass(frozen=True)
class Occurrence:
    """What to do with a task's due occurrence, decided at claim time.

    `run` says whether to start a run for `due`; `missed` occurrences (from `first_missed`) are
    recorded instead of run; `next_at` is the series' following occurrence and `consumed` how
    many occurrences this decision used up (for the series' count).
    """

    run: bool
    due: datetime
    missed: int
    first_missed: datetime | None
    reason: str | None
    next_at: datetime | None
    consumed: int


def decide(
    next_after: Callable[[datetime], datetime | None],
    remaining: int | None,
    due: datetime,
    now: datetime,
    policy: Policy,
) -> Occurrence:
    """The misfire rule. Occurrences overtaken by a later one that is also already due are
    missed (a series never runs a burst of late runs); the latest due occurrence runs if it is
    within the grace, else it is missed too. With `catch_up`, missed occurrences give exactly
    one run, now. `remaining` is how many occurrences the series' count still allows (None: no
    count); `next_after` is the trigger's. Bounded: past `WALKED` missed occurrences the rest
    are skipped and their number estimated from their spacing.
    """

    def following(instant: datetime, used: int) -> datetime | None:
        if remaining is not None and used >= remaining:
            return None
        return next_after(instant)

    current, used, missed = due, 1, 0
    upcoming = following(current, used)
    while upcoming is not None and upcoming <= now and missed < WALKED:
        missed, used, current = missed + 1, used + 1, upcoming
        upcoming = following(current, used)
    estimated = False
    if upcoming is not None and upcoming <= now:  # too many to walk: skip to those around now
        jump = _skip_ahead(next_after, due, current, missed, now)
        if jump is not None:
            latest, upcoming, skipped = jump
            estimated = True
            if remaining is not None and used + skipped >= remaining:
                # The count runs out in what is skipped: its last occurrence, about where the
                # spacing puts it, is the one due.
                left = remaining - used
                guess = current + (latest - current) * left / skipped
                last = next_after(guess - (latest - current) / skipped / 2)
                current = latest if last is None or last > latest else last
                missed, used, upcoming = missed + left, remaining, None
            else:
                current, missed, used = latest, missed + skipped, used + skipped
    late = now - current
    expired = policy.misfire_grace is not None and late > policy.misfire_grace
    reasons = []
    if estimated:
        reasons.append(
            f"Missed: about {missed} occurrences from {due.isoformat()} passed while a later "
            f"one was already due (the first {WALKED} counted, the rest from their spacing)."
        )
    elif missed:
        reasons.append(
            f"Missed: {missed} occurrence{'s' if missed > 1 else ''} from {due.isoformat()} "
            "passed while a later one was already due."
        )
    if expired:
        assert policy.misfire_grace is not None
        missed += 1
        reasons.append(
            f"Expired: due at {current.isoformat()}, {describe(late)} late, beyond the misfire "
            f"grace of {describe(policy.misfire_grace)}."
        )
    reason = " ".join(reasons) or None
    run = not expired or (policy.catch_up and missed > 0)
    return Occurrence(
        run=run,
        due=current,
        missed=missed - (1 if expired and run else 0),
        first_missed=due if missed else None,
        reason=reason,
        next_at=upcoming,
        consumed=used,
    )


WALKED = 200
"""Missed occurrences counted one by one before the rest are skipped (`_skip_ahead`): walking
100,000 occurrences of an every-second RRULE kept the event loop for 8.5 s at a restart after a
day down, and a month of an every-minute cron for 10 s."""


def _skip_ahead(
    next_after: Callable[[datetime], datetime | None],
    due: datetime,
    current: datetime,
    walked: int,
    now: datetime,
) -> tuple[datetime, datetime | None, int] | None:
    """The latest occurrence at or before `now`, the one after it, and about how many lie in
    (`current`, latest], found by searching back from `now` in widening windows (from twice the
    spacing of the `walked` occurrences since `due`). None when the windows reach back to
    `current` without one: the caller walks on from there at its next claim."""
    spacing = (current - due) / max(walked, 1)
    window = max(2 * spacing, timedelta(seconds=1))
    while window < now - current:  # (as `now - window > current`, which may overflow)
        probe = next_after(now - window)
        if probe is None:
            return None
        if probe <= now:
            after = next_after(probe)
            for _ in range(WALKED):
                if after is None or after > now:
                    break
                probe, after = after, next_after(after)
            skipped = max(1, round((probe - current) / spacing)) if spacing else 1
            return probe, after, skipped
        window *= 4
    return None


def describe(delta: timedelta) -> str:
    """A duration for people, in words (`50 ms`, `1 minute 30 seconds`, `2 years 335 days`):
    a refusal or a missed run says how late in terms nobody has to convert."""
    return human_duration(delta)

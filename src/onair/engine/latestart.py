"""Late starts: what an audio run does when its audio begins after the planned instant.

A run can reach its audio late for reasons the engine's misfire grace never sees: a slow
download, a wait for emistream's reservation, a node that started late, a busy output. Each
audio operation (`stream`, `play_sound`, `play_playlist`) takes a policy per task:

* `join`: seek into the audio by the lateness, so that it ends when it would have ended on
  time (the default of broadcasts: the show follows the wall clock, as LibreTime does);
* `full`: play all of it, late (the default of sounds and playlists);
* `skip`: play nothing when later than the grace (the run completes and says so).

Lateness up to `late_grace` seconds counts as on time under every policy: the audio plays from
its start. The decision is a pure function of the planned instant and the reading of the clock
that comes in, so it is tested without audio; what it decided is recorded on the run's result
(`late_start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

LatePolicy = Literal["join", "full", "skip"]
Action = Literal["on_time", "joined", "played_full", "skipped"]

DEFAULT_GRACE = 1.0
"""Seconds of lateness that still count as on time: below a second, seeking into a broadcast
would cut more (an Ogg page, a frame) than it saves."""


def grace_field() -> Any:
    """The `late_grace` field the audio operations' parameter models share."""
    return Field(
        DEFAULT_GRACE,
        ge=0,
        le=86_400,
        description=(
            "Seconds of lateness that count as on time: within them the audio plays from its "
            "start whatever `late_start` says."
        ),
    )


def policy_field(default: LatePolicy) -> Any:
    """The `late_start` field, with the operation's default."""
    return Field(
        default,
        description=(
            "When the audio starts later than `late_grace`: join (seek into it by the "
            "lateness, so that it ends on time), full (play all of it, late) or skip (play "
            "nothing)."
        ),
    )


@dataclass(frozen=True)
class LateStart:
    """What a run did about its lateness. `offset` is the seconds of audio skipped at the start
    (joined at); `lateness` is seconds from the planned instant to the decision (negative when
    early)."""

    policy: LatePolicy
    grace: float
    lateness: float
    action: Action
    offset: float = 0.0

    @property
    def plays(self) -> bool:
        return self.action != "skipped"

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "grace_seconds": self.grace,
            "lateness_seconds": round(self.lateness, 3),
            "action": self.action,
            "offset_seconds": round(self.offset, 3),
        }


def decide(
    policy: LatePolicy,
    grace: float,
    planned: datetime,
    now: datetime,
    duration: float | None = None,
) -> LateStart:
    """The decision for audio planned to start at `planned` when the clock reads `now` (both
    aware). Audio of a known `duration` that a join would enter past its end is skipped:
    nothing of it is left to air."""
    lateness = (now - planned).total_seconds()
    if lateness <= grace:
        return LateStart(policy, grace, lateness, "on_time")
    if policy == "skip" or (policy == "join" and duration is not None and lateness >= duration):
        return LateStart(policy, grace, lateness, "skipped")
    if policy == "full":
        return LateStart(policy, grace, lateness, "played_full")
    return LateStart(policy, grace, lateness, "joined", offset=lateness)


def join_tracks(durations: list[float], offset: float) -> tuple[int, float]:
    """Where a playlist joined `offset` seconds in starts: (index of the first track that
    plays, seconds into it). Past the last track: (len(durations), 0.0)."""
    for index, seconds in enumerate(durations):
        if offset < seconds:
            return index, offset
        offset -= seconds
    return len(durations), 0.0

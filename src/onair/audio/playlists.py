"""Which track of a playlist plays next: pure planning, no audio, no clock.

A plan is an iterator of track indices into the playlist as stored. Looping modes never end on
their own; the player stops them at the run's `max_duration` or when the run is cancelled, and
it is the player that measures time. Randomness comes only from the injected `random.Random`,
so a seeded generator gives the exact sequence back (tests, and a reproducible run when the
seed is recorded). The rules are written out in docs/operations.md, "Playing sounds and
playlists".
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from onair.engine.latestart import LatePolicy, grace_field, policy_field

PlayMode = Literal["continuous", "single", "loop", "loop_one", "random"]


class PlaySoundParameters(BaseModel):
    sound_id: UUID
    output: str | None = Field(
        None, min_length=1, description="Name of a configured output; None: the default one."
    )
    late_start: LatePolicy = policy_field("full")
    late_grace: float = grace_field()


class PlayPlaylistParameters(BaseModel):
    playlist_id: UUID
    play_mode: PlayMode = Field(
        "continuous",
        description=(
            "continuous: the list once; single: its first track; loop: the list again and "
            "again; loop_one: the first track again and again; random: tracks picked at random "
            "until stopped."
        ),
    )
    shuffle: bool = Field(
        False, description="Shuffle the order once before playing (continuous and loop only)."
    )
    output: str | None = Field(
        None, min_length=1, description="Name of a configured output; None: the default one."
    )
    max_duration: float | None = Field(
        None,
        gt=0,
        description=(
            "Seconds after which the run stops: the track playing then is cut, and no track "
            "starts after it. None: looping modes play until the run is cancelled."
        ),
    )
    late_start: LatePolicy = policy_field("full")
    late_grace: float = grace_field()


def plan(mode: PlayMode, count: int, rng: random.Random, *, shuffle: bool = False) -> Iterator[int]:
    """Indices (0-based) of the tracks to play, in order, for a playlist of `count` tracks.

    An empty playlist plays nothing in every mode. `shuffle` draws one permutation from `rng`
    before the first track and keeps it: `loop` repeats that same order. It is ignored by
    `single` and `loop_one` (the first track as stored) and by `random`. `random` picks each
    track uniformly among all tracks but the one just played (any track when there is one).

    Raises:
        ValueError: `count` is negative or `mode` is unknown.
    """
    if count < 0:
        raise ValueError(f"a playlist cannot have {count} tracks")
    if count == 0:
        return iter(())
    order = list(range(count))
    if shuffle and mode in ("continuous", "loop"):
        rng.shuffle(order)
    match mode:
        case "continuous":
            return iter(order)
        case "single":
            return iter((0,))
        case "loop":
            return itertools.cycle(order)
        case "loop_one":
            return itertools.repeat(0)
        case "random":
            return _random(count, rng)
    raise ValueError(f"unknown play mode {mode!r}")


def _random(count: int, rng: random.Random) -> Iterator[int]:
    previous: int | None = None
    while True:
        if previous is None or count == 1:
            pick = rng.randrange(count)
        else:
            # Uniform over the other tracks: draw among count - 1 and skip over the previous one.
            pick = rng.randrange(count - 1)
            if pick >= previous:
                pick += 1
        yield pick
        previous = pick

"""The `play_sound` and `play_playlist` operations, and the checks their tasks pass at creation.

A run plays through the `Player` on one output and pays for what it plays: a user's run takes
`cost` credits per sound from its owner before the first one starts (as many sounds as it will
play when that is known, else as many as the balance pays for, all in one transaction keyed by
the run id), and gives back the credits of sounds it did not play when it ends, however it ends.
A run the balance cannot pay one sound of fails with "insufficient credits" and plays nothing.
System tasks (no owner) play free. docs/operations.md has the rules.

`PlayChecks` is what `SchedulerService.create` asks before adding a play task: the sound or
playlist exists and is the owner's, the output exists, and a one-shot task does not overlap
another one-shot play task on the same output (unless told to).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel

from onair.audio import queries
from onair.audio.library import Library, Playlist, PlaylistNotFound, Sound, SoundNotFound
from onair.audio.player import Playback, Player
from onair.audio.playlists import PlayPlaylistParameters, PlaySoundParameters, plan
from onair.engine.policies import Policy
from onair.engine.registry import JSON, RunContext
from onair.errors import Conflict, InvalidInput, InvalidParameters, OperationError, Problem
from onair.store.database import Store

MAX_TRACKS = 10_000
"""Most tracks one run of an endless playlist mode pays for (and so plays) at once."""

_POLICY = Policy(misfire_grace=timedelta(minutes=5))
"""A sound is played at most five minutes late (after an outage, say): an alarm heard hours
later is worse than none. No retries: a run that failed on the air is not replayed later."""


class InsufficientCredits(OperationError):
    def __init__(self, user_id: str, cost: int) -> None:
        super().__init__(
            f"insufficient credits: user {user_id} cannot pay the {cost} credit(s) of one sound; "
            "nothing was played."
        )


class PlayConflict(Conflict):
    """A one-shot play task would overlap another on the same output."""

    def __init__(
        self, output: str, start: datetime, end: datetime, other: Mapping[str, Any]
    ) -> None:
        super().__init__(
            f"Output {output} is taken from {other['start'].isoformat()} to "
            f"{other['end'].isoformat()} by task {other['id']} ({other['name'] or 'unnamed'}), "
            f"which overlaps {start.isoformat()} to {end.isoformat()}; "
            "set allow_overlap to schedule it anyway."
        )
        self.task_id = other["id"]


@dataclass
class _Counter:
    """Tracks handed to the player, which asks for each just before playing it."""

    started: int = 0

    def count(self, paths: Sequence[Path]) -> Iterator[Path]:
        for path in paths:
            self.started += 1
            yield path


class _Play:
    """What both operations share: paying, playing and giving back."""

    policy: ClassVar[Policy] = _POLICY

    def __init__(
        self, library: Library, player: Player, store: Store, cost: int, seed: int | None
    ) -> None:
        self.library = library
        self.player = player
        self.store = store
        self.cost = cost
        self.seed = seed

    def _rng(self) -> random.Random:
        return random.Random(self.seed)

    async def _play(
        self,
        context: RunContext,
        tracks: Sequence[Sound],
        output: str | None,
        max_duration: float | None = None,
    ) -> tuple[list[Playback], int]:
        """Play `tracks` (paid for first; any not paid for are dropped) and return the
        playbacks and the credits spent."""
        name = self.player.output(output)
        paid = await self._reserve(context, len(tracks))
        counter = _Counter()
        playbacks: list[Playback] = []
        try:
            paths = [self.library.file(t) for t in tracks[:paid]]
            playbacks = await self.player.play_many(
                counter.count(paths), name, max_duration=max_duration
            )
        finally:
            # The last track handed over was not played when the run ended by its max duration.
            played = len(playbacks) if playbacks else counter.started
            await asyncio.shield(self._refund(context, paid - played))
        return playbacks, played * self._cost(context)

    def _cost(self, context: RunContext) -> int:
        return 0 if context.owner is None else self.cost

    async def _reserve(self, context: RunContext, wanted: int) -> int:
        """Sounds paid for out of `wanted`; raises InsufficientCredits when not even one."""
        if context.owner is None or wanted == 0:
            return wanted
        async with self.store.begin() as conn:
            paid = await queries.reserve(
                conn,
                context.owner,
                context.run_id,
                context.task_id,
                "play",
                self.cost,
                wanted,
                context.clock.now(),
            )
        if paid == 0:
            raise InsufficientCredits(context.owner, self.cost)
        return paid

    async def _refund(self, context: RunContext, sounds: int) -> None:
        if context.owner is None or sounds <= 0 or self.cost == 0:
            return
        async with self.store.begin() as conn:
            await queries.refund(
                conn, context.owner, context.run_id, sounds * self.cost, context.clock.now()
            )

    async def _media(self, getter: Any, media_id: UUID) -> Any:
        try:
            return await getter(media_id)
        except (SoundNotFound, PlaylistNotFound) as error:
            raise OperationError(f"{error} It was deleted after the task was created.") from None


class PlaySound(_Play):
    name: ClassVar[str] = "play_sound"
    Parameters: ClassVar[type[BaseModel]] = PlaySoundParameters

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{sound_id, name, output, duration_seconds, seconds_played, started, ended,
        credits_spent}`: the whole sound, played once."""
        assert isinstance(parameters, PlaySoundParameters)
        sound: Sound = await self._media(self.library.sound, parameters.sound_id)
        playbacks, spent = await self._play(context, [sound], parameters.output)
        [playback] = playbacks
        return {
            "sound_id": str(sound.id),
            "name": sound.name,
            "output": playback.output,
            "duration_seconds": sound.duration_seconds,
            "seconds_played": round(playback.seconds_played, 3),
            "started": playback.started.isoformat(),
            "ended": playback.ended.isoformat(),
            "credits_spent": spent,
        }


class PlayPlaylist(_Play):
    name: ClassVar[str] = "play_playlist"
    Parameters: ClassVar[type[BaseModel]] = PlayPlaylistParameters

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{playlist_id, name, play_mode, shuffle, output, tracks: [{position, sound_id, name,
        seconds_played, started, ended}], seconds_played, credits_spent}`; `position` is the
        track's 0-based place in the playlist."""
        assert isinstance(parameters, PlayPlaylistParameters)
        playlist: Playlist = await self._media(self.library.playlist, parameters.playlist_id)
        order = plan(
            parameters.play_mode, len(playlist.tracks), self._rng(), shuffle=parameters.shuffle
        )
        positions = list(itertools.islice(order, self._wanted(parameters, playlist)))
        tracks = [playlist.tracks[i] for i in positions]
        playbacks, spent = await self._play(
            context, tracks, parameters.output, parameters.max_duration
        )
        played = [
            {
                "position": position,
                "sound_id": str(track.id),
                "name": track.name,
                "seconds_played": round(playback.seconds_played, 3),
                "started": playback.started.isoformat(),
                "ended": playback.ended.isoformat(),
            }
            for position, track, playback in zip(positions, tracks, playbacks, strict=False)
        ]
        return {
            "playlist_id": str(playlist.id),
            "name": playlist.name,
            "play_mode": parameters.play_mode,
            "shuffle": parameters.shuffle,
            "output": self.player.output(parameters.output),
            "tracks": played,
            "seconds_played": round(sum(p.seconds_played for p in playbacks), 3),
            "credits_spent": spent,
        }

    @staticmethod
    def _wanted(parameters: PlayPlaylistParameters, playlist: Playlist) -> int:
        """How many tracks of the plan may start: those of a finite mode, or in an endless
        one as many as fit in `max_duration` (each track at least 0.1 s), at most MAX_TRACKS."""
        if parameters.play_mode == "continuous":
            return len(playlist.tracks)
        if parameters.play_mode == "single":
            return min(1, len(playlist.tracks))
        if parameters.max_duration is None or not playlist.tracks:
            return MAX_TRACKS
        shortest = max(min(t.duration_seconds for t in playlist.tracks), 0.1)
        return min(MAX_TRACKS, int(parameters.max_duration / shortest) + 1)


# Checks at creation ---------------------------------------------------------------------------


def known_duration(
    task_type: str, parameters: Mapping[str, Any], media: Sound | Playlist
) -> float | None:
    """Seconds a play task's run lasts, when that is known before it runs: a sound's duration;
    a playlist's total (`continuous`), first track (`single`), both cut at `max_duration`; a
    looping mode's `max_duration`; None for a looping mode without one."""
    limit = parameters.get("max_duration")
    if isinstance(media, Sound):
        return media.duration_seconds
    mode = parameters.get("play_mode", "continuous")
    if mode == "continuous":
        seconds = media.duration_seconds
    elif mode == "single":
        seconds = media.tracks[0].duration_seconds if media.tracks else 0.0
    else:
        return None if limit is None else float(limit)
    return seconds if limit is None else min(seconds, float(limit))


class PlayChecks:
    """What a play task must satisfy to be added (asked by `SchedulerService.create`)."""

    def __init__(self, library: Library, player: Player, store: Store) -> None:
        self.library = library
        self.player = player
        self.store = store

    async def check(
        self,
        task_type: str,
        parameters: Mapping[str, Any],
        *,
        owner: str | None,
        start: datetime | None,
        allow_overlap: bool = False,
    ) -> None:
        """Check a new task of `task_type` (parameters already validated by its model).

        `start` is the instant of a one-shot task (None for a series, which is not checked
        for overlaps).

        Raises:
            InvalidParameters: the sound or playlist does not exist or is not `owner`'s (a
                system task may play anyone's), keyed `parameters.sound_id` or
                `parameters.playlist_id`; an unknown output, keyed `parameters.output`.
            PlayConflict: the run would overlap a scheduled one-shot play task on its output.
        """
        if task_type not in ("play_sound", "play_playlist"):
            return
        media = await self._media(task_type, parameters, owner)
        try:
            output = self.player.output(parameters.get("output"))
        except InvalidInput as error:
            raise InvalidParameters([Problem(str(error), "parameters.output")]) from None
        if start is None or allow_overlap:
            return
        seconds = known_duration(task_type, parameters, media)
        if not seconds:
            return
        end = start + timedelta(seconds=seconds)
        async with self.store.begin() as conn:
            candidates = await queries.scheduled_plays(conn, end)
        for other in candidates:
            other_output = other["operation_parameters"].get("output") or self.player.output(None)
            if other_output != output:
                continue
            other_end = await self._end(other)
            if other_end is not None and other_end > start:
                taken = {"id": other["id"], "name": other["name"], "start": other["next_at"]}
                raise PlayConflict(output, start, end, taken | {"end": other_end})

    async def _media(
        self, task_type: str, parameters: Mapping[str, Any], owner: str | None
    ) -> Sound | Playlist:
        key = "sound_id" if task_type == "play_sound" else "playlist_id"
        media_id = UUID(str(parameters[key]))
        try:
            if task_type == "play_sound":
                return await self.library.sound(media_id, visible_to=owner)
            return await self.library.playlist(media_id, visible_to=owner)
        except (SoundNotFound, PlaylistNotFound) as error:
            whose = "" if owner is None else f" of user {owner}"
            message = f"{str(error).rstrip('.')}{whose}."
            raise InvalidParameters([Problem(message, f"parameters.{key}")]) from None

    async def _end(self, task: Mapping[Any, Any]) -> datetime | None:
        """When a scheduled one-shot play task's run ends, if that is known."""
        parameters = task["operation_parameters"]
        try:
            if task["operation"] == "play_sound":
                media: Sound | Playlist = await self.library.sound(UUID(parameters["sound_id"]))
            else:
                media = await self.library.playlist(UUID(parameters["playlist_id"]))
        except (SoundNotFound, PlaylistNotFound, KeyError, ValueError):
            return None
        seconds = known_duration(task["operation"], parameters, media)
        return None if seconds is None else task["next_at"] + timedelta(seconds=seconds)

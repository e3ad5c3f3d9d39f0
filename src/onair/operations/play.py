"""The `play_sound` and `play_playlist` operations: what admitting their tasks means, and
playing.

Admission (`onair.engine.admission`), the same on every surface: anyone may schedule them; the
sound or playlist must exist and be the task owner's (an admin may play anyone's); the output
must be configured; and a run holds its output for the media's known duration (a sound's, a
playlist's in its mode, cut at `max_duration`), or, when that is not known (a looping mode
without `max_duration`), until the series' next occurrence (a one-shot: until it is cancelled).

A run plays through the `Player` on one output and pays for what it plays as it plays: a
user's run takes `cost` credits from its owner just before each sound starts (into one
transaction keyed by the run id), never the credits of a whole loop ahead, so the rest of the
balance stays free for the owner's other tasks. A run the balance cannot pay the first sound of
fails with "insufficient credits" and plays nothing; one that cannot pay a later sound stops
there and fails with "credits ran out", saying how much it played. System tasks (no owner) play
free.

A looping run (`loop`, `loop_one`, `random`) of a series ends when the series' next occurrence
is due, or at its `max_duration`, whichever comes first; a one-shot loop without `max_duration`
plays until it is cancelled. docs/operations.md has the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel

from onair.accounts.credits import Accounts
from onair.audio.asrun import Aired, AsRun, EndReason
from onair.audio.library import Library, Playlist, PlaylistNotFound, Sound, SoundNotFound
from onair.audio.player import Playback, Player
from onair.audio.playlists import PlayPlaylistParameters, PlaySoundParameters, plan
from onair.engine.admission import ANYONE, Admission, Hold, Role
from onair.engine.latestart import LateStart, decide, join_tracks
from onair.engine.policies import Policy
from onair.engine.registry import JSON, RunContext
from onair.errors import InvalidInput, InvalidParameters, NotFound, OperationError, Problem

MAX_TRACKS = 10_000
"""Most tracks one run of an endless playlist mode pays for (and so plays) at once."""

_POLICY = Policy(misfire_grace=timedelta(minutes=5))
"""A sound is played at most five minutes late (after an outage, say): an alarm heard hours
later is worse than none. No retries: a run that failed on the air is not replayed later."""


ENDLESS = frozenset({"loop", "loop_one", "random"})
"""The play modes whose plan never ends by itself."""

HANDOVER = 0.5
"""Seconds before its series' next occurrence a looping run stops: its end is recorded and its
output free when the next run is claimed (runs are claimed a little ahead of their instant, and
an occurrence due while the previous run still plays is skipped)."""


class InsufficientCredits(OperationError):
    def __init__(self, user_id: str, cost: int) -> None:
        super().__init__(
            f"insufficient credits: user {user_id} cannot pay the {cost} credit(s) of one sound; "
            "nothing was played."
        )


class CreditsRanOut(OperationError):
    def __init__(self, user_id: str, cost: int, played: int) -> None:
        super().__init__(
            f"credits ran out: user {user_id} could not pay the {cost} credit(s) of the next "
            f"sound after {played} played ({played * cost} credit(s) spent); the run stopped there."
        )


@dataclass
class _Bill:
    """Tracks handed to the player, each paid for just before it starts (the player asks for
    the next one only then)."""

    play: _Play
    context: RunContext
    started: int = 0
    ran_out: bool = False

    async def pay_each(self, paths: Iterable[Path]) -> AsyncGenerator[Path, None]:
        """`paths`, as long as the owner pays for them. Raises InsufficientCredits when not
        even the first is paid for; stops (with `ran_out`) at the first one that is not."""
        for path in paths:
            if not await self.play._pay_one(self.context):
                owner = self.context.owner
                assert owner is not None  # system tasks play free
                if self.started == 0:
                    raise InsufficientCredits(owner, self.play.cost)
                self.ran_out = True
                return
            self.started += 1
            yield path


class _Play:
    """What both operations share: admitting, paying, playing and giving back."""

    name: ClassVar[str]
    policy: ClassVar[Policy] = _POLICY
    roles: ClassVar[frozenset[Role]] = ANYONE
    _media_key: ClassVar[str]

    def __init__(
        self,
        library: Library,
        player: Player,
        accounts: Accounts,
        cost: int,
        seed: int | None,
        asrun: AsRun | None = None,
    ) -> None:
        self.library = library
        self.player = player
        self.accounts = accounts
        self.cost = cost
        self.seed = seed
        self.asrun = asrun or AsRun()

    async def admit(self, parameters: Any, admission: Admission) -> Hold:
        """Raises InvalidParameters: media that is not the owner's (nor an admin's to take),
        keyed `operation.parameters.sound_id` / `playlist_id`; an unknown output, keyed
        `operation.parameters.output`."""
        media_id: UUID = getattr(parameters, self._media_key)
        try:
            media = await self._lookup(media_id)
        except NotFound:
            media = None
        if media is None or not (admission.caller.admin or media.owner == admission.owner):
            what = "Sound" if self._media_key == "sound_id" else "Playlist"
            whose = "" if admission.owner is None else f" of user {admission.owner}"
            problem = Problem(f"{what} not found: {media_id}{whose}.", self._key(self._media_key))
            raise InvalidParameters([problem])
        try:
            output = self.player.output(parameters.output)
        except InvalidInput as error:
            raise InvalidParameters([Problem(str(error), self._key("output"))]) from None
        return Hold(f"output:{output}", known_duration(parameters, media))

    @staticmethod
    def _key(field: str) -> str:
        return f"operation.parameters.{field}"

    async def _lookup(self, media_id: UUID) -> Sound | Playlist:
        raise TypeError(f"{type(self).__name__} must define _lookup()")

    @staticmethod
    def _late(parameters: Any, context: RunContext, duration: float | None) -> LateStart:
        """The late-start decision against the run's due instant (`onair.engine.latestart`)."""
        return decide(
            parameters.late_start, parameters.late_grace, context.due, context.clock.now(), duration
        )

    def _rng(self) -> random.Random:
        return random.Random(self.seed)

    async def _play(
        self,
        context: RunContext,
        tracks: Sequence[Sound],
        output: str | None,
        max_duration: float | None = None,
        late: LateStart | None = None,
        into: float = 0.0,
        positions: Sequence[int] | None = None,
        playlist_id: UUID | None = None,
    ) -> tuple[list[Playback], int]:
        """Play `tracks`, the first from `into` seconds into it, each paid for as it starts,
        and return the playbacks and the credits spent. Raises InsufficientCredits (nothing
        played), CreditsRanOut (some played). Every playback goes to the as-run log as it
        ended, however the run ends; `positions` and `playlist_id` say which tracks of which
        playlist they are (None: a sound)."""
        name = self.player.output(output)
        bill = _Bill(self, context)
        joined = 0.0 if late is None else late.offset
        report = _Report(self.asrun, context, self.name, tracks, joined, positions, playlist_id)
        try:
            async with contextlib.aclosing(
                bill.pay_each(self.library.file(t) for t in tracks)
            ) as paths:
                playbacks = await self.player.play_many(
                    paths, name, max_duration=max_duration, offset=into, aired=report.played
                )
        finally:
            await asyncio.shield(report.close(credits_ran_out=bill.ran_out))
        if bill.ran_out:
            assert context.owner is not None
            raise CreditsRanOut(context.owner, self.cost, bill.started)
        return playbacks, len(playbacks) * self._cost(context)

    async def _skipped(
        self, context: RunContext, track: Sound, output: str, subject: dict[str, Any]
    ) -> None:
        """Put an item that the late-start policy skipped in the as-run log."""
        kind: Literal["track", "sound"] = "track" if "playlist_id" in subject else "sound"
        now = context.clock.now()
        item = Aired(
            context.run_id, context.task_id, self.name, kind, track.name, context.owner, output,
            context.due, None, 0.0, 0.0, "skipped", now, subject=subject,
        )  # fmt: skip
        await self.asrun.record([item])

    def _cost(self, context: RunContext) -> int:
        return 0 if context.owner is None else self.cost

    async def _pay_one(self, context: RunContext) -> bool:
        """Take the price of one sound from the run's owner; False when the balance cannot
        pay it (system tasks and free sounds are always paid for)."""
        if context.owner is None or self.cost == 0:
            return True
        paid = await self.accounts.spend(
            context.owner, run_id=context.run_id, task_id=context.task_id, cost=self.cost, wanted=1
        )
        return paid == 1

    async def _media(self, getter: Any, media_id: UUID) -> Any:
        try:
            return await getter(media_id)
        except (SoundNotFound, PlaylistNotFound) as error:
            raise OperationError(f"{error} It was deleted after the task was created.") from None


class PlaySound(_Play):
    name: ClassVar[str] = "play_sound"
    Parameters: ClassVar[type[BaseModel]] = PlaySoundParameters
    _media_key: ClassVar[str] = "sound_id"

    async def _lookup(self, media_id: UUID) -> Sound:
        return await self.library.sound(media_id)

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{sound_id, name, output, duration_seconds, seconds_played, started, ended,
        first_audio, credits_spent, late_start}`: the sound, played once (from
        `late_start.offset_seconds` when a late run joined it; not at all, free, when it
        skipped: `started`, `ended` and `first_audio` are then None)."""
        assert isinstance(parameters, PlaySoundParameters)
        sound: Sound = await self._media(self.library.sound, parameters.sound_id)
        late = self._late(parameters, context, sound.duration_seconds)
        if not late.plays:
            context.logger.info("play_sound %s: skipped, %.3f s late", sound.id, late.lateness)
            output = self.player.output(parameters.output)
            await self._skipped(context, sound, output, {"sound_id": str(sound.id)})
            return {
                "sound_id": str(sound.id),
                "name": sound.name,
                "output": self.player.output(parameters.output),
                "duration_seconds": sound.duration_seconds,
                "seconds_played": 0.0,
                "started": None,
                "ended": None,
                "first_audio": None,
                "credits_spent": 0,
                "late_start": late.as_json(),
            }
        playbacks, spent = await self._play(
            context, [sound], parameters.output, late=late, into=late.offset
        )
        [playback] = playbacks
        return {
            "sound_id": str(sound.id),
            "name": sound.name,
            "output": playback.output,
            "duration_seconds": sound.duration_seconds,
            "seconds_played": round(playback.seconds_played, 3),
            "started": playback.started.isoformat(),
            "ended": playback.ended.isoformat(),
            "first_audio": _iso(playback.first_audio),
            "credits_spent": spent,
            "late_start": late.as_json(),
        }


class PlayPlaylist(_Play):
    name: ClassVar[str] = "play_playlist"
    Parameters: ClassVar[type[BaseModel]] = PlayPlaylistParameters
    _media_key: ClassVar[str] = "playlist_id"

    async def _lookup(self, media_id: UUID) -> Playlist:
        return await self.library.playlist(media_id)

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{playlist_id, name, play_mode, shuffle, output, tracks: [{position, sound_id, name,
        seconds_played, started, ended, offset_seconds}], seconds_played, credits_spent,
        late_start}`; `position` is the track's 0-based place in the playlist. A late run that
        joins skips the tracks the lateness covers (unpaid), enters the next one at the
        remainder, and ends when `max_duration` after the due instant is reached."""
        assert isinstance(parameters, PlayPlaylistParameters)
        playlist: Playlist = await self._media(self.library.playlist, parameters.playlist_id)
        order = plan(
            parameters.play_mode, len(playlist.tracks), self._rng(), shuffle=parameters.shuffle
        )
        positions = list(itertools.islice(order, self._wanted(parameters, playlist)))
        tracks = [playlist.tracks[i] for i in positions]
        late = self._late(parameters, context, _total(tracks, parameters.max_duration))
        max_duration, into = parameters.max_duration, 0.0
        if late.action == "joined":
            first, into = join_tracks([t.duration_seconds for t in tracks], late.offset)
            positions, tracks = positions[first:], tracks[first:]
            if max_duration is not None:
                max_duration -= late.offset
        max_duration = self._limit(parameters, context, max_duration)
        playbacks: list[Playback] = []
        spent = 0
        if late.plays and tracks:
            playbacks, spent = await self._play(
                context, tracks, parameters.output, max_duration, late, into, positions, playlist.id
            )
        elif tracks:
            subject = _track(playlist.id, positions[0], tracks[0])
            await self._skipped(context, tracks[0], self.player.output(parameters.output), subject)
        played = [
            {
                "position": position,
                "sound_id": str(track.id),
                "name": track.name,
                "seconds_played": round(playback.seconds_played, 3),
                "started": playback.started.isoformat(),
                "ended": playback.ended.isoformat(),
                "offset_seconds": round(playback.offset, 3),
                "first_audio": _iso(playback.first_audio),
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
            "late_start": late.as_json(),
        }

    @staticmethod
    def _limit(
        parameters: PlayPlaylistParameters, context: RunContext, limit: float | None
    ) -> float | None:
        """Seconds the run may play: `limit` (what `max_duration` leaves), and for a looping
        mode of a series no later than the series' next occurrence (None: until cancelled, or
        the plan's end)."""
        following = context.next_occurrence
        if parameters.play_mode in ENDLESS and following is not None:
            left = (following - context.clock.now()).total_seconds() - HANDOVER
            left = max(left, 0.0)
            limit = left if limit is None else min(limit, left)
        return limit

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


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _track(playlist_id: UUID, position: int, sound: Sound) -> dict[str, Any]:
    return {"playlist_id": str(playlist_id), "position": position, "sound_id": str(sound.id)}


class _Report:
    """Puts a run's playbacks in the as-run log as they end: each one once the next has ended
    (the last may still turn out to be the one the credits ran out after), the last when the
    run ends. The first track was planned to air `joined` seconds after the due instant (a late
    run that joined), each next one when the one before would have ended."""

    def __init__(
        self,
        asrun: AsRun,
        context: RunContext,
        operation: str,
        tracks: Sequence[Sound],
        joined: float,
        positions: Sequence[int] | None,
        playlist_id: UUID | None,
    ) -> None:
        self.asrun, self.context, self.operation = asrun, context, operation
        self.tracks, self.positions, self.playlist_id = tracks, positions, playlist_id
        self.planned = context.due + timedelta(seconds=joined)
        self.count = 0
        self.held: Aired | None = None
        self.writing: set[asyncio.Task[None]] = set()

    def played(self, playback: Playback) -> None:
        context, track = self.context, self.tracks[self.count]
        if self.playlist_id is None or self.positions is None:
            kind: Literal["sound", "track"] = "sound"
            subject: dict[str, Any] = {"sound_id": str(track.id)}
        else:
            kind, subject = "track", _track(self.playlist_id, self.positions[self.count], track)
        end: EndReason = playback.end
        item = Aired(
            context.run_id, context.task_id, self.operation, kind, track.name, context.owner,
            playback.output, self.planned, playback.first_audio, playback.seconds_played,
            playback.offset, end, playback.ended, playback.error, subject,
        )  # fmt: skip
        self.count += 1
        self.planned += timedelta(seconds=max(track.duration_seconds - playback.offset, 0.0))
        if self.held is not None:
            writing = asyncio.get_running_loop().create_task(self.asrun.record([self.held]))
            self.writing.add(writing)
            writing.add_done_callback(self.writing.discard)
        self.held = item

    async def close(self, *, credits_ran_out: bool) -> None:
        if self.writing:
            await asyncio.wait(set(self.writing))
        held, self.held = self.held, None
        if held is None:
            return
        if credits_ran_out and held.end == "completed":
            held = replace(held, end="credits")
        await self.asrun.record([held])


def _total(tracks: Sequence[Sound], max_duration: float | None) -> float:
    """Seconds the planned tracks last, cut at `max_duration`."""
    seconds = sum(t.duration_seconds for t in tracks)
    return seconds if max_duration is None else min(seconds, max_duration)


def known_duration(
    parameters: PlaySoundParameters | PlayPlaylistParameters, media: Sound | Playlist
) -> float | None:
    """Seconds a play task's run lasts, when that is known before it runs: a sound's duration;
    a playlist's total (`continuous`), first track (`single`), both cut at `max_duration`; a
    looping mode's `max_duration`; None for a looping mode without one."""
    if isinstance(media, Sound) or not isinstance(parameters, PlayPlaylistParameters):
        return media.duration_seconds
    limit = parameters.max_duration
    if parameters.play_mode == "continuous":
        seconds = media.duration_seconds
    elif parameters.play_mode == "single":
        seconds = media.tracks[0].duration_seconds if media.tracks else 0.0
    else:
        return limit
    return seconds if limit is None else min(seconds, limit)

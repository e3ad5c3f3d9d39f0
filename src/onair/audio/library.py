"""The media library: sounds kept under the media directory with what probing found, and
playlists (ordered lists of sounds), each owned by a user or by the system.

Shared by the user-facing API (`/api/v1/sounds`, `/api/v1/playlists`), the CLI
(`onair sounds import`) and the play operations. A file is accepted only once `probe` has
decoded it to the end, so a sound in the library is one the player can play. Files are written
under a temporary name first (`.incoming-*`, locked while written) and renamed once probed; the
row is committed last, and a file whose row was never written (or was deleted) is removed. The
partial uploads of a node that died are removed when a node next starts on the directory.

`visible_to` limits a call to one user's media: anyone else's is reported as not found, so
its existence is not revealed. None means anyone's (admins, the system, the operations).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from onair.audio.probe import UnsupportedAudio, probe
from onair.engine.models import Record
from onair.errors import Conflict, InvalidParameters, NotFound, Problem
from onair.store import media, queries
from onair.store.database import Connection, Store
from onair.timeutil import Clock, SystemClock

_SUFFIX = re.compile(r"\.[a-z0-9]{1,10}")
INCOMING = ".incoming-"
"""How the name of a partial upload begins, in the media directory."""


class SoundNotFound(NotFound):
    def __init__(self, sound_id: UUID) -> None:
        super().__init__(f"Sound not found: {sound_id}.")
        self.sound_id = sound_id


class PlaylistNotFound(NotFound):
    def __init__(self, playlist_id: UUID) -> None:
        super().__init__(f"Playlist not found: {playlist_id}.")
        self.playlist_id = playlist_id


class MediaInUse(Conflict):
    """A sound or playlist that a pending or running task would play cannot be deleted."""

    def __init__(self, what: str, users: Sequence[Record]) -> None:
        named = ", ".join(f"{u['id']} ({u['name'] or 'unnamed'}, {u['status']})" for u in users)
        super().__init__(
            f"{what} is used by task {named}; cancel the task (or wait for it to end) first."
        )
        self.task_ids = [u["id"] for u in users]


@dataclass(frozen=True)
class Sound:
    id: UUID
    owner: str | None
    name: str
    filename: str
    """The name it was uploaded or imported with."""
    path: str
    """Where it is kept, relative to the media directory."""
    size: int
    duration_seconds: float
    format: str
    codec: str
    channels: int
    sample_rate: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Record) -> Sound:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Playlist:
    id: UUID
    owner: str | None
    name: str
    tracks: tuple[Sound, ...]
    created_at: datetime
    updated_at: datetime

    @property
    def duration_seconds(self) -> float:
        """All tracks played once."""
        return sum(track.duration_seconds for track in self.tracks)


class Library:
    """Sounds and playlists on one store, their files under `media_dir`."""

    def __init__(self, store: Store, media_dir: Path, clock: Clock | None = None) -> None:
        self.store = store
        self.media_dir = Path(media_dir)
        self.clock = clock or SystemClock()

    def file(self, sound: Sound) -> Path:
        return self.media_dir / sound.path

    # Sounds ---------------------------------------------------------------------------------

    async def upload(
        self,
        chunks: AsyncIterator[bytes],
        filename: str,
        *,
        owner: str | None,
        name: str | None = None,
    ) -> Sound:
        """Keep the bytes of `chunks` as a new sound once they probe as playable audio.

        Raises:
            UnsupportedAudio: not audio ffmpeg can play to the end (keyed `file`); nothing kept.
        """
        with self._incoming() as incoming:
            with incoming.open("wb") as handle:
                async for chunk in chunks:
                    await asyncio.to_thread(handle.write, chunk)
            return await self._accept(incoming, filename, owner, name)

    async def import_file(self, source: Path, *, owner: str | None) -> Sound:
        """A copy of `source` as a new sound named after the file.

        Raises: UnsupportedAudio, as `upload`."""
        with self._incoming() as incoming:
            await asyncio.to_thread(shutil.copyfile, source, incoming)
            return await self._accept(incoming, source.name, owner, None)

    @contextlib.contextmanager
    def _incoming(self) -> Iterator[Path]:
        """The path of a new partial upload, removed when the block ends unless renamed.

        The file is locked (`flock`) for as long as the block lasts: the kernel drops the lock
        when the process ends, however it ends, so an unlocked partial upload is one whose node
        died (`remove_partial_uploads`)."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        while True:
            path = self.media_dir / f"{INCOMING}{uuid.uuid4().hex}"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink:
                break
            os.close(fd)  # a starting node removed it between its creation and the lock
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    def remove_partial_uploads(self) -> list[Path]:
        """Remove the partial uploads that no live process writes: those of a node that died
        in the middle of one (even by `kill -9`). One still locked belongs to a live node
        sharing the directory and is left alone. Returns the paths removed."""
        removed: list[Path] = []
        if not self.media_dir.is_dir():
            return removed
        for path in self.media_dir.glob(f"{INCOMING}*"):
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                os.close(fd)
        return removed

    async def _accept(
        self, incoming: Path, filename: str, owner: str | None, name: str | None
    ) -> Sound:
        filename = Path(filename).name or "unnamed"
        try:
            info = await probe(incoming)
        except UnsupportedAudio as error:
            refused = UnsupportedAudio(Path(filename), error.reason)
            refused.problems = (Problem(str(refused), "file"),)
            raise refused from None
        sound_id = uuid.uuid4()
        suffix = Path(filename).suffix.lower()
        stored = f"{sound_id}{suffix if _SUFFIX.fullmatch(suffix) else ''}"
        now = self.clock.now()
        values: dict[str, Any] = {
            "id": sound_id,
            "owner": owner,
            "name": (name or Path(filename).stem or filename)[:256],
            "filename": filename[:256],
            "path": stored,
            "size": (await asyncio.to_thread(incoming.stat)).st_size,
            "duration_seconds": info.duration_seconds,
            "format": info.format[:64],
            "codec": info.codec[:64],
            "channels": info.channels,
            "sample_rate": info.sample_rate,
            "created_at": now,
            "updated_at": now,
        }
        target = self.media_dir / stored
        await asyncio.to_thread(incoming.rename, target)
        try:
            async with self.store.begin() as conn:
                await media.insert_sound(conn, values)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return Sound.from_row(values)

    async def sound(self, sound_id: UUID, *, visible_to: str | None = None) -> Sound:
        """Raises: SoundNotFound (also for a sound `visible_to` does not own)."""
        async with self.store.begin() as conn:
            row = await media.get_sound(conn, sound_id)
        if row is None or (visible_to is not None and row["owner"] != visible_to):
            raise SoundNotFound(sound_id)
        return Sound.from_row(row)

    async def sounds(
        self, *, visible_to: str | None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Sound], int]:
        """A page of sounds, newest first, and how many there are."""
        async with self.store.begin() as conn:
            rows, total = await media.list_sounds(conn, visible_to, limit=limit, offset=offset)
        return [Sound.from_row(r) for r in rows], total

    async def rename_sound(
        self, sound_id: UUID, name: str, *, visible_to: str | None = None
    ) -> Sound:
        """Raises: SoundNotFound."""
        await self.sound(sound_id, visible_to=visible_to)
        async with self.store.begin() as conn:
            await media.rename_sound(conn, sound_id, name, self.clock.now())
        return await self.sound(sound_id)

    async def delete_sound(self, sound_id: UUID, *, visible_to: str | None = None) -> Sound:
        """Delete a sound and its file; it leaves every playlist it was in.

        Raises:
            SoundNotFound: no such sound (visible to `visible_to`).
            MediaInUse: a pending or running task plays it, or plays a playlist holding it.
        """
        async with self.store.begin() as conn:
            row = await media.get_sound(conn, sound_id)
            if row is None or (visible_to is not None and row["owner"] != visible_to):
                raise SoundNotFound(sound_id)
            playlist_ids = await media.playlists_with(conn, sound_id)
            users = await queries.tasks_playing(conn, sound_id=sound_id, playlist_ids=playlist_ids)
            if users:
                raise MediaInUse(f"Sound {sound_id}", users)
            await media.delete_sound(conn, sound_id)
        sound = Sound.from_row(row)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.file(sound).unlink)
        return sound

    # Playlists ------------------------------------------------------------------------------

    async def create_playlist(
        self,
        name: str,
        sound_ids: Sequence[UUID],
        *,
        owner: str | None,
        visible_to: str | None = None,
    ) -> Playlist:
        """A new playlist of `sound_ids` in that order (a sound may appear more than once).

        Raises:
            InvalidParameters: a sound that does not exist or that `visible_to` does not own,
                keyed `sound_ids.<index>`.
        """
        now, playlist_id = self.clock.now(), uuid.uuid4()
        values = {"id": playlist_id, "owner": owner, "name": name}
        async with self.store.begin() as conn:
            await self._check_sounds(conn, sound_ids, visible_to)
            await media.insert_playlist(
                conn, values | {"created_at": now, "updated_at": now}, sound_ids
            )
        return await self.playlist(playlist_id)

    async def update_playlist(
        self,
        playlist_id: UUID,
        *,
        name: str | None = None,
        sound_ids: Sequence[UUID] | None = None,
        visible_to: str | None = None,
    ) -> Playlist:
        """Rename a playlist and/or replace its tracks; a task playing it later plays the new
        tracks (a running one keeps those it started with).

        Raises: PlaylistNotFound; InvalidParameters as `create_playlist`."""
        async with self.store.begin() as conn:
            row = await media.get_playlist(conn, playlist_id)
            if row is None or (visible_to is not None and row["owner"] != visible_to):
                raise PlaylistNotFound(playlist_id)
            changes: dict[str, Any] = {"updated_at": self.clock.now()}
            if name is not None:
                changes["name"] = name
            if sound_ids is not None:
                await self._check_sounds(conn, sound_ids, visible_to)
                await media.set_tracks(conn, playlist_id, sound_ids)
            await media.update_playlist(conn, playlist_id, changes)
        return await self.playlist(playlist_id)

    async def _check_sounds(
        self, conn: Connection, sound_ids: Sequence[UUID], visible_to: str | None
    ) -> None:
        found = await media.get_sounds(conn, sound_ids)
        problems = [
            Problem(f"Sound not found: {sound_id}.", f"sound_ids.{index}")
            for index, sound_id in enumerate(sound_ids)
            if sound_id not in found
            or (visible_to is not None and found[sound_id]["owner"] != visible_to)
        ]
        if problems:
            raise InvalidParameters(problems)

    async def playlist(self, playlist_id: UUID, *, visible_to: str | None = None) -> Playlist:
        """Raises: PlaylistNotFound (also for a playlist `visible_to` does not own)."""
        async with self.store.begin() as conn:
            row = await media.get_playlist(conn, playlist_id)
            if row is None or (visible_to is not None and row["owner"] != visible_to):
                raise PlaylistNotFound(playlist_id)
            tracks = await media.tracks(conn, [playlist_id])
        return _playlist(row, tracks[playlist_id])

    async def playlists(
        self, *, visible_to: str | None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Playlist], int]:
        """A page of playlists, newest first, and how many there are."""
        async with self.store.begin() as conn:
            rows, total = await media.list_playlists(conn, visible_to, limit=limit, offset=offset)
            tracks = await media.tracks(conn, [r["id"] for r in rows])
        return [_playlist(row, tracks[row["id"]]) for row in rows], total

    async def delete_playlist(
        self, playlist_id: UUID, *, visible_to: str | None = None
    ) -> Playlist:
        """Delete a playlist (its sounds stay in the library).

        Raises:
            PlaylistNotFound: no such playlist (visible to `visible_to`).
            MediaInUse: a pending or running task plays it.
        """
        playlist = await self.playlist(playlist_id, visible_to=visible_to)
        async with self.store.begin() as conn:
            users = await queries.tasks_playing(conn, playlist_ids=[playlist_id])
            if users:
                raise MediaInUse(f"Playlist {playlist_id}", users)
            await media.delete_playlist(conn, playlist_id)
        return playlist


def _playlist(row: Record, tracks: Sequence[Record]) -> Playlist:
    return Playlist(
        id=row["id"],
        owner=row["owner"],
        name=row["name"],
        tracks=tuple(Sound.from_row(t) for t in tracks),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )

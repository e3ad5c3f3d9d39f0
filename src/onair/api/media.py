"""`/api/v1/sounds` and `/api/v1/playlists`: users' media library.

Owned like tasks: a user reaches only their own sounds and playlists (anyone else's id answers
404), admins reach all of them. A sound or playlist that a pending or running task would play
cannot be deleted (409 naming the task). A file that is not playable audio is refused with 422
naming `file` and saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Response, UploadFile
from pydantic import BaseModel, Field

from onair.accounts.tokens import Principal
from onair.api.deps import CurrentUser, LibraryDep, Limit, Offset
from onair.api.errors import NUL_IN_TEXT
from onair.audio.library import Playlist, Sound
from onair.errors import InvalidParameters, Problem
from onair.timeutil import UTCInstant

router = APIRouter(tags=["media"])

_CHUNK = 1 << 20

Name = Annotated[str, Field(min_length=1, max_length=256)]


def _visible_to(user: Principal) -> str | None:
    return None if user.is_admin else user.user_id


class SoundPublic(BaseModel):
    id: UUID
    name: str
    filename: str
    user_id: str | None
    duration_seconds: float
    format: str
    codec: str
    channels: int
    sample_rate: int
    size: int = Field(description="Bytes.")
    created_at: UTCInstant
    updated_at: UTCInstant

    @classmethod
    def of(cls, sound: Sound) -> SoundPublic:
        return cls(
            id=sound.id,
            name=sound.name,
            filename=sound.filename,
            user_id=sound.owner,
            duration_seconds=round(sound.duration_seconds, 3),
            format=sound.format,
            codec=sound.codec,
            channels=sound.channels,
            sample_rate=sound.sample_rate,
            size=sound.size,
            created_at=sound.created_at,
            updated_at=sound.updated_at,
        )


class SoundPage(BaseModel):
    sounds: list[SoundPublic]
    total: int
    limit: int
    offset: int


class SoundUpdate(BaseModel):
    name: Name


class PlaylistCreate(BaseModel):
    name: Name
    sound_ids: list[UUID] = Field(default_factory=list, max_length=1000)


class PlaylistUpdate(BaseModel):
    name: Name | None = None
    sound_ids: list[UUID] | None = Field(None, max_length=1000)


class PlaylistPublic(BaseModel):
    id: UUID
    name: str
    user_id: str | None
    tracks: list[SoundPublic]
    duration_seconds: float = Field(description="All tracks played once.")
    created_at: UTCInstant
    updated_at: UTCInstant

    @classmethod
    def of(cls, playlist: Playlist) -> PlaylistPublic:
        return cls(
            id=playlist.id,
            name=playlist.name,
            user_id=playlist.owner,
            tracks=[SoundPublic.of(t) for t in playlist.tracks],
            duration_seconds=round(playlist.duration_seconds, 3),
            created_at=playlist.created_at,
            updated_at=playlist.updated_at,
        )


class PlaylistPage(BaseModel):
    playlists: list[PlaylistPublic]
    total: int
    limit: int
    offset: int


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


# Sounds ---------------------------------------------------------------------------------------


@router.post("/sounds", status_code=201)
async def upload_sound(
    file: Annotated[UploadFile, File(description="An audio file ffmpeg can decode.")],
    user: CurrentUser,
    library: LibraryDep,
    name: Annotated[str | None, Form(min_length=1, max_length=256)] = None,
) -> SoundPublic:
    """Add a sound of the caller's (multipart: `file`, optional `name`, else the file's name).
    It is decoded to the end first; 422 when it is not playable audio."""
    # A multipart body is not JSON, so `BodyLimit` does not look into it: its texts are
    # checked here, by the same rule.
    nul = [
        key for key, text in (("name", name), ("file", file.filename)) if text and "\x00" in text
    ]
    if nul:
        raise InvalidParameters([Problem(NUL_IN_TEXT, k) for k in nul])
    sound = await library.upload(
        _chunks(file), file.filename or "upload", owner=user.user_id, name=name
    )
    return SoundPublic.of(sound)


@router.get("/sounds")
async def list_sounds(
    user: CurrentUser, library: LibraryDep, limit: Limit = 50, offset: Offset = 0
) -> SoundPage:
    """The caller's sounds (an admin's: everyone's), newest first."""
    sounds, total = await library.sounds(visible_to=_visible_to(user), limit=limit, offset=offset)
    return SoundPage(
        sounds=[SoundPublic.of(s) for s in sounds], total=total, limit=limit, offset=offset
    )


@router.get("/sounds/{sound_id}")
async def get_sound(sound_id: UUID, user: CurrentUser, library: LibraryDep) -> SoundPublic:
    return SoundPublic.of(await library.sound(sound_id, visible_to=_visible_to(user)))


@router.patch("/sounds/{sound_id}")
async def rename_sound(
    sound_id: UUID, change: SoundUpdate, user: CurrentUser, library: LibraryDep
) -> SoundPublic:
    sound = await library.rename_sound(sound_id, change.name, visible_to=_visible_to(user))
    return SoundPublic.of(sound)


@router.delete("/sounds/{sound_id}", status_code=204)
async def delete_sound(sound_id: UUID, user: CurrentUser, library: LibraryDep) -> Response:
    """Delete a sound and its file; it leaves the playlists it was in. 409 while a pending or
    running task would play it (itself or in a playlist)."""
    await library.delete_sound(sound_id, visible_to=_visible_to(user))
    return Response(status_code=204)


# Playlists ------------------------------------------------------------------------------------


@router.post("/playlists", status_code=201)
async def create_playlist(
    request: PlaylistCreate, user: CurrentUser, library: LibraryDep
) -> PlaylistPublic:
    """A playlist of the caller's, of their sounds (an admin's: of anyone's) in the given
    order; a sound may appear more than once."""
    playlist = await library.create_playlist(
        request.name, request.sound_ids, owner=user.user_id, visible_to=_visible_to(user)
    )
    return PlaylistPublic.of(playlist)


@router.get("/playlists")
async def list_playlists(
    user: CurrentUser, library: LibraryDep, limit: Limit = 50, offset: Offset = 0
) -> PlaylistPage:
    """The caller's playlists (an admin's: everyone's), newest first."""
    playlists, total = await library.playlists(
        visible_to=_visible_to(user), limit=limit, offset=offset
    )
    return PlaylistPage(
        playlists=[PlaylistPublic.of(p) for p in playlists],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/playlists/{playlist_id}")
async def get_playlist(playlist_id: UUID, user: CurrentUser, library: LibraryDep) -> PlaylistPublic:
    return PlaylistPublic.of(await library.playlist(playlist_id, visible_to=_visible_to(user)))


@router.patch("/playlists/{playlist_id}")
async def update_playlist(
    playlist_id: UUID, change: PlaylistUpdate, user: CurrentUser, library: LibraryDep
) -> PlaylistPublic:
    """Rename it and/or replace its tracks (`sound_ids`, in order)."""
    playlist = await library.update_playlist(
        playlist_id, name=change.name, sound_ids=change.sound_ids, visible_to=_visible_to(user)
    )
    return PlaylistPublic.of(playlist)


@router.delete("/playlists/{playlist_id}", status_code=204)
async def delete_playlist(playlist_id: UUID, user: CurrentUser, library: LibraryDep) -> Response:
    """Delete a playlist (its sounds stay). 409 while a pending or running task plays it."""
    await library.delete_playlist(playlist_id, visible_to=_visible_to(user))
    return Response(status_code=204)

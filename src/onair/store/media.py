"""The media library's statements (`onair.audio.library` is their only user), by name. Each
takes an open connection (the caller owns the transaction) and returns plain rows or values.

`owner=None` in the listing functions means "anyone's" (an admin's view); ownership checks are
made by the callers in `onair.audio.library`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, delete, func, insert, select, update

from onair.store.database import Connection
from onair.store.schema import playlist_sounds, playlists, sounds


async def insert_sound(conn: Connection, values: Mapping[str, Any]) -> None:
    await conn.execute(insert(sounds), [dict(values)])


async def get_sound(conn: Connection, sound_id: UUID) -> RowMapping | None:
    return (await conn.execute(select(sounds).where(sounds.c.id == sound_id))).mappings().first()


async def get_sounds(conn: Connection, ids: Sequence[UUID]) -> dict[UUID, RowMapping]:
    if not ids:
        return {}
    rows = (await conn.execute(select(sounds).where(sounds.c.id.in_(set(ids))))).mappings()
    return {row["id"]: row for row in rows}


async def list_sounds(
    conn: Connection, owner: str | None, *, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """A page of sounds (of `owner`, or anyone's when None), newest first, and the total."""
    where = [] if owner is None else [sounds.c.owner == owner]
    total = (await conn.execute(select(func.count()).select_from(sounds).where(*where))).scalar()
    page = (
        select(sounds)
        .where(*where)
        .order_by(sounds.c.created_at.desc(), sounds.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(page)).mappings()), int(total or 0)


async def rename_sound(conn: Connection, sound_id: UUID, name: str, now: datetime) -> None:
    query = update(sounds).where(sounds.c.id == sound_id).values(name=name, updated_at=now)
    await conn.execute(query)


async def delete_sound(conn: Connection, sound_id: UUID) -> None:
    """Delete a sound and take it out of every playlist (the foreign key would, but SQLite
    enforces it only where the pragma is on)."""
    await conn.execute(delete(playlist_sounds).where(playlist_sounds.c.sound_id == sound_id))
    await conn.execute(delete(sounds).where(sounds.c.id == sound_id))


async def insert_playlist(
    conn: Connection, values: Mapping[str, Any], sound_ids: Sequence[UUID]
) -> None:
    await conn.execute(insert(playlists), [dict(values)])
    await set_tracks(conn, values["id"], sound_ids)


async def set_tracks(conn: Connection, playlist_id: UUID, sound_ids: Sequence[UUID]) -> None:
    """Replace a playlist's tracks by `sound_ids`, in that order."""
    await conn.execute(delete(playlist_sounds).where(playlist_sounds.c.playlist_id == playlist_id))
    if sound_ids:
        rows = [
            {"playlist_id": playlist_id, "position": position, "sound_id": sound_id}
            for position, sound_id in enumerate(sound_ids)
        ]
        await conn.execute(insert(playlist_sounds), rows)


async def get_playlist(conn: Connection, playlist_id: UUID) -> RowMapping | None:
    query = select(playlists).where(playlists.c.id == playlist_id)
    return (await conn.execute(query)).mappings().first()


async def list_playlists(
    conn: Connection, owner: str | None, *, limit: int, offset: int
) -> tuple[list[RowMapping], int]:
    """A page of playlists (of `owner`, or anyone's when None), newest first, and the total."""
    where = [] if owner is None else [playlists.c.owner == owner]
    count = select(func.count()).select_from(playlists).where(*where)
    total = (await conn.execute(count)).scalar()
    page = (
        select(playlists)
        .where(*where)
        .order_by(playlists.c.created_at.desc(), playlists.c.id)
        .limit(limit)
        .offset(offset)
    )
    return list((await conn.execute(page)).mappings()), int(total or 0)


async def tracks(conn: Connection, playlist_ids: Sequence[UUID]) -> dict[UUID, list[RowMapping]]:
    """The sounds of each playlist, in playlist order (a gap left by a deleted sound closes)."""
    found: dict[UUID, list[RowMapping]] = {playlist_id: [] for playlist_id in playlist_ids}
    if not playlist_ids:
        return found
    query = (
        select(playlist_sounds.c.playlist_id, sounds)
        .join(sounds, sounds.c.id == playlist_sounds.c.sound_id)
        .where(playlist_sounds.c.playlist_id.in_(set(playlist_ids)))
        .order_by(playlist_sounds.c.playlist_id, playlist_sounds.c.position)
    )
    for row in (await conn.execute(query)).mappings():
        found[row["playlist_id"]].append(row)
    return found


async def update_playlist(conn: Connection, playlist_id: UUID, values: Mapping[str, Any]) -> None:
    query = update(playlists).where(playlists.c.id == playlist_id).values(**values)
    await conn.execute(query)


async def delete_playlist(conn: Connection, playlist_id: UUID) -> None:
    await conn.execute(delete(playlist_sounds).where(playlist_sounds.c.playlist_id == playlist_id))
    await conn.execute(delete(playlists).where(playlists.c.id == playlist_id))


async def playlists_with(conn: Connection, sound_id: UUID) -> list[UUID]:
    query = select(playlist_sounds.c.playlist_id).where(playlist_sounds.c.sound_id == sound_id)
    return sorted(set((await conn.execute(query)).scalars()))

"""The media library's statements, and the credits a play run spends, by name. Each takes an
open connection (the caller owns the transaction) and returns plain rows or values.

`owner=None` in the listing functions means "anyone's" (an admin's view); ownership checks are
made by the callers in `onair.audio.library`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import RowMapping, delete, func, insert, or_, select, update

from onair.store.database import Connection
from onair.store.schema import (
    credit_transactions,
    playlist_sounds,
    playlists,
    sounds,
    tasks,
    users,
)

ACTIVE = ("pending", "running")
"""Task statuses that may still play something."""


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


async def tasks_playing(
    conn: Connection, *, sound_id: UUID | None = None, playlist_ids: Sequence[UUID] = ()
) -> list[RowMapping]:
    """Pending and running tasks that name `sound_id` (play_sound) or one of `playlist_ids`
    (play_playlist). Ids are compared as text, as the task's JSON parameters hold them."""
    named = []
    if sound_id is not None:
        named.append(
            (tasks.c.operation == "play_sound")
            & (tasks.c.operation_parameters["sound_id"].as_string() == str(sound_id))
        )
    if playlist_ids:
        named.append(
            (tasks.c.operation == "play_playlist")
            & tasks.c.operation_parameters["playlist_id"]
            .as_string()
            .in_([str(i) for i in playlist_ids])
        )
    if not named:
        return []
    query = (
        select(tasks.c.id, tasks.c.name, tasks.c.status)
        .where(tasks.c.status.in_(ACTIVE), or_(*named))
        .order_by(tasks.c.created_at)
    )
    return list((await conn.execute(query)).mappings())


async def scheduled_plays(conn: Connection, before: datetime) -> list[RowMapping]:
    """Pending one-shot play tasks due before `before`: the candidates of a conflict."""
    query = select(
        tasks.c.id, tasks.c.name, tasks.c.operation, tasks.c.operation_parameters, tasks.c.next_at
    ).where(
        tasks.c.status == "pending",
        tasks.c.operation.in_(("play_sound", "play_playlist")),
        tasks.c.condition.in_(("at", "now")),
        tasks.c.next_at.is_not(None),
        tasks.c.next_at < before,
    )
    return list((await conn.execute(query.order_by(tasks.c.next_at))).mappings())


# Credits spent by play runs ------------------------------------------------------------------


async def reserve(
    conn: Connection,
    user_id: str,
    run_id: UUID,
    task_id: UUID,
    reason: str,
    cost: int,
    wanted: int,
    now: datetime,
) -> int:
    """Take the credits of up to `wanted` sounds at `cost` each from `user_id`, as many as the
    balance pays for, into the run's one transaction (keyed by run id, amount negative).
    Returns how many sounds are paid for: 0 when the balance pays for none (nothing changes,
    also for an unknown user)."""
    locked = select(users.c.credits).where(users.c.id == user_id).with_for_update()
    balance = (await conn.execute(locked)).scalar()
    if balance is None:
        return 0
    paid = wanted if cost == 0 else min(wanted, balance // cost)
    if paid <= 0:
        return 0
    await _move(conn, user_id, run_id, task_id, reason, balance, -paid * cost, now)
    return paid


async def refund(conn: Connection, user_id: str, run_id: UUID, credits: int, now: datetime) -> None:
    """Give back `credits` of what run `run_id` took from `user_id` (sounds it did not play)."""
    if credits <= 0:
        return
    locked = select(users.c.credits).where(users.c.id == user_id).with_for_update()
    balance = (await conn.execute(locked)).scalar()
    if balance is not None:
        await _move(conn, user_id, run_id, None, "", balance, credits, now)
        # A run that played nothing leaves no trace in the user's statement.
        keyed = (credit_transactions.c.run_id == run_id) & (
            credit_transactions.c.user_id == user_id
        )
        await conn.execute(
            delete(credit_transactions).where(keyed, credit_transactions.c.amount == 0)
        )


async def _move(
    conn: Connection,
    user_id: str,
    run_id: UUID,
    task_id: UUID | None,
    reason: str,
    balance: int,
    amount: int,
    now: datetime,
) -> None:
    """Add `amount` to the user's balance and to the run's transaction (created if needed)."""
    after = balance + amount
    await conn.execute(
        update(users).where(users.c.id == user_id).values(credits=after, updated_at=now)
    )
    keyed = (credit_transactions.c.run_id == run_id) & (credit_transactions.c.user_id == user_id)
    moved = await conn.execute(
        update(credit_transactions)
        .where(keyed)
        .values(amount=credit_transactions.c.amount + amount, balance=after)
    )
    if moved.rowcount == 0:
        row = {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "run_id": run_id,
            "task_id": task_id,
            "reason": reason,
            "amount": amount,
            "balance": after,
            "created_at": now,
        }
        await conn.execute(insert(credit_transactions), [row])

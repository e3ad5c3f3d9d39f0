"""The store's tables. All SQL lives in this package: tables here, statements in `queries.py`.

Instants are stored by `Instant`, one type that keeps aware UTC datetimes the same way on SQLite
and PostgreSQL, so no query has to know the dialect.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)


class Instant(TypeDecorator[datetime]):
    """An aware UTC instant. SQLite keeps it as naive UTC text (which sorts by time);
    PostgreSQL as `timestamp with time zone`. Naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where a UTC instant is required")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite each instant is text, and every row read or written converts several: one step
    # through C-implemented `isoformat`/`fromisoformat` instead of `process_*_value` and then
    # the dialect's own formatting (a `%` format of seven fields) or parsing (a regular
    # expression). Same text: `YYYY-MM-DD HH:MM:SS.ffffff`.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_instant


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given where a UTC instant is required")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def _sqlite_instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def dumps(value: Any) -> str:
    """JSON text of a column's value, for SQLAlchemy's `json_serializer`. orjson, about ten
    times faster than `json.dumps` and run for five columns of every task row written; what it
    refuses (integers beyond 64 bits, keys that are not strings) goes to `json.dumps` as
    before. NaN and infinities, which JSON has not, are written `null` on both databases
    (PostgreSQL refused the `NaN` text that `json.dumps` wrote)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    """A column's value from its JSON text; `json.loads` for what orjson refuses (the `NaN`
    that `json.dumps` wrote before)."""
    try:
        return orjson.loads(text)
    except ValueError:  # orjson.JSONDecodeError
        return json.loads(text)


def new_id() -> UUID:
    """A new row id: a UUID version 7 (RFC 9562), milliseconds since the epoch first, then 74
    random bits. Ids made one after another sort together, so a table's primary key index
    grows at one end instead of at a random page per insert: with a million tasks, a random
    id makes each insert read and rewrite pages the cache no longer holds."""
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = random >> 68, random & ((1 << 62) - 1)
    return UUID(int=millis << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("operation_parameters", JSON, nullable=False),
    Column("condition", String(64), nullable=False),
    Column("condition_parameters", JSON, nullable=False),
    # {name: task id} exactly as given; `task_dependencies` indexes the same edges.
    Column("dependencies", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("owner", String(128)),
    Column("name", String(256)),
    Column("policy", JSON),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    # The next occurrence of the task's trigger (None: the series is over).
    Column("next_at", Instant),
    # When the engine must act on the task: `next_at` while it can be claimed, otherwise None
    # (finished, or waiting for dependencies). The engine's only index into the future.
    Column("due_at", Instant, index=True),
    Column("occurrences", Integer, nullable=False, default=0),
    Column("runs", Integer, nullable=False, default=0),
    # Runs in progress (more than one only under the `allow` overlap policy).
    Column("active", Integer, nullable=False, default=0),
    Column("attempt", Integer, nullable=False, default=0),
    Column("started_at", Instant),
    Column("finished_at", Instant),
    Column("last_outcome", String(16)),
    Column("result", JSON),
    Column("error", Text),
    # What the task's runs hold (onair.engine.admission): a resource such as `output:default`,
    # for `hold` seconds from a run's start (None: until the series' following occurrence, or
    # until the run ends), and the span its next run holds it for (`held_until` None: open).
    Column("resource", String(128)),
    Column("hold", Float),
    Column("held_from", Instant),
    Column("held_until", Instant),
    # A pause (onair.engine.pausing): since when, by whom and why. A paused task has no
    # `due_at`, so no node claims it; resuming gives it one again.
    Column("paused_at", Instant),
    Column("paused_by", String(128)),
    Column("pause_note", Text),
    # Single-occurrence changes (onair.engine.calendar): skipped and moved occurrences.
    Column("changes", JSON),
    Index(None, "status", "created_at"),
    Index(None, "owner", "created_at"),
    Index(None, "resource", "held_from"),
)

calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    # Whose calendar: `all` (admins), `system` (the station's open Tasks API), `user:<id>`.
    Column("scope", String(160), primary_key=True),
    # SHA-256 of the feed's secret (hex): the URL is shown once, when it is made.
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", Instant, nullable=False),
)

task_dependencies = Table(
    "task_dependencies",
    metadata,
    Column("task_id", Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(256), primary_key=True),
    Column("dependency_id", Uuid, ForeignKey("tasks.id"), nullable=False, index=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("task_id", Uuid, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("node", String(128), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("due_at", Instant, nullable=False),
    Column("started_at", Instant),
    Column("finished_at", Instant),
    # None while the run is in progress.
    Column("outcome", String(16)),
    Column("result", JSON),
    Column("error", Text),
    Index(None, "task_id", "due_at"),
    Index(None, "outcome", "node"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("started_at", Instant, nullable=False),
    # A node's claims on its unfinished runs hold until this instant; heartbeats extend it.
    Column("expires_at", Instant, nullable=False, index=True),
)


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


# Accounts (onair.accounts): users known by their token's `sub`, and their credit movements.

users = Table(
    "users",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("credits", Integer, nullable=False),
    # The user's plan: what a recharge adds, and the balance it never goes beyond.
    Column("plan_credits", Integer, nullable=False),
    Column("plan_max_credits", Integer, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
)

credit_transactions = Table(
    "credit_transactions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("user_id", String(128), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # The engine run that made the movement (None for movements outside a run).
    Column("run_id", Uuid),
    Column("task_id", Uuid),
    # What the movement is for, unique with the user: a recharge's task occurrence
    # (`credit_recharge.occurrence_key`), so that each occurrence credits each user at most
    # once, retries and re-runs included.
    Column("occurrence", Uuid),
    Column("reason", String(32), nullable=False),
    Column("amount", Integer, nullable=False),
    Column("balance", Integer, nullable=False),
    Column("created_at", Instant, nullable=False),
    UniqueConstraint("run_id", "user_id"),
    UniqueConstraint("occurrence", "user_id"),
    Index(None, "user_id", "created_at"),
)


# Media (onair.audio.library): sounds kept under the media directory, and playlists of them.

sounds = Table(
    "sounds",
    metadata,
    Column("id", Uuid, primary_key=True),
    # The user the sound belongs to; None: the system's (imported without --user).
    Column("owner", String(128)),
    Column("name", String(256), nullable=False),
    # The name it was uploaded or imported with, and where it is kept, under the media dir.
    Column("filename", String(256), nullable=False),
    Column("path", String(512), nullable=False),
    Column("size", BigInteger, nullable=False),
    # What probing the file found (onair.audio.probe); the duration is the decoded one.
    Column("duration_seconds", Float, nullable=False),
    Column("format", String(64), nullable=False),
    Column("codec", String(64), nullable=False),
    Column("channels", Integer, nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index(None, "owner", "created_at"),
)

playlists = Table(
    "playlists",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner", String(128)),
    Column("name", String(256), nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index(None, "owner", "created_at"),
)

playlist_sounds = Table(
    "playlist_sounds",
    metadata,
    Column("playlist_id", Uuid, ForeignKey("playlists.id", ondelete="CASCADE"), primary_key=True),
    # 0-based order of the track in its playlist.
    Column("position", Integer, primary_key=True),
    # Deleting a sound takes it out of every playlist (refused while a task would play it).
    Column(
        "sound_id", Uuid, ForeignKey("sounds.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)


# The as-run log (onair.audio.asrun): every item that went on air, kept until the retention.
# Not tied to its task by a foreign key: the log of a day outlives the cleaning of its tasks.

asrun = Table(
    "asrun",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("run_id", Uuid, nullable=False),
    Column("task_id", Uuid, nullable=False),
    Column("operation", String(64), nullable=False),
    # broadcast, sound or track.
    Column("kind", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("owner", String(128)),
    Column("output", String(128), nullable=False),
    Column("planned_at", Instant, nullable=False),
    Column("first_audio_at", Instant),
    Column("lateness", Float),
    Column("seconds_aired", Float, nullable=False),
    Column("offset_seconds", Float, nullable=False),
    # completed, max_duration, cancelled, credits, failed or skipped.
    Column("end_reason", String(16), nullable=False),
    Column("error", Text),
    Column("ended_at", Instant, nullable=False),
    Column("subject", JSON, nullable=False),
    Index(None, "planned_at"),
    Index(None, "owner", "planned_at"),
    Index(None, "ended_at"),
)

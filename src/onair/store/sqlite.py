"""SQLite driven from the event loop's own thread, behind SQLAlchemy's asyncio API.

aiosqlite runs every statement on a thread of its own and hands the result back through the
event loop: two thread switches per statement, which were most of the cost of adding a task
(docs/performance.md). onair's statements are short and indexed, and an insert and commit in
WAL mode with `synchronous=NORMAL` write no more than the page cache, so running them inline
costs tens of microseconds where a round trip costs hundreds. This dialect is the standard
`sqlite3` one, declared asynchronous: SQLAlchemy's async layer then runs it in a greenlet that
never has to wait, and `queries.py` keeps one code path for SQLite and PostgreSQL.

The one slow thing SQLite does on commit, the WAL checkpoint (it syncs the database file), is
taken off the loop: autocheckpoint is off and `Checkpointer` runs it on its own connection in a
background thread, every `COMMITS` commits.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Any

log = logging.getLogger("onair.store")

COMMITS = 200
"""Commits between two checkpoints. A commit writes a few pages, so the WAL stays near the
1,000 pages at which SQLite itself would checkpoint."""


class InlineCursor:
    """A `sqlite3` cursor with the awaitable methods of an aiosqlite one; each runs at once."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """A `sqlite3` connection with the awaitable methods of an aiosqlite one, which is what
    SQLAlchemy's aiosqlite dialect drives; each runs at once, on the calling thread."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.close()


def connector(path: str) -> Any:
    """The `async_creator` for SQLAlchemy: opens `path` in autocommit mode (transactions are
    begun explicitly by `database.py`)."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        return InlineConnection(connection)

    return connect


class Checkpointer:
    """Copies the WAL back into the database file on a thread of its own, so that no commit on
    the event loop pays for it. `committed()` is called after every commit."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._commits = 0
        self._due = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="onair-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        self._commits += 1
        if self._commits >= COMMITS:
            self._commits = 0
            self._due.set()

    def close(self) -> None:
        self._closed = True
        self._due.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=10000")
        try:
            while True:
                self._due.wait()
                self._due.clear()
                try:
                    # PASSIVE: copies what no reader still needs and never blocks the writer.
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed; the next one will retry")
                if self._closed:
                    return
        finally:
            connection.close()

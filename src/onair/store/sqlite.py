"""SQLite driven from the event loop's own thread, through SQLAlchemy's synchronous API.

aiosqlite runs every statement on a thread of its own and hands the result back through the
event loop: two thread switches per statement, which were most of the cost of adding a task
(docs/performance.md). onair's statements are short and indexed, and an insert and commit in
WAL mode with `synchronous=NORMAL` write no more than the page cache, so running them inline
costs tens of microseconds where a round trip costs hundreds.

SQLAlchemy's asyncio API would still run each call in a greenlet of its own and switch to it
and back for every driver call: about 90 µs for an empty transaction, against 9 µs without.
So SQLite gets SQLAlchemy's plain `Connection`, and `InlineConnection` lends it the few
awaitable methods of an `AsyncConnection` that onair calls. `queries.py` keeps one code path
for SQLite and PostgreSQL.

The one slow thing SQLite does on commit, the WAL checkpoint (it syncs the database file), is
taken off the loop: autocheckpoint is off and `Checkpointer` runs it on its own connection in a
background thread, every `COMMITS` commits.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, CursorResult, Dialect, Executable, Row
from sqlalchemy.engine import Transaction

log = logging.getLogger("onair.store")

COMMITS = 200
"""Commits between two checkpoints. A commit writes a few pages, so the WAL stays near the
1,000 pages at which SQLite itself would checkpoint."""

P = ParamSpec("P")
T = TypeVar("T")


class InlineConnection:
    """A synchronous SQLAlchemy `Connection` with the awaitable methods of an `AsyncConnection`
    that onair uses; each runs at once, on the calling thread."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection

    @property
    def dialect(self) -> Dialect:
        return self.sync_connection.dialect

    @property
    def invalidated(self) -> bool:
        return self.sync_connection.invalidated

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        return self.sync_connection.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> CursorResult[Any]:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    async def stream(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | None = None,
    ) -> InlineResult:
        """The rows of `statement`, read from its cursor as they are fetched (as
        `AsyncConnection.stream` does with a server-side cursor)."""
        return InlineResult(self.sync_connection.execute(statement, parameters))

    async def run_sync(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return fn(self.sync_connection, *args, **kwargs)

    def begin(self) -> Block:
        """The transaction of an `async with` block: committed when the block ends without
        error, rolled back otherwise."""
        return Block(self.sync_connection.begin())

    def begin_nested(self) -> Block:
        """A savepoint for an `async with` block: released when the block ends without error,
        rolled back to otherwise."""
        return Block(self.sync_connection.begin_nested())

    async def commit(self) -> None:
        self.sync_connection.commit()

    async def close(self) -> None:
        self.sync_connection.close()


class InlineResult:
    """A statement's rows fetched a few at a time, with the awaitable methods of an
    `AsyncResult` that onair uses. SQLite steps through the rows only as they are fetched."""

    __slots__ = ("_result",)

    def __init__(self, result: CursorResult[Any]) -> None:
        self._result = result

    async def fetchmany(self, size: int) -> Sequence[Row[Any]]:
        return self._result.fetchmany(size)

    async def close(self) -> None:
        self._result.close()


class Block:
    """A transaction or savepoint as an asynchronous context manager."""

    __slots__ = ("_transaction",)

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction

    async def __aenter__(self) -> Transaction:
        return self._transaction

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._transaction.__exit__(kind, error, traceback)


def connector(path: str) -> Callable[[], sqlite3.Connection]:
    """The `creator` for SQLAlchemy: opens `path` in autocommit mode (transactions are begun
    explicitly by `database.py`)."""

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)

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

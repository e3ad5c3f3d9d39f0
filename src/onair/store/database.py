"""The connection to the database: engine, transactions, migrations and cross-node signals.

SQLite (the embedded default) runs in WAL mode behind a single connection driven from the
event loop's thread (`sqlite.py`), which makes this process its only writer; PostgreSQL gets a
pool, and signals other nodes with LISTEN/NOTIFY.
The few things that differ between the two live here, each in one method, so that
`queries.py` never asks which database it talks to.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection as SyncConnection
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from onair.store import schema, sqlite

log = logging.getLogger("onair.store")

MIGRATIONS = Path(__file__).with_name("migrations")
CHANNEL = "onair"
"""The NOTIFY channel; payloads are `due <iso instant>` or `cancel <task id>`."""


Connection = AsyncConnection | sqlite.InlineConnection
"""What `Store.connect()` lends: the awaitable connection `queries.py` is written against."""


def database_url(url: str) -> str:
    """`url` with the dialect onair uses: `sqlite` (Python's own driver, run inline) or
    `postgresql+asyncpg`."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


class Store:
    """The database behind every node. Use as `async with Store(url) as store:`."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = database_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self._pool: AsyncEngine | None = None
        self._listener: Any = None
        self._relistening: asyncio.Task[None] | None = None
        self._checkpointer: sqlite.Checkpointer | None = None
        self._connection: sqlite.InlineConnection | None = None
        self._turn = asyncio.Lock()
        if self.dialect == "sqlite":
            self.sync_engine = self._sqlite_engine()
        else:
            self._pool = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                json_serializer=schema.dumps,
                json_deserializer=schema.loads,
            )
            self.sync_engine = self._pool.sync_engine
            event.listen(self.sync_engine, "checkout", _alive)

    def _sqlite_engine(self) -> Engine:
        database = make_url(self.url).database or ":memory:"
        on_disk = database != ":memory:"
        if on_disk:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # No pool: `connect()` keeps its one connection open for the life of the store.
        engine = create_engine(
            self.url,
            creator=sqlite.connector(database),
            poolclass=NullPool,
            json_serializer=schema.dumps,
            json_deserializer=schema.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        if on_disk:
            self._checkpointer = sqlite.Checkpointer(database)
            checkpointer = self._checkpointer
            event.listen(engine, "commit", lambda _: checkpointer.committed())
        return engine

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.stop_listening()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
        if self._pool is not None:
            await self._pool.dispose()
        else:
            self.sync_engine.dispose()
        if self._checkpointer is not None:
            checkpointer, self._checkpointer = self._checkpointer, None
            await asyncio.to_thread(checkpointer.close)

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[Connection]:
        """A connection for the block, outside any transaction.

        On SQLite it is always the same one, kept open and lent to one block at a time: this
        process is the only writer anyway, and opening a connection costs more than most of
        onair's transactions."""
        if self._pool is not None:
            async with self._pool.connect() as pooled:
                yield pooled
            return
        async with self._turn:
            if self._connection is not None and self._connection.invalidated:
                dead, self._connection = self._connection, None
                await dead.close()
            if self._connection is None:
                self._connection = sqlite.InlineConnection(self.sync_engine.connect())
            yield self._connection

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        async with self.connect() as connection, connection.begin():
            yield connection

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Connection]:
        """A connection for a long read in several statements (a listing read a page at a
        time), in one read-only snapshot: the pages agree with each other, and between them
        the event loop serves others.

        It is a connection of its own, so a read that spans many turns of the loop holds up
        no writer: on SQLite a second connection to the file (WAL readers never block the
        writer), on PostgreSQL a pooled one at REPEATABLE READ. An in-memory SQLite database
        has no second connection; there it is the shared one, held for the whole read."""
        if self._pool is not None:
            async with self._pool.connect() as pooled:
                await pooled.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                async with pooled.begin():
                    yield pooled
            return
        if (make_url(self.url).database or ":memory:") == ":memory:":
            async with self.begin() as shared:
                yield shared
            return
        own = sqlite.InlineConnection(self.sync_engine.connect())
        try:
            async with own.begin():
                yield own
        finally:
            await own.close()

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision. Safe when several nodes start at once:
        on PostgreSQL an advisory lock makes them take turns."""
        async with self.connect() as connection:
            await connection.run_sync(_upgrade)
            await connection.commit()

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[bool]:
        """Whether this node holds the lock `name` for the block, tried without waiting.

        On PostgreSQL: a session advisory lock on a connection of its own, released at exit (or
        when the connection dies), so at most one node at a time gets True. On SQLite this
        process is the only node: always True.
        """
        if self._pool is None:
            yield True
            return
        key = _lock_key(name)
        async with self._pool.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            lock, unlock = "SELECT pg_try_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"
            held = bool(await connection.scalar(text(lock), {"key": key}))
            try:
                yield held
            finally:
                if held:
                    try:
                        await connection.execute(text(unlock), {"key": key})
                    except Exception:  # never hand a connection holding the lock back to the pool
                        await connection.invalidate()
                        raise

    async def lock(self, connection: Connection, names: Iterable[str]) -> None:
        """Hold the locks `names` until `connection`'s transaction ends, taken in sorted order
        (so that two transactions never deadlock on them). On PostgreSQL: transaction advisory
        locks; on SQLite the single writer already holds the whole database."""
        if self.dialect != "postgresql":
            return
        keys = sorted({_lock_key(name) for name in names})
        for key in keys:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    @property
    def holds_loop(self) -> bool:
        """Whether a transaction holds the event loop while it runs (SQLite, run inline on
        the loop's thread); on PostgreSQL the loop serves other work while the database
        answers, so nothing needs to wait for a transaction to be out of the way."""
        return self.dialect == "sqlite"

    @property
    def signals(self) -> bool:
        """Whether there can be other nodes to tell of changes (PostgreSQL; on SQLite this
        process is the only node)."""
        return self.dialect == "postgresql"

    async def notify(self, connection: Connection, payloads: Iterable[str]) -> None:
        """Tell the other nodes `payloads` once `connection`'s transaction commits. `payloads`
        is read only when there are other nodes (`signals`), so a generator of costly
        payloads costs nothing on SQLite."""
        if not self.signals:
            return
        rows = [{"channel": CHANNEL, "payload": payload} for payload in packed(payloads)]
        if rows:
            await connection.execute(text("SELECT pg_notify(:channel, :payload)"), rows)

    async def send(self, payloads: list[str]) -> None:
        """Tell the other nodes `payloads` now, outside any transaction (PostgreSQL; nothing
        to do on SQLite). Uses the listening connection, so it costs no pool connection."""
        if self._listener is not None and payloads:
            await self._listener.executemany(
                "SELECT pg_notify($1, $2)", [(CHANNEL, payload) for payload in packed(payloads)]
            )

    async def listen(self, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` for every notification from any node (PostgreSQL only;
        on SQLite this process is the only node and there is nothing to hear)."""
        if not self.signals:
            return
        import asyncpg

        def heard(*args: Any) -> None:
            for payload in args[-1].split("\n"):
                try:
                    callback(payload)
                except Exception:  # the others packed with it are still heard
                    log.exception("a notification could not be handled: %.200r", payload)

        url = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)

        async def connect() -> None:
            listener = await asyncpg.connect(url)
            await listener.add_listener(CHANNEL, heard)
            listener.add_termination_listener(lost)
            self._listener = listener

        def lost(connection: Any) -> None:
            if connection is self._listener:  # not closed by `stop_listening`
                self._listener = None
                self._relistening = asyncio.create_task(relisten(), name="onair-relisten")

        async def relisten() -> None:
            """Back on the channel as soon as the database lets it (a restart, a dropped
            connection): what was sent meanwhile is lost, so the callback then hears `due `
            (work may have become due unheard) and the worker looks again."""
            log.warning("the notification connection was lost; listening again when possible")
            delay = 0.1
            while True:
                try:
                    await connect()
                    break
                except Exception:  # refused, down, starting: all the same, try again
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            log.warning("listening to the other nodes again")
            heard("due ")

        await connect()

    async def stop_listening(self) -> None:
        listener, self._listener = self._listener, None
        if self._relistening is not None:
            self._relistening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relistening
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 5)


NOTIFICATION_BYTES = 7_900
"""What `packed` puts in one notification, at most: PostgreSQL refuses payloads of 8,000
bytes or more."""


def packed(payloads: Iterable[str]) -> list[str]:
    """`payloads` joined by newlines into as few notifications as hold them (`listen` splits
    them again; none contains a newline: events are compact JSON). At 2,000 runs a second a
    node sends about 4,000 events a second; one notification each cost every listening node
    a callback and PostgreSQL a queue entry per event."""
    notifications: list[str] = []
    batch: list[str] = []
    size = 0
    for payload in payloads:
        length = len(payload.encode())
        if batch and size + 1 + length > NOTIFICATION_BYTES:
            notifications.append("\n".join(batch))
            batch, size = [], 0
        size += length + (1 if batch else 0)
        batch.append(payload)
    if batch:
        notifications.append("\n".join(batch))
    return notifications


def _alive(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """At checkout, a pooled connection the server has closed (a restart, an idle timeout) is
    replaced by a fresh one (SQLAlchemy retries on DisconnectionError). asyncpg knows it from
    the socket, for free; SQLAlchemy's `pool_pre_ping` asked the server instead, three round
    trips (BEGIN, a ping, ROLLBACK) before every transaction."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the database closed this connection")


def _lock_key(name: str) -> int:
    """The 64-bit advisory lock key of a lock name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), signed=True)


def _sqlite_pragmas(dbapi_connection: Any, _: ConnectionPoolEntry) -> None:
    # Opened in autocommit mode (`sqlite.connector`): transactions are begun by SQLAlchemy
    # (below), not lazily by the driver at the first write, so that reads and savepoints
    # belong to the transaction they appear in.
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL: a commit survives a crash of the process
    # (not of the OS), at a fraction of FULL's fsync cost.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints sync the database file: `sqlite.Checkpointer` runs them off the event loop.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: SyncConnection) -> None:
    # Straight to the driver: through `exec_driver_sql`, SQLAlchemy's statement machinery
    # would cost more than the BEGIN itself, in every transaction.
    cursor = connection.connection.cursor()
    cursor.execute("BEGIN")
    cursor.close()


def alembic_config(connection: SyncConnection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: SyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        # Held to the end of the transaction, so two nodes never migrate at the same time.
        connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
    command.upgrade(alembic_config(connection), "head")

"""Fixtures shared by every tier: clean environment, both databases, real server processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from onair.config import EngineSettings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.test import Test
from onair.store.database import Store
from tests import postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's ONAIR__* variables never leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("ONAIR__"):
            monkeypatch.delenv(name)


# PostgreSQL: one server per test run, a migrated template, a database per test ---------------


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(make_url(url).render_as_string(hide_password=False))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    with postgres.server() as url:
        yield url


@pytest.fixture(scope="session")
def postgresql_template(postgresql_server: str) -> Iterator[str]:
    """A database migrated to the newest schema, copied for each test."""
    name = f"onair_template_{os.getpid()}"
    asyncio.run(
        _admin(
            postgresql_server,
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            f"CREATE DATABASE {name}",
        )
    )
    url = make_url(postgresql_server).set(database=name).render_as_string(hide_password=False)

    async def migrate() -> None:
        async with Store(url) as store:
            await store.migrate()

    asyncio.run(migrate())
    yield name
    asyncio.run(_admin(postgresql_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest, backend: str, directory: Path) -> Iterator[str]:
    """A fresh, migrated database of kind `backend`."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / f'onair-{uuid.uuid4().hex[:8]}.db'}"
        return
    server = request.getfixturevalue("postgresql_server")
    template = request.getfixturevalue("postgresql_template")
    name = f"onair_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f"CREATE DATABASE {name} TEMPLATE {template}"))
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_admin(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def postgresql_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL database (for tests that need several nodes)."""
    with _database(request, "postgresql", tmp_path) as url:
        yield url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with Store(database_url) as store:
        await store.migrate()
        yield store


@pytest.fixture
def engine_settings() -> EngineSettings:
    # Series as fast as tests need (the default floor of how often they run is 1 s).
    return EngineSettings(lease="PT3S", min_interval="PT0.1S")  # type: ignore[arg-type]


@pytest.fixture
async def engine(store: Store, engine_settings: EngineSettings) -> AsyncIterator[Engine]:
    async with Engine(store, Registry([Test()]), settings=engine_settings) as engine:
        yield engine


# Real server processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m onair serve` in its own process group, spoken to over HTTP."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.upper().startswith("ONAIR__")},
            "ONAIR__SERVER__PORT": str(self.port),
            "ONAIR__SYNCHRONIZER__ENABLED": "false",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"server-{self.port}.log"

    def start(self, timeout: float = 30) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "onair", "serve"],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=15)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on a database; they are stopped when the test ends."""
    servers: list[Server] = []

    def start(database_url: str, **env: str) -> Server:
        server = Server(tmp_path, {"ONAIR__STORE__URL": database_url, **env})
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., Server], database_url: str) -> Server:
    """A server of its own, for tests that need the whole store to themselves."""
    return start_server(
        database_url, ONAIR__ENGINE__LEASE="PT3S", ONAIR__ENGINE__MIN_INTERVAL="PT0.1S"
    )


@pytest.fixture(scope="module", params=BACKENDS)
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One server per module and database kind, for tests that only touch their own tasks."""
    directory = tmp_path_factory.mktemp("server")
    with _database(request, request.param, directory) as url:
        server = Server(
            directory,
            {
                "ONAIR__STORE__URL": url,
                "ONAIR__ENGINE__LEASE": "PT3S",
                "ONAIR__ENGINE__MIN_INTERVAL": "PT0.1S",
            },
        )
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def client(shared_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with shared_server.client() as client:
        yield client


@pytest.fixture
async def own_client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a server that no other test uses."""
    async with server.client() as client:
        yield client

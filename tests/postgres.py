"""A PostgreSQL server for the tests: the one at ONAIR_TEST_POSTGRESQL, else the local one on
127.0.0.1:5432, else a throwaway cluster started from the host's PostgreSQL binaries.
PostgreSQL tests never skip: without any of these they fail and say why."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The URL of an admin database on a PostgreSQL server that lives for the block."""
    explicit = os.environ.get("ONAIR_TEST_POSTGRESQL")
    if explicit:
        yield explicit
        return
    if _reachable("127.0.0.1", 5432):
        yield DEFAULT
        return
    binaries = _binaries()
    if binaries is None:
        raise RuntimeError(
            "PostgreSQL tests need a server: set ONAIR_TEST_POSTGRESQL, start one on "
            "127.0.0.1:5432, or install PostgreSQL's binaries (pg_ctl) for a throwaway one"
        )
    with _throwaway(binaries) as url:
        yield url


@contextlib.contextmanager
def _throwaway(binaries: Path) -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="onair-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = root / "data"
    run = lambda *args: subprocess.run([*prefix, *args], check=True, capture_output=True)  # noqa: E731
    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "start")
    try:
        deadline = time.monotonic() + 30
        while not _reachable("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)

"""Safe by default: a node reachable beyond this machine (bound beyond loopback, or answering to
names a proxy forwards) refuses to start with the Tasks API open or the public development
secret, with one message naming the setting; the explicit opt-out of a private network starts
and says so at every start; and no token signed with the development secret gets in."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from tests.conftest import Server, free_port

SECRET = "an-exposure-test-secret-of-32-bytes-or-more"
OWN = AuthSettings(secret=SECRET)  # type: ignore[arg-type]
DEVELOPMENT = AuthSettings()


def refused_start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`onair serve` with `env`, expected to stop by itself."""
    server = Server(tmp_path, {"ONAIR__STORE__URL": f"sqlite:///{tmp_path / 'x.db'}", **env})
    return subprocess.run(
        [sys.executable, "-m", "onair", "serve"],
        cwd=tmp_path,
        env=server.env | {"COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"ONAIR__SERVER__HOST": "0.0.0.0"}, "ONAIR__AUTH__SECRET", id="dev_secret"),
        pytest.param(
            {"ONAIR__SERVER__HOST": "0.0.0.0", "ONAIR__AUTH__SECRET": SECRET},
            "ONAIR__AUTH__PROTECT_TASKS_API=true",
            id="open_tasks_api",
        ),
        pytest.param(
            {
                "ONAIR__SERVER__ALLOWED_HOSTS": '["radio.example.org"]',
                "ONAIR__AUTH__SECRET": SECRET,
            },
            "ONAIR__AUTH__PROTECT_TASKS_API=true",
            id="behind_a_proxy",
        ),
        pytest.param(
            {
                "ONAIR__SERVER__HOST": "0.0.0.0",
                "ONAIR__AUTH__PROTECT_TASKS_API": "true",
                "ONAIR__AUTH__OPEN_TASKS_API": "true",
            },
            "ONAIR__AUTH__SECRET",
            id="dev_secret_even_with_the_opt_out",
        ),
    ],
)
def test_an_exposed_node_with_a_door_open_does_not_start(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    result = refused_start(tmp_path, ONAIR__LOG__LEVEL="ERROR", **env)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join((result.stdout + result.stderr).split())
    assert message.startswith("onair will not start: onair is "), message
    assert named in message
    assert "Traceback" not in message


def _own_address() -> str:
    """An address of this machine that is not loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: only the route is looked up
        address: str = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.fail("this machine has no address beyond loopback to test exposure with")
    return address


async def test_the_opt_out_starts_logs_and_refuses_development_tokens(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(
        database_url,
        ONAIR__SERVER__HOST="0.0.0.0",
        ONAIR__AUTH__SECRET=SECRET,
        ONAIR__AUTH__OPEN_TASKS_API="true",
    )
    assert "the Tasks API is open without a token while onair is bound to 0.0.0.0" in (
        server.log.read_text()
    )
    url = f"http://{_own_address()}:{server.port}"
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        assert (await client.get("/tasks")).status_code == 200  # open, as asked
        forged = create_token("root", role=Role.ADMIN, settings=DEVELOPMENT)
        response = await client.get("/tasks", headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert response.json()["detail"].startswith("Not authenticated: invalid token")


async def test_a_protected_exposed_node_needs_its_own_tokens(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(
        database_url,
        ONAIR__SERVER__HOST="0.0.0.0",
        ONAIR__AUTH__SECRET=SECRET,
        ONAIR__AUTH__PROTECT_TASKS_API="true",
    )
    assert "development secret" not in server.log.read_text()
    url = f"http://{_own_address()}:{server.port}"
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:
        assert (await client.get("/ping")).status_code == 204
        assert (await client.get("/tasks")).status_code == 401
        for settings, status in ((DEVELOPMENT, 401), (OWN, 200)):
            admin = create_token("root", role=Role.ADMIN, settings=settings)
            response = await client.get("/tasks", headers={"Authorization": f"Bearer {admin}"})
            assert response.status_code == status, response.text


async def test_the_open_tasks_api_answers_only_on_loopback(tmp_path: Path) -> None:
    """Served by another ASGI server on every address (its own settings say loopback), the
    open Tasks API still answers only what comes in on loopback."""
    port = free_port()
    env = Server(tmp_path, {"ONAIR__STORE__URL": f"sqlite:///{tmp_path / 'x.db'}"}).env
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "uvicorn", "--factory", "onair.app:create_app"),
        *("--host", "0.0.0.0", "--port", str(port)),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            for _ in range(300):
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/ping")).status_code == 204:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            assert (await client.get(f"http://127.0.0.1:{port}/tasks")).status_code == 200
            beyond = await client.get(f"http://{_own_address()}:{port}/tasks")
            assert beyond.status_code == 401, beyond.text
            assert "open on loopback only" in beyond.json()["detail"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)

"""The `onair` command as a user runs it: a subprocess speaking HTTP to a real server."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from tests.conftest import Server
from tests.integration.helpers import wait_status


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def onair(
    server: Server, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR")}
    environ |= {"ONAIR_URL": server.url, "COLUMNS": "200", **(env or {})}
    return run([sys.executable, "-m", "onair", *args], environ)


async def test_schedule_show_cancel_from_the_command_line(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    scheduled = await asyncio.to_thread(
        onair,
        shared_server,
        "tasks",
        "schedule",
        "test",
        "--parameters",
        '{"sleep": 30}',
    )
    assert scheduled.returncode == 0, scheduled.stderr
    match = re.search(r"scheduled ([0-9a-f-]{36})", scheduled.stdout)
    assert match is not None, scheduled.stdout
    task_id = match.group(1)
    await wait_status(client, task_id, "running")

    listed = await asyncio.to_thread(onair, shared_server, "tasks", "list")
    assert listed.returncode == 0
    assert task_id in listed.stdout
    assert "running" in listed.stdout

    shown = await asyncio.to_thread(onair, shared_server, "tasks", "show", task_id)
    assert shown.returncode == 0, shown.stderr
    assert '{"type": "test", "parameters": {"sleep": 30}}' in shown.stdout
    assert "once, as soon as it is added" in shown.stdout
    assert "running" in shown.stdout

    cancelled = await asyncio.to_thread(onair, shared_server, "tasks", "cancel", task_id)
    assert cancelled.returncode == 0
    assert f"cancelled {task_id}" in cancelled.stdout
    assert (await client.get(f"/tasks/{task_id}")).json()["status"] == "cancelled"

    again = await asyncio.to_thread(onair, shared_server, "tasks", "cancel", task_id)
    assert again.returncode == 1
    assert "409" in again.stdout
    assert "already cancelled" in again.stdout


async def test_schedule_prints_when_the_task_is_next_due(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    """Not the creation time: the next due instant, its zone, and how far ahead it is."""
    when = '{"datetime": "2030-01-01T00:00:00"}'
    scheduled = await asyncio.to_thread(
        onair, shared_server, "tasks", "schedule", "test", "--condition", "at", "--when", when
    )
    assert scheduled.returncode == 0, scheduled.stderr
    match = re.fullmatch(
        r"scheduled ([0-9a-f-]{36}), next due 2030-01-01 00:00:00 UTC \(in (\d+) years? "
        r"\d+ days?\)\n",
        scheduled.stdout,
    )
    assert match is not None, scheduled.stdout
    shown = await asyncio.to_thread(onair, shared_server, "tasks", "show", match.group(1))
    assert "2030-01-01 00:00:00 UTC (in " in shown.stdout
    await client.delete(f"/tasks/{match.group(1)}")


async def test_errors_are_readable(shared_server: Server) -> None:
    refused = await asyncio.to_thread(onair, shared_server, "tasks", "schedule", "nope")
    assert refused.returncode == 1
    assert "400: Invalid operation: nope." in refused.stdout
    unreachable = await asyncio.to_thread(
        run, [sys.executable, "-m", "onair", "tasks", "list", "--url", "http://127.0.0.1:9"]
    )
    assert unreachable.returncode == 1
    assert "cannot reach the service" in unreachable.stdout


async def test_validation_errors_are_one_readable_line(shared_server: Server) -> None:
    refused = await asyncio.to_thread(
        onair, shared_server, "tasks", "schedule", "test", "--condition", "at", "--when", "{}"
    )
    assert refused.returncode == 1
    (line,) = refused.stdout.splitlines()
    assert line.startswith("400: condition.parameters.datetime: "), line
    assert "[{" not in line


async def test_list_shows_names_and_next_due_and_fits_a_pipe(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    admin = {
        "Authorization": f"Bearer {create_token('ops', role=Role.ADMIN, settings=AuthSettings())}"
    }
    created = await client.post(
        "/api/v1/scheduler/admin/system-tasks",
        headers=admin,
        json={
            "name": "Nightly top-up",
            "task_type": "credit_recharge",
            "scheduled_at": "2030-01-01T00:00:00",
        },
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    listed = await asyncio.to_thread(onair, shared_server, "tasks", "list", "--limit", "500")
    assert listed.returncode == 0, listed.stdout
    lines = listed.stdout.splitlines()
    assert lines[0] == "status\tname\tnext due\tid"
    (row,) = [line.split("\t") for line in lines if task_id in line]
    assert row[:2] == ["pending", "Nightly top-up"]
    assert re.fullmatch(r"2030-01-01 00:00:00 UTC \(in \d+ years? \d+ days?\)", row[2]), row
    assert re.fullmatch(r"(\w+: \d+, )+\w+: \d+", lines[-1])  # the counts by status
    await client.delete(f"/tasks/{task_id}")


async def test_watch_prints_plain_lines_into_a_pipe(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    task_id = (
        await client.post(
            "/tasks",
            json={
                "operation": {"type": "test", "parameters": {"sleep": 30}},
                "condition": {"type": "now", "parameters": {}},
                "dependencies": {},
            },
        )
    ).json()["task"]["id"]
    await wait_status(client, task_id, "running")
    watched = await asyncio.to_thread(onair, shared_server, "tasks", "watch", "--once")
    assert watched.returncode == 0, watched.stdout
    lines = watched.stdout.splitlines()
    assert re.fullmatch(r"# onair at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[0])
    (row,) = [line.split("\t") for line in lines if task_id in line]
    assert (row[0], row[2], row[3], row[4]) == ("running", "test", "test", task_id)
    assert not any(mark in watched.stdout for mark in "│┃━─")  # no box drawing
    await client.delete(f"/tasks/{task_id}")


def test_settings_show_the_effective_values_and_where_they_come_from(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "ONAIR__LOG__LEVEL=DEBUG\n"
        "ONAIR__STORE__URL=postgresql://radio:hunter2@db.example.org:5432/onair\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR")}
    environ |= {"ONAIR__SERVER__PORT": "4000", "ONAIR__AUTH__SECRET": "s3cr3t-from-env"}
    shown = subprocess.run(
        [sys.executable, "-m", "onair", "settings"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in shown.stdout.splitlines()}
    assert rows["variable"] == ["value", "source"]
    assert rows["ONAIR__SERVER__PORT"] == ["4000", "environment"]
    assert rows["ONAIR__LOG__LEVEL"] == ["DEBUG", ".env"]
    assert rows["ONAIR__STORE__URL"] == [
        "postgresql://radio:***@db.example.org:5432/onair",
        ".env",
    ]
    assert rows["ONAIR__AUTH__SECRET"] == ["**********", "environment"]
    assert rows["ONAIR__SERVER__HOST"] == ["127.0.0.1", "default"]
    assert "hunter2" not in shown.stdout
    assert "s3cr3t" not in shown.stdout


async def test_clean_and_db_upgrade(shared_server: Server, tmp_path: Path) -> None:
    cleaned = await asyncio.to_thread(onair, shared_server, "tasks", "clean", "--older-than", "P7D")
    assert cleaned.returncode == 0, cleaned.stderr
    assert re.search(r"removed \d+ tasks", cleaned.stdout)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR__")}
    env["ONAIR__STORE__URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgraded = await asyncio.to_thread(run, [sys.executable, "-m", "onair", "db", "upgrade"], env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database is up to date" in upgraded.stdout
    assert (tmp_path / "fresh.db").stat().st_size > 0


# The CLI speaks HTTP: which database the node keeps its tasks in changes nothing it sends or
# shows here, and the test starts some twenty CLI processes (a minute on a loaded machine).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_every_tasks_command_speaks_to_a_protected_node(
    start_server: Callable[..., Server], database_url: str
) -> None:
    """With the Tasks API protected, each `onair tasks ...` command sends `--token` (or
    `ONAIR_TOKEN`); without one it exits 1 saying which token it needs."""
    secret = "a-secret-of-the-cli-test-long-enough-for-hs256"
    server = start_server(
        database_url, ONAIR__AUTH__PROTECT_TASKS_API="true", ONAIR__AUTH__SECRET=secret
    )
    settings = AuthSettings(secret=secret)  # type: ignore[arg-type]
    admin = create_token("root", role=Role.ADMIN, settings=settings)
    user = create_token("alice", settings=settings)
    when = '{"datetime": "2030-01-01T00:00:00"}'
    commands = [
        ("tasks", "schedule", "test", "--condition", "at", "--when", when),
        ("tasks", "list"),
        ("tasks", "preview", "--condition", "at", "--when", when),
        ("tasks", "clean"),
        ("tasks", "watch", "--once"),
    ]
    for command in commands:
        refused = await asyncio.to_thread(onair, server, *command)
        assert refused.returncode == 1, (command, refused.stdout)
        assert "401: Not authenticated: the Tasks API is protected" in refused.stdout, command
        assert "needs an admin token: pass --token or set ONAIR_TOKEN" in refused.stdout
        forbidden = await asyncio.to_thread(onair, server, *command, "--token", user)
        if command[1] != "watch":  # the dashboard's data shows a user their own tasks
            assert forbidden.returncode == 1, (command, forbidden.stdout)
            assert "403: Forbidden: the Tasks API is protected" in forbidden.stdout, command
    scheduled = await asyncio.to_thread(onair, server, *commands[0], "--token", admin)
    assert scheduled.returncode == 0, scheduled.stdout
    match = re.search(r"scheduled ([0-9a-f-]{36})", scheduled.stdout)
    assert match is not None, scheduled.stdout
    task_id = match.group(1)
    for command in [*commands[1:], ("tasks", "show", task_id), ("tasks", "cancel", task_id)]:
        done = await asyncio.to_thread(onair, server, *command, env={"ONAIR_TOKEN": admin})
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert f"cancelled {task_id}" in done.stdout

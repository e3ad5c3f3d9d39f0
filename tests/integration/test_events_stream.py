"""`GET /events` over HTTP from real `onair serve` processes: events in order as tasks are
created, run and cancelled; resuming with Last-Event-ID; filters; keep-alives; another node's
events on PostgreSQL; who may listen when the Tasks API is protected."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.credit_recharge import CreditRecharge
from onair.store.database import Store
from onair.tasks import SchedulerService
from onair.wire import TaskType
from tests.conftest import Server
from tests.integration.helpers import body, schedule, wait_status

Sent = dict[str, Any]


class EventStream:
    """An open `/events` response, read in the background: `events` (id and data) and
    `comments` as they arrive."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.events: list[Sent] = []
        self.comments: list[str] = []
        self.retry: int | None = None
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif fields:
                if "retry" in fields:
                    self.retry = int(fields["retry"])
                if "data" in fields:
                    self.events.append({"id": int(fields["id"]), **json.loads(fields["data"])})
                fields = {}
            self._arrived.set()

    async def until(self, done: Callable[[list[Sent]], bool], within: float = 15) -> list[Sent]:
        """The events so far, once `done(events)` holds."""
        async with asyncio.timeout(within):
            while not done(self.events):
                self._arrived.clear()
                await self._arrived.wait()
        return self.events

    async def of(self, task: str, count: int, within: float = 15) -> list[Sent]:
        """The first `count` events of `task`, once they have arrived."""
        await self.until(lambda events: len(_of(events, task)) >= count, within)
        return _of(self.events, task)[:count]

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await self._reader
        await self.response.aclose()


def _of(events: list[Sent], task: str) -> list[Sent]:
    return [e for e in events if e["task_id"] == task]


@contextlib.asynccontextmanager
async def listen(
    client: httpx.AsyncClient, path: str = "/events", **headers: str
) -> AsyncIterator[EventStream]:
    request = client.build_request("GET", path, headers=headers, timeout=None)
    response = await client.send(request, stream=True)
    assert response.status_code == 200, (await response.aread()).decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = EventStream(response)
    try:
        yield stream
    finally:
        await stream.close()


def kinds(events: list[Sent]) -> list[str]:
    return [e["kind"] for e in events]


async def test_created_started_completed_in_order(client: httpx.AsyncClient) -> None:
    async with listen(client) as stream:
        task = await schedule(client, parameters={"n": 1})
        events = await stream.of(task, 3)
    assert kinds(events) == ["created", "started", "completed"]
    created, started, completed = events
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert started["run_id"] == completed["run_id"] is not None
    assert created["run_id"] is None
    assert started["operation"] == "test"
    assert 0 <= started["lateness"] < 0.5
    assert started["due"] == completed["due"]
    assert stream.retry == 2000


async def test_failed_and_cancelled(client: httpx.AsyncClient) -> None:
    async with listen(client) as stream:
        failing = await schedule(client, parameters={"fail": "no signal"})
        long = await schedule(client, parameters={"sleep": 30})
        await stream.of(long, 2)  # created, started
        assert (await client.delete(f"/tasks/{long}")).status_code == 200
        failed = await stream.of(failing, 3)
        cancelled = await stream.of(long, 4)
    assert kinds(failed) == ["created", "started", "failed"]
    assert failed[2]["error"] == "Operation test failed: no signal."
    # The task is cancelled (committed by the API), then its run ends as cancelled.
    assert kinds(cancelled) == ["created", "started", "cancelled", "cancelled"]
    assert cancelled[2]["run_id"] is None
    assert cancelled[3]["run_id"] == cancelled[1]["run_id"]


async def test_filters_by_task_and_operation(client: httpx.AsyncClient) -> None:
    long = await schedule(client, parameters={"sleep": 30})
    await wait_status(client, long, "running")
    async with (
        listen(client, f"/events?task={long}") as by_task,
        listen(client, "/events?operation=credit_recharge") as by_operation,
        listen(client) as everything,
    ):
        other = await schedule(client)
        await everything.of(other, 3)
        assert (await client.delete(f"/tasks/{long}")).status_code == 200
        heard = await by_task.of(long, 2)
        await everything.of(long, 2)
    assert kinds(heard) == ["cancelled", "cancelled"]
    assert by_task.events == heard
    assert by_operation.events == []


async def test_a_new_listener_hears_only_what_comes(client: httpx.AsyncClient) -> None:
    before = await schedule(client)
    await wait_status(client, before, "completed")
    async with listen(client) as stream:
        after = await schedule(client)
        await stream.of(after, 3)
    assert _of(stream.events, before) == []


async def test_resume_with_last_event_id(client: httpx.AsyncClient) -> None:
    async with listen(client) as stream:
        seen = await schedule(client)
        before = await stream.of(seen, 3)
    last = before[-1]["id"]
    missed = await schedule(client)
    await wait_status(client, missed, "completed")
    async with listen(client, **{"Last-Event-ID": str(last)}) as resumed:
        events = await resumed.of(missed, 3)
        assert resumed.events[0]["id"] == last + 1  # nothing skipped, nothing repeated
        assert _of(resumed.events, seen) == []
    assert kinds(events) == ["created", "started", "completed"]
    async with listen(client, f"/events?after={last}&task={missed}") as by_query:
        assert kinds(await by_query.of(missed, 3)) == ["created", "started", "completed"]


async def test_keep_alive_comment(start_server: Callable[..., Server], tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'keepalive.db'}"
    server = start_server(database, ONAIR__EVENTS__KEEPALIVE="PT0.2S")
    async with server.client() as client, listen(client) as stream:
        await stream.until(lambda _: "keep-alive" in stream.comments, 10)


async def test_another_nodes_events(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    a = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-a")
    b = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-b")
    async with a.client() as on_a, b.client() as on_b, listen(on_b) as stream:
        task = await schedule(on_a)
        events = await stream.of(task, 3)
    assert kinds(events) == ["created", "started", "completed"]
    assert events[0]["node"] == "node-a"
    assert events[1]["node"] == events[2]["node"] in ("node-a", "node-b")


async def test_nodes_carry_on_when_the_database_drops_their_connections(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    """Every connection of both nodes closed by the database, as a restart does: the next
    requests, claims and heartbeats get fresh pooled connections, not errors, and each node
    listens to the other again (it says so in its log)."""
    a = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-a")
    b = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-b")
    async with a.client() as on_a, b.client() as on_b:
        await wait_status(on_a, await schedule(on_a), "completed")
        await wait_status(on_b, await schedule(on_b), "completed")
        assert await drop_connections(postgresql_url) >= 4  # listeners and pooled ones
        async with asyncio.timeout(15):
            while "listening to the other nodes again" not in b.log.read_text():
                await asyncio.sleep(0.05)
        async with listen(on_b) as stream:
            task = await schedule(on_a)
            events = await stream.of(task, 3)
    assert kinds(events) == ["created", "started", "completed"]
    assert events[0]["node"] == "node-a"
    for server in (a, b):  # no claim, heartbeat or request met a closed connection
        assert "Traceback" not in server.log.read_text()


async def drop_connections(url: str) -> int:
    """Close every other connection to the database of `url`, server side."""
    import asyncpg
    from sqlalchemy.engine import make_url

    connection = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


# Who may listen -------------------------------------------------------------------------------

DEV = AuthSettings()


def bearer(user: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user, role=role, settings=DEV)}"}


async def user_task(server: Server, user: str) -> str:
    """A far-future task of `user`, made on the server's database without a worker (users
    cannot create the types this node runs)."""
    async with Store(server.env["ONAIR__STORE__URL"]) as store:
        scheduler = SchedulerService(Engine(store, Registry([CreditRecharge(Accounts(store))])))
        task = await scheduler.create_task(
            name="a user's task",
            task_type=TaskType.CREDIT_RECHARGE,
            scheduled_at=datetime.now(UTC) + timedelta(days=30),
            parameters={"user_id": user},
            user_id=user,
        )
    return str(task.id)


async def test_protected_stream_needs_an_admin(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(database_url, ONAIR__AUTH__PROTECT_TASKS_API="true")
    async with server.client() as client:
        assert (await client.get("/events")).status_code == 401
        forged = {
            "Authorization": "Bearer "
            + create_token(
                "x", settings=AuthSettings(secret="a-secret-that-is-not-the-servers-0123456789")
            )
        }
        assert (await client.get("/events", headers=forged)).status_code == 401
        assert (await client.get("/events", headers=bearer("alice"))).status_code == 403
        admin = bearer("root", Role.ADMIN)
        async with listen(client, **admin) as stream:
            created = await client.post("/tasks", json=body(), headers=admin)
            assert created.status_code == 201, created.text
            task = created.json()["task"]["id"]
            assert kinds(await stream.of(task, 3)) == ["created", "started", "completed"]


async def test_users_hear_only_their_tasks(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(database_url, ONAIR__AUTH__PROTECT_TASKS_API="true")
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    mine, theirs = await user_task(server, alice), await user_task(server, bob)
    path = "/api/v1/scheduler/events"
    async with (
        server.client() as client,
        listen(client, path, **bearer(alice)) as alices,
        listen(client, path, **bearer("root", Role.ADMIN)) as admins,
    ):
        unauthenticated = await client.get(path)
        assert unauthenticated.status_code == 401
        for task, user in ((theirs, bob), (mine, alice)):
            url = f"/api/v1/scheduler/tasks/{task}"
            assert (await client.delete(url, headers=bearer(user))).status_code == 200
        await admins.of(mine, 1)
        await admins.of(theirs, 1)
        heard = await alices.of(mine, 1)
        assert alices.events == heard
    assert kinds(heard) == ["cancelled"]

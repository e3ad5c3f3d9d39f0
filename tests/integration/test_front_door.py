"""One front door, checked as a table of door × rule against a real server on SQLite and
PostgreSQL, with two users, an admin and an anonymous caller: no door reaches another user's
task, sound, playlist, credits or events unless the rules allow it; admission (who may schedule
what, whose media) is the same on every door. And the gate: only JSON bodies, only the node's
own host names, no cross-site writes; the seed's own curls unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role
from tests.conftest import BACKENDS, Server, _database
from tests.integration.test_user_api import bearer, cookie, someone
from tests.integration.tones import file_outputs, tone, upload


@pytest.fixture(scope="module", params=BACKENDS)
def door_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("doors")
    with _database(request, request.param, directory) as url:
        server = Server(
            directory,
            {"ONAIR__STORE__URL": url, "ONAIR__AUDIO__OUTPUTS": file_outputs(directory, "default")},
        )
        server.start()
        yield server
        server.stop()


@pytest.fixture
async def client(door_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with door_server.client() as client:
        yield client


@dataclass
class World:
    """Alice's things, and who asks."""

    alice: dict[str, str]
    bob: dict[str, str]
    admin: dict[str, str]
    sound: str
    playlist: str
    task: str
    system_task: str
    base: datetime

    def at(self, days: float) -> str:
        return at(self.base, days)


FAR = (datetime.now(UTC) + timedelta(days=400)).replace(microsecond=0)
_WORLDS = itertools.count()


def at(base: datetime, days: float) -> str:
    return (base + timedelta(days=days)).isoformat()


@pytest.fixture
async def world(client: httpx.AsyncClient, tmp_path: Path) -> World:
    base = FAR + timedelta(days=100 * next(_WORLDS))  # times of its own on the shared server
    alice_id = someone()
    alice, bob = bearer(alice_id), bearer(someone())
    admin = bearer(someone(), Role.ADMIN)
    sound = await upload(client, alice, tone(tmp_path / "a.wav", 0.3))
    playlist = await client.post(
        "/api/v1/playlists", headers=alice, json={"name": "P", "sound_ids": [sound["id"]]}
    )
    task = await client.post(
        "/api/v1/scheduler/tasks",
        headers=alice,
        json={
            "name": "alice's alarm",
            "task_type": "play_sound",
            "scheduled_at": at(base, 0),
            "parameters": {"sound_id": sound["id"]},
        },
    )
    assert task.status_code == 201, task.text
    system = await client.post("/tasks", json=tasks_body("test", {}, at(base, 1)))
    assert system.status_code == 201, system.text
    return World(
        alice,
        bob,
        admin,
        sound["id"],
        playlist.json()["id"],
        task.json()["id"],
        system.json()["task"]["id"],
        base,
    )


def tasks_body(operation: str, parameters: dict[str, Any], when: str) -> dict[str, Any]:
    return {
        "operation": {"type": operation, "parameters": parameters},
        "condition": {"type": "at", "parameters": {"datetime": when}},
        "dependencies": {},
    }


def seed_body(task_type: str, parameters: dict[str, Any], when: str) -> dict[str, Any]:
    return {"name": "x", "task_type": task_type, "scheduled_at": when, "parameters": parameters}


ANONYMOUS: dict[str, str] = {}


async def test_reading_and_cancelling_someone_elses_task(
    client: httpx.AsyncClient, world: World
) -> None:
    """Every way to reach Alice's task: only she and admins get it; the others are told it
    does not exist, and cancelling it changes nothing."""
    task = world.task
    doors = [
        ("GET", f"/tasks/{task}"),
        ("GET", f"/tasks/pending/{task}"),
        ("GET", f"/tasks/{task}/runs"),
        ("GET", f"/api/v1/scheduler/tasks/{task}"),
        ("GET", f"/ui/api/tasks/{task}"),
    ]
    callers = {"anonymous": ANONYMOUS, "bob": world.bob, "alice": world.alice, "admin": world.admin}
    allowed = {"alice", "admin"}
    for method, path in doors:
        for who, headers in callers.items():
            if path.startswith("/api/v1") and who == "anonymous":
                expected = 401
            else:
                expected = 200 if who in allowed else 404
            response = await client.request(method, path, headers=headers)
            assert (path, who, response.status_code) == (path, who, expected), response.text
    index = (await client.get("/tasks")).json()
    assert task not in index["pending"]
    assert world.system_task in index["pending"]
    assert task in (await client.get("/tasks", headers=world.alice)).json()["pending"]
    assert (
        world.system_task not in (await client.get("/tasks", headers=world.bob)).json()["pending"]
    )
    overview = (await client.get("/ui/api/overview")).json()
    assert task not in {item["id"] for item in overview["timeline"]}

    for headers in (ANONYMOUS, world.bob):
        assert (await client.delete(f"/tasks/{task}", headers=headers)).status_code == 404
    response = await client.delete(f"/api/v1/scheduler/tasks/{task}", headers=world.bob)
    assert response.status_code == 404
    still = await client.get(f"/api/v1/scheduler/tasks/{task}", headers=world.alice)
    assert still.json()["status"] == "pending"
    # Cleaning: the station's own finished tasks only.
    assert (await client.delete(f"/tasks/{task}", headers=world.alice)).status_code == 200
    removed = (
        await client.post(
            "/tasks/clean", json={"strategy": {"type": "all", "parameters": {}}}, headers=world.bob
        )
    ).json()["removed"]
    assert task not in removed
    removed = (
        await client.post("/tasks/clean", json={"strategy": {"type": "all", "parameters": {}}})
    ).json()["removed"]
    assert task not in removed
    assert (await client.get(f"/tasks/{task}", headers=world.alice)).status_code == 200


@pytest.mark.parametrize(
    ("operation", "who", "tasks_api", "user_api"),
    [
        # credit_recharge: admins only, on every door.
        ("credit_recharge", "anonymous", 403, 401),
        ("credit_recharge", "bob", 403, 403),
        ("credit_recharge", "admin", 201, 201),
        # Alice's sound: hers and admins'; not the station's nor Bob's.
        ("play_sound", "anonymous", 400, 401),
        ("play_sound", "bob", 400, 422),
        ("play_sound", "alice", 201, 201),
        ("play_sound", "admin", 201, 201),
        # A broadcast: the station's and admins'.
        ("stream", "anonymous", 201, None),
        ("stream", "bob", 403, None),
    ],
)
async def test_admission_is_the_same_on_every_door(
    client: httpx.AsyncClient,
    world: World,
    operation: str,
    who: str,
    tasks_api: int,
    user_api: int | None,
) -> None:
    headers = {"anonymous": ANONYMOUS, "bob": world.bob, "alice": world.alice}.get(who, world.admin)
    parameters = {
        "credit_recharge": {"user_id": "someone"},
        "play_sound": {"sound_id": world.sound},
        "stream": {"id": "85478e12-fd0d-4de3-a26b-cd1ec7f94f2b", "start": "2031-01-01T10:00:00"},
    }[operation]
    slot = {"anonymous": 10, "bob": 20, "alice": 30, "admin": 40}[who]
    response = await client.post(
        "/tasks", json=tasks_body(operation, parameters, world.at(slot)), headers=headers
    )
    assert response.status_code == tasks_api, response.text
    if tasks_api == 403:
        assert response.json()["detail"].startswith("Forbidden: only ")
    if tasks_api == 400:
        assert response.json()["extra"][0]["key"] == "operation.parameters.sound_id"
        assert world.sound in response.json()["extra"][0]["message"]
    if user_api is None:
        return
    response = await client.post(
        "/api/v1/scheduler/tasks",
        json=seed_body(operation, parameters, world.at(slot + 1)),
        headers=headers,
    )
    assert response.status_code == user_api, response.text
    if user_api == 422:
        [problem] = response.json()["detail"]
        assert problem["loc"] == ["body", "parameters", "sound_id"]


async def test_media_and_credits_are_their_owners(client: httpx.AsyncClient, world: World) -> None:
    for path in (f"/api/v1/sounds/{world.sound}", f"/api/v1/playlists/{world.playlist}"):
        assert (await client.get(path, headers=world.bob)).status_code == 404
        assert (await client.get(path, headers=world.alice)).status_code == 200
        assert (await client.get(path, headers=world.admin)).status_code == 200
        assert (await client.delete(path, headers=world.bob)).status_code == 404
    assert world.sound not in (await client.get("/api/v1/sounds", headers=world.bob)).text
    me = (await client.get("/api/v1/users/me", headers=world.bob)).json()
    statement = await client.get("/api/v1/users/me/credit-transactions", headers=world.bob)
    assert statement.json()["transactions"] == []
    assert me["id"] != (await client.get("/api/v1/users/me", headers=world.alice)).json()["id"]


async def _events(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    """What an event stream sends from the start of its history, in a second."""
    received: list[str] = []

    async def read() -> None:
        async with client.stream("GET", f"{path}?after=0", headers=headers) as stream:
            assert stream.status_code == 200
            async for chunk in stream.aiter_text():
                received.append(chunk)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), 1.0)
    return "".join(received)


async def test_events_reach_only_who_may_see_the_task(
    client: httpx.AsyncClient, world: World
) -> None:
    assert world.task in await _events(client, "/api/v1/scheduler/events", world.alice)
    assert world.task in await _events(client, "/events", world.admin)
    for path, headers in (("/events", ANONYMOUS), ("/api/v1/scheduler/events", world.bob)):
        seen = await _events(client, path, headers)
        assert world.task not in seen
        assert world.sound not in seen
    assert world.system_task in await _events(client, "/events", ANONYMOUS)


# The gate ---------------------------------------------------------------------------------


TASK = json.dumps(tasks_body("test", {}, "2030-01-01T00:00:00")).encode()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"content-type": "text/plain;charset=UTF-8"}, id="text_plain"),
        pytest.param({"content-type": "application/x-www-form-urlencoded"}, id="form"),
        pytest.param({"content-type": "multipart/form-data; boundary=x"}, id="multipart"),
        pytest.param({}, id="no_content_type"),
    ],
)
async def test_a_body_that_is_not_json_is_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """What a web page may send anywhere without asking (a no-CORS `fetch` or a form) never
    reaches a route: 415 in each surface's shape."""
    response = await client.post("/tasks", content=TASK, headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["status_code"] == 415
    response = await client.post(
        "/api/v1/scheduler/tasks", content=TASK, headers=headers | cookie(someone())
    )
    assert response.status_code == 415, response.text
    assert response.json()["detail"].startswith("The body must be JSON")


async def test_a_foreign_host_and_a_cross_site_write_are_refused(client: httpx.AsyncClient) -> None:
    rebound = await client.get("/tasks", headers={"host": "attacker.example:33000"})
    assert rebound.status_code == 400
    assert "attacker.example" in rebound.json()["detail"]
    assert (await client.get("/ping", headers={"host": "attacker.example"})).status_code == 400
    for host in ("localhost:1234", "127.0.0.1", "[::1]:33000", "10.1.2.3"):
        assert (await client.get("/ping", headers={"host": host})).status_code == 204, host
    own = client.base_url.netloc.decode()
    for origin in ("http://attacker.example", "null"):
        response = await client.post(
            "/tasks", content=TASK, headers={"content-type": "application/json", "origin": origin}
        )
        assert response.status_code == 403, response.text
    response = await client.post(
        "/tasks",
        content=TASK,
        headers={"content-type": "application/json", "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403
    same = await client.post(
        "/tasks",
        content=TASK,
        headers={"content-type": "application/json", "origin": f"http://{own}"},
    )
    assert same.status_code == 201, same.text


async def test_the_dashboard_cannot_be_framed(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src 'self'" in policy


async def test_the_seed_curls_still_answer(door_server: Server) -> None:
    """Seed 000's curls, verbatim but for the port, as a subprocess of curl."""
    base = door_server.url
    unknown = "85478e12-fd0d-4de3-a26b-cd1ec7f94f2b"
    json_header = ["--header", "Content-Type: application/json"]
    cases = [
        (["--request", "HEAD", "--head", f"{base}/ping"], "204"),
        (["--request", "GET", f"{base}/tasks"], "200"),
        (["--request", "GET", f"{base}/tasks/{unknown}"], "404"),
        (
            [
                "--request",
                "POST",
                *json_header,
                "--data",
                '{"operation": {"type": "test", "parameters": {}}, "condition": {"type": "now", '
                '"parameters": {}}, "dependencies": {}}',
                f"{base}/tasks",
            ],
            "201",
        ),
        (["--request", "DELETE", f"{base}/tasks/{unknown}"], "404"),
        (
            [
                "--request",
                "POST",
                *json_header,
                "--data",
                '{"strategy": {"type": "all", "parameters": {}}}',
                f"{base}/tasks/clean",
            ],
            "200",
        ),
    ]
    for arguments, status in cases:
        process = await asyncio.create_subprocess_exec(
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            *arguments,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        assert (arguments[-1], out.decode()) == (arguments[-1], status)

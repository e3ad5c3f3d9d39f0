"""Input no column or calendar can hold is refused with a 4xx naming the field, on both
surfaces and both databases, and never answers 500: NaN and infinities in JSON bodies, NUL
characters in any text (bodies, query parameters, paths, uploads' names, a token's subject),
cleaning deltas below zero or beyond 100 years, and offsets past the paging bound."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from tests.conftest import Server
from tests.integration.helpers import body, schedule, wait_status

DEV = AuthSettings()
NOT_FINITE = "Not a finite number: NaN, Infinity and numbers beyond ±1.8e308 are not JSON numbers."
NUL = "NUL characters (\\u0000) are not accepted in text."


def bearer(user: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(user, role=role, settings=DEV)}"}


def someone() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def raw_task(parameters: str) -> bytes:
    """A `POST /tasks` body whose operation parameters are the JSON text `parameters`."""
    return (
        b'{"operation": {"type": "test", "parameters": ' + parameters.encode() + b"}, "
        b'"condition": {"type": "now", "parameters": {}}, "dependencies": {}}'
    )


JSON = {"content-type": "application/json"}


def reference_problems(response: httpx.Response, path: str) -> list[dict[str, Any]]:
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["detail"] == f"Validation failed for {path}"
    return list(answer["extra"])


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param('{"x": NaN}', "operation.parameters.x", id="nan"),
        pytest.param('{"x": Infinity}', "operation.parameters.x", id="infinity"),
        pytest.param('{"x": {"y": [1, -Infinity]}}', "operation.parameters.x.y.1", id="nested"),
        pytest.param('{"x": 1e999}', "operation.parameters.x", id="overflowing_number"),
        pytest.param(
            '{"x": ' + "9" * 400 + ".0}", "operation.parameters.x", id="overflowing_digits"
        ),
        pytest.param('{"x": "a\\u0000b"}', "operation.parameters.x", id="nul_in_a_string"),
        pytest.param('{"a\\u0000": 1}', "operation.parameters.a\x00", id="nul_in_a_key"),
    ],
)
async def test_tasks_api_refuses_nan_and_nul(
    client: httpx.AsyncClient, text: str, key: str
) -> None:
    response = await client.post("/tasks", content=raw_task(text), headers=JSON)
    message = NUL if "u0000" in text else NOT_FINITE
    assert reference_problems(response, "POST /tasks") == [{"message": message, "key": key}]


async def test_lookalikes_are_accepted(client: httpx.AsyncClient) -> None:
    """An escaped backslash before `u0000`, and NaN or 1e999 inside a string, are plain text."""
    text = '{"a": "\\\\u0000", "b": "NaN Infinity 1e999"}'
    response = await client.post("/tasks", content=raw_task(text), headers=JSON)
    assert response.status_code == 201, response.text
    assert response.json()["task"]["operation"]["parameters"] == {
        "a": "\\u0000",
        "b": "NaN Infinity 1e999",
    }


async def test_user_api_refuses_nan_and_nul(client: httpx.AsyncClient) -> None:
    headers = bearer(someone()) | JSON
    task = (
        b'{"name": "Alarm\\u0000", "task_type": "play_sound", '
        b'"scheduled_at": "2030-01-01T10:00:00", "parameters": {"sound_id": NaN}}'
    )
    response = await client.post("/api/v1/scheduler/tasks", content=task, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [
            {"type": "value_error", "loc": ["body", "name"], "msg": NUL},
            {"type": "value_error", "loc": ["body", "parameters", "sound_id"], "msg": NOT_FINITE},
        ]
    }
    playlist = await client.post(
        "/api/v1/playlists", content=b'{"name": "a\\u0000"}', headers=headers
    )
    assert playlist.status_code == 422, playlist.text
    assert playlist.json()["detail"][0]["loc"] == ["body", "name"]


async def test_nul_in_a_query_parameter_or_a_path(client: httpx.AsyncClient) -> None:
    admin = bearer(someone(), Role.ADMIN)
    response = await client.get(
        "/api/v1/scheduler/admin/tasks",
        params={"user_id": "a\x00b", "task_type": "t"},
        headers=admin,
    )
    assert response.status_code == 422, response.text
    assert response.json() == {
        "detail": [{"type": "value_error", "loc": ["query", "user_id"], "msg": NUL}]
    }
    path = await client.get("/tasks/a%00b")
    assert reference_problems(path, "GET /tasks/a\x00b") == [
        {"message": "The path contains a NUL character."}
    ]


async def test_nul_in_an_upload_name(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/sounds",
        files={"file": ("tone.wav", b"RIFF", "audio/wav")},
        data={"name": "a\x00b"},
        headers=bearer(someone()),
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == [
        {"type": "value_error", "loc": ["body", "name"], "msg": NUL}
    ]


async def test_nul_in_a_tokens_subject(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me", headers=bearer("a\x00b"))
    assert response.status_code == 401, response.text
    assert response.json() == {
        "detail": "Not authenticated: the token's sub must not contain a NUL character."
    }


@pytest.mark.parametrize(
    ("delta", "message"),
    [
        pytest.param(-1, "Input should be greater than or equal to 0 seconds", id="negative"),
        pytest.param("-PT1H", "Input should be greater than or equal to 0 seconds", id="neg_iso"),
        pytest.param("P99999999D", "Input should be less than or equal to 36525 days", id="huge"),
    ],
)
async def test_cleaning_deltas_out_of_range(
    client: httpx.AsyncClient, delta: Any, message: str
) -> None:
    """A negative delta would put the cutoff in the future and remove every finished task: it
    is refused, and the finished task stays."""
    finished = await schedule(client)
    await wait_status(client, finished, "completed")
    strategy = {"type": "timedelta", "parameters": {"delta": delta}}
    response = await client.post("/tasks/clean", json={"strategy": strategy})
    assert reference_problems(response, "POST /tasks/clean") == [
        {"message": message, "key": "strategy.parameters.delta"}
    ]
    assert (await client.get(f"/tasks/{finished}")).status_code == 200


async def test_offsets_past_the_bound(client: httpx.AsyncClient) -> None:
    task = await schedule(client)
    huge = str(2**70)
    runs = await client.get(f"/tasks/{task}/runs", params={"offset": huge})
    assert reference_problems(runs, f"GET /tasks/{task}/runs") == [
        {"message": "Input should be less than or equal to 100000", "key": "offset"}
    ]
    mine = await client.get(
        "/api/v1/scheduler/tasks", params={"offset": huge}, headers=bearer(someone())
    )
    assert mine.status_code == 422, mine.text
    assert mine.json()["detail"][0]["loc"] == ["query", "offset"]


async def test_no_traceback_in_the_log(client: httpx.AsyncClient, shared_server: Server) -> None:
    """Runs last in the module: none of the refusals above was an unexpected error."""
    assert (await client.post("/tasks", json=body())).status_code == 201
    log = shared_server.log.read_text()
    assert "Traceback" not in log
    assert "unexpected error" not in log

"""Slow and idle clients are disconnected (`onair.api.connections`, `BodyLimit`'s body
timeout): a real server with short bounds, spoken to over raw sockets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

BOUND = 0.4
"""Seconds of each timeout in these tests."""

WITHIN = 5.0
"""How long a disconnection may take on a loaded machine, at most."""


@pytest.fixture
def bounded(start_server: Callable[..., Server], tmp_path: Path) -> Server:
    return start_server(
        f"sqlite:///{tmp_path / 'connections.db'}",
        ONAIR__SERVER__IDLE_TIMEOUT=f"PT{BOUND}S",
        ONAIR__SERVER__HEADER_TIMEOUT=f"PT{BOUND}S",
        ONAIR__SERVER__BODY_TIMEOUT=f"PT{BOUND}S",
        ONAIR__SERVER__MAX_HEADER_SIZE="2048",
    )


async def _exchange(server: Server, sent: bytes) -> tuple[bytes, float]:
    """Send `sent`, then read until the server closes: what it answered, and when it closed
    (seconds after the last byte was sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(sent)
        await writer.drain()
        began = time.monotonic()
        async with asyncio.timeout(WITHIN):
            answer = await reader.read()  # to EOF: the server closed
        return answer, time.monotonic() - began
    finally:
        writer.close()


def _status_and_body(answer: bytes) -> tuple[str, bytes]:
    head, _, rest = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), rest


async def test_slow_and_idle_clients_are_disconnected(bounded: Server) -> None:
    request = b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
    idle, slow_head, slow_body, huge_head = await asyncio.gather(
        _exchange(bounded, b""),
        _exchange(bounded, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        _exchange(bounded, request + b"content-length: 100\r\n\r\n" + b'{"operation":'),
        _exchange(bounded, b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: " + b"a" * 4096),
    )
    # A connection that never sends a request: closed without an answer.
    assert idle[0] == b""
    assert BOUND * 0.8 <= idle[1] < WITHIN
    # Headers that never end: 408 once the header timeout has passed, then closed.
    assert _status_and_body(slow_head[0])[0] == "HTTP/1.1 408 Request Timeout"
    assert BOUND * 0.8 <= slow_head[1] < WITHIN
    # A body that stalls: 408 in the Tasks API's own error shape, then closed.
    status, content = _status_and_body(slow_body[0])
    assert status == "HTTP/1.1 408 Request Timeout"
    assert json.loads(content) == {
        "status_code": 408,
        "detail": "The request body stalled: no part of it came for 0.4 s.",
    }
    assert BOUND * 0.8 <= slow_body[1] < WITHIN
    # Headers over the size limit: 431 at once, then closed.
    assert _status_and_body(huge_head[0])[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert huge_head[1] < WITHIN


async def test_a_prompt_client_keeps_its_connection(bounded: Server) -> None:
    """Requests that arrive in time are served, several on one connection."""
    async with httpx.AsyncClient(base_url=bounded.url, timeout=5) as client:
        for _ in range(3):
            assert (await client.get("/ping")).status_code == 204
        created = await client.post(
            "/tasks",
            json={
                "operation": {"type": "test", "parameters": {}},
                "condition": {"type": "now", "parameters": {}},
                "dependencies": {},
            },
        )
        assert created.status_code == 201, created.text


async def test_an_event_stream_outlives_the_timeouts(bounded: Server) -> None:
    """Once a request's body is in, nothing times it out: an event stream open for several
    times every bound still delivers the event of a task added then."""
    async with httpx.AsyncClient(base_url=bounded.url, timeout=None) as client:
        request = client.build_request("GET", "/events")
        response = await client.send(request, stream=True)
        assert response.status_code == 200
        lines = response.aiter_lines()
        await asyncio.sleep(BOUND * 4)
        created = await client.post(
            "/tasks",
            json={
                "operation": {"type": "test", "parameters": {}},
                "condition": {"type": "now", "parameters": {}},
                "dependencies": {},
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["task"]["id"]
        async with asyncio.timeout(WITHIN):
            async for line in lines:
                if line.startswith("data:") and task_id in line:
                    break
        await response.aclose()

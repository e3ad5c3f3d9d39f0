"""What the Tasks API's route class relies on inside FastAPI, pinned: an upgrade of FastAPI that
changes any of it fails here instead of in a request (`onair.api.routing`)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel

from onair.api.routing import TasksRoute


class Body(BaseModel):
    name: str
    count: int = 1


class Answer(BaseModel):
    greeting: str


async def endpoint(body: Body, request: Request) -> Answer:
    return Answer(greeting=f"{body.name} x{body.count} via {request.method}")


def _route(function: Any, status_code: int = 201) -> TasksRoute:
    return TasksRoute("/things", function, methods=["POST"], status_code=status_code)


def test_the_parts_of_an_api_route_it_reads() -> None:
    route = _route(endpoint)
    assert isinstance(route, APIRoute)
    dependant = route.dependant
    for name in ("path_params", "query_params", "header_params", "cookie_params", "dependencies"):
        assert getattr(dependant, name) == [], name
    assert [param.name for param in dependant.body_params] == ["body"]
    assert dependant.request_param_name == "request"
    assert route.body_field is not None
    assert route.body_field.field_info.annotation is Body
    assert route.response_model is Answer
    assert (route.status_code, route.endpoint) == (201, endpoint)


def _request(body: bytes) -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/things", "headers": []}, receive)


async def test_the_fast_handler_validates_the_bytes_and_writes_the_model() -> None:
    handler = _route(endpoint)._json_body()
    response = await handler(_request(b'{"name": "onair", "count": 2}'))
    assert response.status_code == 201
    assert json.loads(bytes(response.body)) == {"greeting": "onair x2 via POST"}
    assert response.media_type == "application/json"

    with pytest.raises(RequestValidationError) as invalid:
        await handler(_request(b'{"count": "many"}'))
    located = {(tuple(e["loc"]), e["type"]) for e in invalid.value.errors()}
    assert located == {(("body", "name"), "missing"), (("body", "count"), "int_parsing")}
    with pytest.raises(RequestValidationError) as empty:
        await handler(_request(b""))
    assert [e["loc"] for e in empty.value.errors()] == [("body",)]


async def with_query(
    body: Body, request: Request, limit: Annotated[int, Query()] = 1
) -> Answer:  # pragma: no cover - never called
    raise AssertionError


async def without_request(body: Body) -> Answer:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize("function", [with_query, without_request])
def test_a_route_with_a_body_of_another_shape_is_refused_when_built(function: Any) -> None:
    with pytest.raises(TypeError, match="/things: a route with a body"):
        _route(function)._json_body()

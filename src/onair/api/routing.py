"""The Tasks API's route class: its routes with a JSON body skip FastAPI's request handler.

A route with a body takes that body (one model) and the `Request`, and returns a model. Its
handler validates the body straight from its bytes and writes the returned model once, where
FastAPI's own would parse the JSON, validate the result, solve the (empty) dependencies,
validate the returned model again and serialize it, with bookkeeping at each step: 30% of a
`POST /tasks`, and what meets the HTTP target (docs/performance.md). Errors are FastAPI's
`RequestValidationError`, located under `body`, answered as any other.

It relies on these parts of FastAPI's `APIRoute`, pinned by `tests/unit/test_routing.py` so
that an upgrade that changes them fails a test instead of a request: `dependant` with
`path_params`, `query_params`, `header_params`, `cookie_params`, `dependencies`,
`body_params` and `request_param_name`; `body_field.field_info.annotation`;
`response_model`, `status_code`, `endpoint`, and `get_route_handler()`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError

from onair.api.deps import caller_of

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class TasksRoute(APIRoute):
    """A route of the Tasks API (see the module docstring). Every route but `/ping` knows its
    caller (`caller_of`, which raises Unauthorized or Forbidden) before anything else happens.
    A route with a body of another shape is refused when the application is built
    (`TypeError`), so the fast path cannot silently fall back to FastAPI's handler."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler() if self.body_field is None else self._json_body()
        if self.path == "/ping":
            return handler

        async def tasks_api(request: Request) -> Response:
            # Who calls is known before anything else is read: a protected Tasks API looks at
            # no body without a valid token.
            await caller_of(request)
            return await handler(request)

        return tasks_api

    def _json_body(self) -> Handler:
        dependant = self.dependant
        others = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.dependencies,
        )
        annotation = self.body_field.field_info.annotation if self.body_field else None
        request_name = dependant.request_param_name
        if any(others) or len(dependant.body_params) != 1 or annotation is None:
            raise TypeError(f"{self.path}: a route with a body takes only it and the Request")
        if request_name is None or self.response_model is None:
            raise TypeError(f"{self.path}: a route with a body takes the Request, returns a model")
        body_name, body = dependant.body_params[0].name, TypeAdapter(annotation)
        answer = TypeAdapter(self.response_model)
        endpoint, status = self.endpoint, self.status_code or 200

        async def json_body(request: Request) -> Response:
            raw = await request.body()
            if not raw:
                missing = {"type": "missing", "loc": ("body",), "msg": "Field required"}
                raise RequestValidationError([missing | {"input": None}])
            try:
                value = body.validate_json(raw)
            except ValidationError as error:
                errors = error.errors(include_url=False)
                raise RequestValidationError(
                    [e | {"loc": ("body", *e["loc"])} for e in errors], body=raw
                ) from None
            result = await endpoint(**{body_name: value, request_name: request})
            content = answer.dump_json(result, by_alias=True)  # as FastAPI writes models
            return Response(content, status, media_type="application/json")

        return json_body

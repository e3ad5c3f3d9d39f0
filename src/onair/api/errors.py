"""Every error as an HTTP answer, mapped once, in each surface's own shape.

The Tasks API answers in the reference's shape, `{"status_code", "detail", "extra"}` (contract
§1.1), with 400 for bad input; the user API (`/api/v1`) in FastAPI's, `{"detail": ...}`, with
422 and field paths. Handlers are registered per domain base class and found along the
exception's MRO, so a new subclass needs no new handler. Routes never catch, and authentication
raises `Unauthorized` / `Forbidden` like any other domain error. Answers given before routing
(the gate's refusals, `onair.api.middleware`) come from `error_response` in the same shapes,
and input refused while it is read (`Refused`: NaN in a JSON body, a NUL character) from
`refusal`, shaped as the surface's own validation errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import Enum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from onair.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidParameters,
    NotFound,
    OnairError,
    Unauthorized,
    UnknownDependency,
)

log = logging.getLogger("onair.api")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Shape(Enum):
    """Which surface's error shape an application answers in."""

    REFERENCE = "reference"
    FASTAPI = "fastapi"


def error_response(
    shape: Shape,
    status: int,
    detail: str | None = None,
    extra: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in `shape`: `{"status_code", "detail", "extra"?}` or `{"detail"}`."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any]
    if shape is Shape.REFERENCE:
        body = {"status_code": status, "detail": detail or phrase}
        if extra is not None:
            body["extra"] = extra
    else:
        body = {"detail": extra if extra is not None and detail is None else detail or phrase}
    return JSONResponse(body, status_code=status, headers=headers)


NUL_IN_TEXT = "NUL characters (\\u0000) are not accepted in text."
"""Why text holding a NUL character is refused, wherever it comes from."""

Location = tuple[str | int, ...]
"""Where a refused value is, as FastAPI locates validation errors: `("body", "name")`,
`("query", "user_id")`."""


class Refused(HTTPException):
    """Input refused as it is read, before a route validates it (`onair.api.middleware`):
    `problems` are (location, message) pairs. An `HTTPException`, so that FastAPI's own body
    reading lets it through to the handler rather than answering its generic 400."""

    def __init__(self, problems: Sequence[tuple[Location, str]]) -> None:
        super().__init__(400)
        self.problems = tuple(problems)


def refusal(
    shape: Shape, method: str, path: str, problems: Sequence[tuple[Location, str]]
) -> JSONResponse:
    """`problems` as the surface answers its validation errors: 400 with `{message, key}` on
    the Tasks API, 422 with `{type, loc, msg}` on the user API."""
    if shape is Shape.REFERENCE:
        extra = [
            {"message": message} | ({"key": ".".join(map(str, loc[1:]))} if loc[1:] else {})
            for loc, message in problems
        ]
        return error_response(shape, 400, f"Validation failed for {method} {path}", extra)
    detail = [{"type": "value_error", "loc": list(loc), "msg": msg} for loc, msg in problems]
    return error_response(shape, 422, extra=detail)


def shape_of(path: str) -> Shape:
    """The shape of the surface that serves `path`."""
    return Shape.FASTAPI if path == "/api/v1" or path.startswith("/api/v1/") else Shape.REFERENCE


def _problems(error: InvalidInput) -> list[dict[str, Any]]:
    return [p.as_json() for p in error.problems]


def _fastapi_problems(error: InvalidInput) -> list[dict[str, Any]]:
    problems = [(p.key, p.message) for p in error.problems] or [(None, str(error))]
    return [
        {"type": "value_error", "loc": ["body", *(key.split(".") if key else [])], "msg": message}
        for key, message in problems
    ]


def install_errors(app: FastAPI, shape: Shape) -> None:
    """Make `app` answer every error in `shape`."""
    reference = shape is Shape.REFERENCE

    def answer(
        status: int,
        detail: str | None = None,
        extra: Any = None,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        return error_response(shape, status, detail, extra, headers)

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors: Sequence[Any] = exc.errors()
        if not reference:
            return answer(422, extra=list(_jsonable(errors)))
        if any(e["loc"] and e["loc"][0] == "path" for e in errors):
            return answer(404)  # a malformed id is a route that does not exist
        for e in errors:
            if e.get("type") == "json_invalid":
                reason = (e.get("ctx") or {}).get("error", "invalid JSON")
                return answer(400, f"JSON is malformed: {reason}")
        extra = []
        for e in errors:
            key = ".".join(str(part) for part in e["loc"][1:])
            extra.append({"message": e["msg"]} | ({"key": key} if key else {}))
        return answer(400, f"Validation failed for {request.method} {request.url.path}", extra)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if not reference:
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        phrase = HTTPStatus(exc.status_code).phrase
        detail = None if exc.detail == phrase else str(exc.detail)
        return answer(exc.status_code, detail, headers=dict(exc.headers or {}))

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return refusal(shape, request.method, request.url.path, exc.problems)

    async def unauthorized(request: Request, exc: Exception) -> JSONResponse:
        return answer(401, str(exc), headers=_CHALLENGE)

    async def forbidden(request: Request, exc: Exception) -> JSONResponse:
        return answer(403, str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return answer(404, extra=str(exc)) if reference else answer(404, str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidInput)
        if not reference:
            return answer(422, extra=_fastapi_problems(exc))
        if isinstance(exc, InvalidParameters):
            detail = f"Validation failed for {request.method} {request.url.path}"
            return answer(400, detail, _problems(exc))
        return answer(400, extra=str(exc))

    async def unknown_dependency(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UnknownDependency)
        if not reference:
            return answer(422, extra=_fastapi_problems(exc))
        return answer(422, extra=_problems(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return answer(409, extra=str(exc)) if reference else answer(409, str(exc))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return answer(500)

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(Unauthorized, unauthorized)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(UnknownDependency, unknown_dependency)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(OnairError, unexpected)
    app.add_exception_handler(Exception, unexpected)


def _jsonable(errors: Sequence[Any]) -> Sequence[Any]:
    """Pydantic's errors as FastAPI answers them (its `ctx` may hold exceptions)."""
    from fastapi.encoders import jsonable_encoder

    encoded: Sequence[Any] = jsonable_encoder(errors)
    return encoded

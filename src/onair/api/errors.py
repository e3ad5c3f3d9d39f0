"""Domain errors and request errors as HTTP answers, mapped once for each surface.

The Tasks API answers in the reference's error shape, `{"status_code", "detail", "extra"}`
(contract §1.1); handlers are found along the exception's MRO, so a new subclass of a domain
error needs no new handler. Routes never catch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from onair.errors import (
    Conflict,
    InvalidInput,
    InvalidParameters,
    NotFound,
    OnairError,
    UnknownDependency,
)

log = logging.getLogger("onair.api")


def reference_error(status: int, detail: str | None = None, extra: Any = None) -> JSONResponse:
    """An error in the reference's shape; `extra` is left out when there is none."""
    body: dict[str, Any] = {"status_code": status, "detail": detail or HTTPStatus(status).phrase}
    if extra is not None:
        body["extra"] = extra
    return JSONResponse(body, status_code=status)


def _problems(error: InvalidInput) -> list[dict[str, Any]]:
    return [p.as_json() for p in error.problems]


def install_reference_errors(app: FastAPI) -> None:
    """Make `app` answer every error as the reference's Tasks API does (400 for bad input)."""

    async def validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors: Sequence[Any] = exc.errors()
        if any(e["loc"] and e["loc"][0] == "path" for e in errors):
            return reference_error(404)  # a malformed id is a route that does not exist
        for e in errors:
            if e.get("type") == "json_invalid":
                reason = (e.get("ctx") or {}).get("error", "invalid JSON")
                return reference_error(400, f"JSON is malformed: {reason}")
        extra = []
        for e in errors:
            key = ".".join(str(part) for part in e["loc"][1:])
            extra.append({"message": e["msg"]} | ({"key": key} if key else {}))
        return reference_error(
            400, f"Validation failed for {request.method} {request.url.path}", extra
        )

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        response = reference_error(
            exc.status_code,
            None if exc.detail == HTTPStatus(exc.status_code).phrase else exc.detail,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return reference_error(404, extra=str(exc))

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidInput)
        if isinstance(exc, InvalidParameters):
            detail = f"Validation failed for {request.method} {request.url.path}"
            return reference_error(400, detail, _problems(exc))
        return reference_error(400, extra=str(exc))

    async def unknown_dependency(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UnknownDependency)
        return reference_error(422, extra=_problems(exc))

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return reference_error(409, extra=str(exc))

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return reference_error(500)

    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(InvalidInput, invalid)
    app.add_exception_handler(UnknownDependency, unknown_dependency)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(OnairError, unexpected)
    app.add_exception_handler(Exception, unexpected)

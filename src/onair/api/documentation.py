"""The documentation pages of both surfaces, served by the node itself, and the Tasks API's
OpenAPI as the routes really answer.

Swagger UI and ReDoc come from `fastapi-offline`, which ships their files in its wheel and
serves them from the application (`/docs-static/...`, `/api/v1/docs-static/...`): `/docs`,
`/redoc`, `/api/v1/docs` and `/api/v1/redoc` work on a machine without internet, where
FastAPI's own pages (loaded from a CDN) are blank.

FastAPI declares a 422 with its own error shape for every route that validates input; the Tasks
API answers 400 in the reference's shape instead (`onair.api.errors`), and 404, 409, 413, 415
and 422 where they apply. `tasks_openapi` rewrites each Tasks API operation's responses from
what the route takes (a path id, a query, a body) and the few answers particular to one route,
all in the `ReferenceError` shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

STATIC = "/docs-static"
"""Where each application serves the pages' scripts and styles."""


def application(**options: Any) -> FastAPI:
    """A FastAPI application whose `/docs` and `/redoc` load nothing from other hosts."""
    return FastAPIOffline(static_url=STATIC, **options)


PAGES = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", STATIC})
"""The documentation routes (moved behind the API, `onair.api._documentation_last`)."""


class Problem(BaseModel):
    message: str
    key: str | None = Field(None, description="The field, as a dotted path (none: the body).")


class ReferenceError(BaseModel):
    """Every error of the Tasks API, in the reference's shape (contracts §1.1)."""

    status_code: int
    detail: str = Field(description="The status phrase, or what went wrong.")
    extra: list[Problem] | str | None = Field(
        None, description="The problems of a refused request, or the message of the refusal."
    )


_WHY = {
    "400": "Bad input: `extra` lists the fields and their problems (or says what is wrong).",
    "401": "No valid admin token while the Tasks API is protected.",
    "403": "A token without the admin role while the Tasks API is protected.",
    "404": "No such task (`extra`: `Task not found: <id>.`), or a malformed id.",
    "409": "The task has already finished (cancel), or its run would take an output another "
    "task holds (schedule).",
    "413": "The body is larger than `server.max_body_size`.",
    "415": "The body is not `Content-Type: application/json`.",
    "422": "A dependency names no task.",
}

_OWN = {
    ("post", "/tasks"): ("409", "422"),
    ("delete", "/tasks/{id}"): ("409",),
}
"""Answers particular to one route, beyond those of what it takes."""

_OPEN = frozenset({"/ping", "/metrics"})
"""Routes that never ask for a token."""


def tasks_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """`app.openapi`, with the Tasks API's real error answers declared (module docstring)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = FastAPI.openapi(app)  # FastAPI's, cached on `app`, rewritten in place
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["ReferenceError"] = ReferenceError.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components["Problem"] = components["ReferenceError"].pop("$defs")["Problem"]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                _declare(path, method, operation)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        return schema

    return openapi


def _declare(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)
    parameters = operation.get("parameters", [])
    codes: set[str] = set(_OWN.get((method, path), ()))
    if any(p.get("in") == "path" for p in parameters):
        codes.add("404")
    if any(p.get("in") == "query" for p in parameters):
        codes.add("400")
    if "requestBody" in operation:
        codes |= {"400", "413", "415"}
    if path not in _OPEN:
        codes |= {"401", "403"}
    for code in sorted(codes):
        responses[code] = {
            "description": _WHY[code],
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ReferenceError"}}
            },
        }

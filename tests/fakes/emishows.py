"""A fake emishows (radio-aktywne/beaver @ a01385f), from contracts/emischeduler.md §2.1.

State is a set of events, each with its instances given explicitly (no recurrence expansion):
the fake is about the wire, not about iCalendar. Times are naive wall time in the event's zone,
as on the wire.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Fake, error, invalid, utcnow

DEFAULT_LIMIT = 10


@dataclass
class FakeEvent:
    id: UUID
    type: str
    show_id: UUID
    start: datetime
    end: datetime
    timezone: str
    instances: list[tuple[datetime, datetime]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "showId": str(self.show_id),
            "show": None,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "timezone": self.timezone,
            "recurrence": None,
        }

    def utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)


class WhereError(ValueError):
    pass


def _string_filter(value: Any, actual: str) -> bool:
    """A Prisma `StringFilter` (or a plain string meaning `equals`)."""
    if isinstance(value, str):
        return actual == value
    if not isinstance(value, dict):
        raise WhereError(f"Invalid filter: {value!r}")
    for op, operand in value.items():
        if op == "equals":
            ok = actual == operand
        elif op == "in":
            ok = actual in operand
        elif op in ("notIn", "not_in"):
            ok = actual not in operand
        elif op == "not":
            ok = not _string_filter(operand, actual)
        else:
            raise WhereError(f"Unsupported filter operation: {op}")
        if not ok:
            return False
    return True


def matches(where: Any, event: FakeEvent) -> bool:
    """Prisma `EventWhereInput`, both `or`/`OR` spellings (camel alias + populate_by_name)."""
    if not isinstance(where, dict):
        raise WhereError("Input should be a valid dictionary")
    fields = {"id": str(event.id), "type": event.type, "showId": str(event.show_id)}
    for key, value in where.items():
        if key in ("show_id",):
            key = "showId"
        if key in fields:
            if not _string_filter(value, fields[key]):
                return False
        elif key in ("or", "OR"):
            if not isinstance(value, list):
                raise WhereError("OR should be a list")
            if not any(matches(w, event) for w in value):
                return False
        elif key in ("and", "AND"):
            for w in value if isinstance(value, list) else [value]:
                if not matches(w, event):
                    return False
        elif key in ("not", "NOT"):
            for w in value if isinstance(value, list) else [value]:
                if matches(w, event):
                    return False
        else:
            raise WhereError(f"Unsupported where key: {key}")
    return True


class FakeEmishows(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.events: dict[UUID, FakeEvent] = {}

    def add_event(
        self,
        start: datetime,
        end: datetime,
        *,
        type: str = "replay",
        show_id: UUID | None = None,
        timezone: str = "Europe/Warsaw",
        instances: Sequence[tuple[datetime, datetime]] | None = None,
        id: UUID | None = None,
    ) -> FakeEvent:
        """An event; its instances default to the one from `start` to `end` (naive local)."""
        event = FakeEvent(
            id=id or uuid.uuid4(),
            type=type,
            show_id=show_id or uuid.uuid4(),
            start=start,
            end=end,
            timezone=timezone,
            instances=[(s, e) for s, e in instances] if instances else [(start, end)],
        )
        with self.lock:
            self.events[event.id] = event
        self.changed()
        return event

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/events", self.list_events, methods=["GET"]),
            Route("/events/{id}", self.get_event, methods=["GET"]),
            Route("/schedule", self.schedule, methods=["GET"]),
            Route("/ping", self.ping, methods=["GET", "HEAD"]),
        ]

    async def ping(self, request: Request) -> Response:
        return Response(status_code=204)

    async def get_event(self, request: Request) -> Response:
        try:
            event_id = UUID(request.path_params["id"])
        except ValueError:
            return error(404)
        with self.lock:
            event = self.events.get(event_id)
        if event is None:
            return error(404, f"Event not found: {event_id}.")
        return JSONResponse(event.wire())

    def _paging(self, request: Request) -> tuple[int, int, Any] | JSONResponse:
        params = request.query_params
        try:
            offset = int(params.get("offset", "0"))
            limit = int(params.get("limit", str(DEFAULT_LIMIT)))
        except ValueError:
            return invalid(request, "offset", "Input should be a valid integer")
        where: Any = None
        if "where" in params:
            try:
                where = json.loads(params["where"])
            except ValueError:
                return invalid(request, "where", "Invalid JSON")
        return offset, limit, where

    def _selected(self, request: Request, where: Any) -> list[FakeEvent] | JSONResponse:
        with self.lock:
            events = list(self.events.values())
        try:
            return [e for e in events if where is None or matches(where, e)]
        except WhereError as problem:
            return invalid(request, "where", str(problem))

    async def list_events(self, request: Request) -> Response:
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        offset, limit, where = paging
        events = self._selected(request, where)
        if isinstance(events, Response):
            return events
        return JSONResponse(
            {
                "count": len(events),
                "limit": limit,
                "offset": offset,
                "events": [e.wire() for e in events[offset : offset + limit]],
            }
        )

    async def schedule(self, request: Request) -> Response:
        """Events with instances overlapping `[start, end)` (naive UTC); `count` counts events."""
        paging = self._paging(request)
        if isinstance(paging, Response):
            return paging
        offset, limit, where = paging
        bounds = []
        for key in ("start", "end"):
            raw = request.query_params.get(key)
            if raw is None:
                bounds.append(utcnow())
                continue
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                return invalid(request, key, "Input should be a valid datetime")
            if value.tzinfo is not None:
                return invalid(request, key, "Input should not have timezone info")
            bounds.append(value.replace(tzinfo=UTC))
        start, end = bounds
        events = self._selected(request, where)
        if isinstance(events, Response):
            return events
        schedules = []
        for event in events:
            instances = [
                {"start": s.isoformat(), "end": e.isoformat()}
                for s, e in event.instances
                if event.utc(s) < end and event.utc(e) > start
            ]
            if instances:
                schedules.append({"event": event.wire(), "instances": instances})
        return JSONResponse(
            {
                "count": len(schedules),
                "limit": limit,
                "offset": offset,
                "schedules": schedules[offset : offset + limit],
            }
        )

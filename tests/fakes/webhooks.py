"""A webhook receiver for the alert tests: it keeps every POST (headers and body) and answers
204, or whatever fault the test injected."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tests.fakes.server import Fake


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeReceiver(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Received] = []

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/hook", self.hook, methods=["POST"])]

    async def hook(self, request: Request) -> Response:
        received = Received(dict(request.headers), await request.body())
        with self.lock:
            self.received.append(received)
        self.changed()
        return Response(status_code=204)

    def deliveries(self) -> list[Received]:
        with self.lock:
            return list(self.received)

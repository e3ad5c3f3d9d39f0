"""This node's recent events, numbered for Server-Sent Events (`GET /events`): ids increase on
this node and mean nothing on another one; a client that reconnects to the same node with
`Last-Event-ID` first gets what it missed from the history kept here (the last
`events.history`, at most `events.history_size` events), then the live stream. After a restart
the history is empty and ids start again at 1. Other nodes' events are kept only while
someone reads the stream here or did within `events.history`: a node nobody watches drops
them unread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from onair.config import EventsSettings
from onair.engine.core import Engine
from onair.engine.events import Event


@dataclass(frozen=True)
class Numbered:
    id: int
    kept: float
    """`time.monotonic()` when it was kept, to forget it after `history`."""
    event: Event

    def sse(self) -> str:
        return f"id: {self.id}\ndata: {json.dumps(self.event.as_json())}\n\n"


class EventLog:
    """Numbers this node's view of the engine's events (its own and, on PostgreSQL, the other
    nodes') and keeps the recent ones. Readers wait on `changed`, a future replaced at every
    event, so a slow reader never blocks the engine and costs no memory of its own."""

    def __init__(self, engine: Engine, settings: EventsSettings) -> None:
        self.settings = settings
        self._history: deque[Numbered] = deque(maxlen=settings.history_size)
        self._last = 0
        self._changed: asyncio.Event | None = None
        self._readers = 0
        self._left = -math.inf
        engine.events.subscribe(self.keep, remote=self.watched)

    @property
    def last(self) -> int:
        return self._last

    def keep(self, event: Event) -> None:
        self._last += 1
        now = time.monotonic()
        self._history.append(Numbered(self._last, now, event))
        horizon = now - self.settings.history.total_seconds()
        while self._history and self._history[0].kept < horizon:
            self._history.popleft()
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def watched(self) -> bool:
        """Whether other nodes' events are worth keeping: someone follows this node's stream, or
        followed it within `history` and may come back for what it missed. Until then the
        node drops them unread (`Events.subscribe`)."""
        history = self.settings.history.total_seconds()
        return self._readers > 0 or time.monotonic() - self._left < history

    def since(self, last: int) -> list[Numbered]:
        """The kept events after id `last`, oldest first."""
        if last > self._last:
            last = 0  # an id from before a restart of this node: send all there is
        horizon = time.monotonic() - self.settings.history.total_seconds()
        return [n for n in self._history if n.id > last and n.kept >= horizon]

    def changed(self) -> asyncio.Event:
        """Set at the next event."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    async def follow(self, last: int) -> AsyncIterator[Numbered | None]:
        """The events after id `last`, then each new one, forever; None when nothing has
        happened for `keepalive` (time for a keep-alive comment)."""
        keepalive = self.settings.keepalive.total_seconds()
        while True:
            changed = self.changed()
            for numbered in self.since(last):
                last = numbered.id
                yield numbered
            try:
                async with asyncio.timeout(keepalive):
                    await changed.wait()
            except TimeoutError:
                yield None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A reader of the stream, from before its first byte: other nodes' events are kept
        from then on (`watched`)."""
        self._readers += 1
        try:
            yield
        finally:
            self._readers -= 1
            self._left = time.monotonic()

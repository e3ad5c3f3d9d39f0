"""Cleaning strategies: which finished tasks `POST /tasks/clean` removes.

Only finished tasks (cancelled, failed, completed) that no task depends on are ever removed;
a strategy only narrows that by age.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from onair.engine.conditions import validate
from onair.errors import UnknownCleaningStrategy
from onair.timeutil import Clock, next_tick

log = logging.getLogger("onair.cleaner")


MAX_DELTA = timedelta(days=36_525)
"""The longest `delta` of the `timedelta` strategy, 100 years: nothing onair ran finished
longer ago, and a cutoff beyond the calendar's range would fail (a negative delta, which
would put the cutoff in the future and remove every finished task, is refused as well)."""


class Strategy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    type_name: ClassVar[str]

    def cutoff(self, now: datetime) -> datetime | None:
        """Remove tasks finished strictly before this instant (None: whenever they finished)."""
        return None


class All(Strategy):
    type_name: ClassVar[str] = "all"


class Timedelta(Strategy):
    """Tasks that finished more than `delta` ago."""

    type_name: ClassVar[str] = "timedelta"
    delta: timedelta = Field(
        ge=timedelta(0),
        le=MAX_DELTA,
        description="ISO 8601 duration (`PT1H`) or seconds, from 0 to 100 years.",
    )

    def cutoff(self, now: datetime) -> datetime | None:
        return now - self.delta


STRATEGIES: dict[str, type[Strategy]] = {s.type_name: s for s in (All, Timedelta)}


def parse_strategy(type_: str, parameters: Mapping[str, Any]) -> Strategy:
    """Raises: UnknownCleaningStrategy, InvalidParameters (keyed `strategy.parameters.*`)."""
    model = STRATEGIES.get(type_)
    if model is None:
        raise UnknownCleaningStrategy(type_)
    return validate(model, dict(parameters), "strategy.parameters")


class Cleaner:
    """Applies the retention at every `reference + k * interval`: finished tasks and run
    history older than `retention` go. Unlike the reference's daily `all`, recent history
    stays visible; a failed cycle is logged and the next one still happens."""

    def __init__(
        self,
        expire: Callable[[datetime], Awaitable[object]],
        clock: Clock,
        reference: datetime,
        interval: timedelta,
        retention: timedelta,
    ) -> None:
        self._expire = expire
        self._retention = retention
        self._clock = clock
        self._reference = reference
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Cleaner:
        self._task = asyncio.create_task(self._loop(), name="onair-cleaner")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            now = self._clock.now()
            tick = next_tick(self._reference, self._interval, now)
            await asyncio.sleep(self._clock.real((tick - now).total_seconds()))
            try:
                await self._expire(self._clock.now() - self._retention)
            except Exception:
                log.exception("cleaning finished tasks failed; trying again next time")

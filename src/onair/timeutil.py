"""Instants and zones. Every instant onair stores or compares is an aware UTC datetime."""

from __future__ import annotations

import asyncio
import gc
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, PlainSerializer
from pydantic_core import PydanticCustomError


class Clock(Protocol):
    """The one source of "now". Injected everywhere so calendar logic can be tested as pure
    functions with a fixed instant, and the engine run in compressed time
    (`CompressedClock`): whatever waits for an instant or a span of clock time sleeps
    `real(seconds)` real seconds, never the clock's seconds themselves."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    def real(self, seconds: float) -> float:
        """How many real seconds `seconds` of this clock's time last: what to sleep or time
        out for. The same for a clock that keeps real time (the default, for fakes that
        subclass `Clock` and only fix `now`)."""
        return seconds


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real(self, seconds: float) -> float:
        return seconds


class CompressedClock:
    """A clock that starts at `start` and runs `factor` times faster than real time (by the
    monotonic clock): a simulated week passes in seconds, for tests of what the engine runs
    over days, DST changes included. Every sleep on it lasts `1 / factor` as long."""

    def __init__(self, start: datetime, factor: float) -> None:
        if factor <= 0:
            raise ValueError(f"factor must be positive, not {factor}")
        self.start = as_utc(start)
        self.factor = factor
        self._origin = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self._origin) * self.factor)

    def real(self, seconds: float) -> float:
        return seconds / self.factor


def as_utc(value: datetime, zone: ZoneInfo | None = None) -> datetime:
    """An aware UTC instant: a naive `value` is wall time in `zone` (UTC when None)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or UTC)
    return value.astimezone(UTC)


_UNITS = (
    ("year", 365 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
    ("second", 1),
)


def human_duration(delta: timedelta) -> str:
    """A duration as people say it: `50 ms`, `1.5 seconds`, `3 minutes`, `2 hours 5 minutes`,
    `17 years 282 days` (the two largest units, a year being 365 days); sign dropped."""
    seconds = abs(delta.total_seconds())
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        text = f"{seconds:.3f}".rstrip("0").rstrip(".")
        return f"{text} second{'' if text == '1' else 's'}"
    words: list[str] = []
    rest = int(seconds)
    for name, size in _UNITS:
        count, rest = divmod(rest, size)
        if count or words:
            if count:
                words.append(f"{count} {name}{'' if count == 1 else 's'}")
            if len(words) == 2 or (words and not count):
                break
    return " ".join(words)


def naive_utc(value: datetime) -> datetime:
    """The reference's wire format: naive, in UTC."""
    return value.astimezone(UTC).replace(tzinfo=None)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`.

    Raises:
        ValueError: no such zone (the message names it).
    """
    if name not in _zone_names():
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/Warsaw'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}") from error


def _known_zone(name: str) -> str:
    try:
        zone(name)
    except ValueError as error:
        raise PydanticCustomError("timezone", str(error)) from None
    return name


UTCInstant = Annotated[
    datetime,
    PlainSerializer(lambda value: as_utc(value).isoformat(), return_type=str),
]
"""An aware instant written in UTC with its offset: `2024-01-01T15:00:00+00:00`."""

ZoneName = Annotated[str, AfterValidator(_known_zone)]
"""A field holding an IANA zone name; validation names the unknown zone."""

_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def next_tick(reference: datetime, interval: timedelta, now: datetime) -> datetime:
    """The first instant `reference + k * interval` (k an integer) strictly after `now`.
    A naive `reference` is UTC."""
    reference = as_utc(reference)
    k = math.floor((now - reference) / interval) + 1
    return reference + k * interval


SLACK = 1 / 500
"""The share of a sleep that is not trusted: Linux lets `epoll_wait` return up to 0.1% of its
timeout late (up to 100 ms; `select_estimate_accuracy`), which is 3 ms on a 3 s sleep."""
EXACT = 0.01
"""Seconds below which a sleep is slept in full: its slack is then 10 microseconds at most."""


def trusted(delay: float) -> float:
    """How much of a `delay` in seconds to sleep in one go to wake before its end, never
    after: all of a short one, 99.8% of a long one (the rest is slept again)."""
    return delay if delay <= EXACT else delay - delay * SLACK


async def sleep_until(clock: Clock, instant: datetime) -> None:
    """Return at `instant` by `clock`, never before and as close after as the event loop
    allows: a long sleep ends a little early (`trusted`), asyncio may wake up a clock tick
    early, and either way the remainder is slept again."""
    delay = (instant - clock.now()).total_seconds()
    while delay > 0:
        await asyncio.sleep(trusted(clock.real(delay)))
        delay = (instant - clock.now()).total_seconds()


PAUSE_COLLECTION_PAST = 100
"""Waiters of one instant past which garbage collection waits until they have started."""


class Alarms:
    """Waits for instants, one timer per distinct instant however many wait for it.

    When a thousand runs are due at the same instant, a timer each means a thousand wake-ups
    of the event loop's timer queue, one after another, before the last can start; one timer
    that releases them all starts them in one pass. Each waiter has its own future, so that
    cancelling one leaves the others waiting."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._waiters: dict[datetime, list[asyncio.Future[None]]] = {}
        self._timers: set[asyncio.Task[None]] = set()

    async def wait(self, instant: datetime) -> None:
        """Return at `instant` (as `sleep_until`)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.get(instant)
        if waiters is None:
            waiters = self._waiters[instant] = []
            timer = asyncio.create_task(self._ring(instant), name=f"onair-alarm-{instant}")
            self._timers.add(timer)
            timer.add_done_callback(self._timers.discard)
        waiters.append(future)
        await future

    async def _ring(self, instant: datetime) -> None:
        try:
            await sleep_until(self.clock, instant)
        except asyncio.CancelledError:
            for future in self._waiters.pop(instant, []):
                future.cancel()
            raise
        waiters = self._waiters.pop(instant, [])
        pause = len(waiters) > PAUSE_COLLECTION_PAST and gc.isenabled()
        if pause:
            # The pass that starts them allocates as it goes: no collection in the middle of
            # it (with thousands of runs held, one costs milliseconds). It resumes after the
            # last has started: its wake-up is queued before `gc.enable`.
            gc.disable()
        for future in waiters:
            if not future.done():
                future.set_result(None)
        if pause:
            asyncio.get_running_loop().call_soon(gc.enable)

    async def clear_of(self, span: float, patience: float = 0.1) -> None:
        """Return once no instant is due within `span` real seconds, waiting past those that
        are (but no longer than `patience` real seconds in all). Work that holds the event
        loop for about `span`, such as a SQLite transaction, then does not delay them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        while self._waiters:
            upcoming = min(self._waiters)
            ahead = self.clock.real((upcoming - self.clock.now()).total_seconds())
            if ahead > span or loop.time() + ahead > deadline:
                return
            try:
                await self.wait(upcoming)  # released after the waiters before it
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the caller itself is cancelled
                return  # the alarms were closed (`close`): nothing is due any more

    def close(self) -> None:
        """Stop the timers; whoever still waits on them is cancelled."""
        for timer in list(self._timers):
            timer.cancel()

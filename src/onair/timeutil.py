"""Instants and zones. Every instant onair stores or compares is an aware UTC datetime."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError


class Clock(Protocol):
    """The one source of "now". Injected everywhere so calendar logic can be tested as pure
    functions with a fixed instant."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def as_utc(value: datetime, zone: ZoneInfo | None = None) -> datetime:
    """An aware UTC instant: a naive `value` is wall time in `zone` (UTC when None)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or UTC)
    return value.astimezone(UTC)


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


async def sleep_until(clock: Clock, instant: datetime) -> None:
    """Return at `instant` by `clock`, never before: asyncio may wake up to a clock tick early,
    so the remainder is slept again."""
    delay = (instant - clock.now()).total_seconds()
    while delay > 0:
        await asyncio.sleep(delay)
        delay = (instant - clock.now()).total_seconds()

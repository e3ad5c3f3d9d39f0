"""HTTP clients of the broadcast neighbours: emishows, emirecords, emilounge and emistream.

They speak the wire of contracts/emischeduler.md §2 and keep the reference's retry pattern:
a request that gets a non-2xx answer or a transport error is tried 4 times in all, at +0, +1,
+3 and +7 s (`RETRY_DELAYS`, injectable). Unlike the reference, every request has a timeout
(`NeighbourSettings.timeout`), so a silent neighbour fails the run instead of hanging it.

Errors (all `OperationError`s, so a run fails with their message, which names the neighbour):

NeighbourError
├── NeighbourUnreachable     no answer: connection refused, timeout, connection dropped
├── NeighbourRefused         a non-2xx answer after every attempt (`status`, `detail`)
├── UnexpectedAnswer         a 2xx answer whose body is not what the contract says
└── DownloadFailed           a download without the required headers, or of the wrong type

Query values go as the reference sends them: datetimes as naive ISO strings, `where` as compact
JSON, and `limit` never (the servers' default of 10 applies; listings page with `offset`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar
from uuid import UUID

import anyio
import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from onair.broadcast.models import (
    Availability,
    AvailabilityChanged,
    Event,
    EventList,
    OtherStreamEvent,
    Page,
    PrerecordingList,
    Record,
    RecordList,
    Reservation,
    ReserveRequest,
    Schedule,
    ScheduleList,
    StreamEvent,
)
from onair.config import EmistreamSettings, NeighbourSettings
from onair.errors import OperationError
from onair.timeutil import naive_utc

RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)
"""Seconds between the attempts of one request: attempts at +0, +1, +3 and +7 s."""

_logger = logging.getLogger("onair.broadcast")


def _times(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _Manner:
    """How the requests of the current task are made (`_Neighbour.quietly`)."""

    retries: bool = True
    level: int = logging.WARNING


_USUAL = _Manner()  # frozen: safe to share as the default
_MANNER: contextvars.ContextVar[_Manner] = contextvars.ContextVar("manner", default=_USUAL)

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=Page)
T = TypeVar("T")


class NeighbourError(OperationError):
    def __init__(self, neighbour: str, message: str) -> None:
        super().__init__(f"{neighbour} {message}")
        self.neighbour = neighbour


class NeighbourUnreachable(NeighbourError):
    pass


class NeighbourRefused(NeighbourError):
    def __init__(self, neighbour: str, what: str, status: int, detail: str, attempts: int) -> None:
        super().__init__(
            neighbour,
            f"answered {what} with HTTP {status} after {_times(attempts, 'attempt')}: {detail}",
        )
        self.status = status
        self.detail = detail


class UnexpectedAnswer(NeighbourError):
    pass


class DownloadFailed(NeighbourError):
    pass


class _Transient(Exception):
    """One failed attempt that the retry pattern tries again."""

    def __init__(self, reason: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.detail = detail


def _wire(value: Any) -> str:
    """A query value as the reference sends it: JSON with the quotes of strings removed."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str | UUID):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def _utc_bound(value: datetime) -> datetime:
    """A schedule query bound: naive UTC (a naive `value` is taken to be UTC already)."""
    return naive_utc(value) if value.tzinfo is not None else value


def _detail(response: httpx.Response) -> str:
    """The message of an error answer: Litestar's `extra` (or `detail`), else the text."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        for key in ("extra", "detail"):
            if isinstance(body.get(key), str):
                return str(body[key])
    text = response.text.strip()
    return text[:200] if text else "(empty body)"


def _transport(error: httpx.TransportError) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class _Neighbour:
    """One neighbour over HTTP: base URL, per-request timeout, retries, paging and parsing.

    Use as an async context manager, or call `aclose()`; the connection pool lives until then.
    """

    name: ClassVar[str]

    def __init__(
        self, settings: NeighbourSettings, *, retry_delays: Sequence[float] = RETRY_DELAYS
    ) -> None:
        self.timeout = settings.timeout.total_seconds()
        self._delays = tuple(retry_delays)
        self._client = httpx.AsyncClient(
            base_url=settings.http.url, timeout=self.timeout, follow_redirects=True
        )

    @property
    def url(self) -> str:
        return str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @staticmethod
    @contextlib.contextmanager
    def quietly(*, retries: bool = True) -> Iterator[None]:
        """Within the block (in this asyncio task only), failed attempts are logged at DEBUG
        instead of WARNING, and with `retries=False` each request is tried once: for a caller
        that reports failures itself, once, such as the synchronizer while a neighbour stays
        away."""
        token = _MANNER.set(_Manner(retries=retries, level=logging.DEBUG))
        try:
            yield
        finally:
            _MANNER.reset(token)

    async def _retrying(self, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` under the retry pattern (or once, `quietly(retries=False)`); it raises
        `_Transient` for a failed try.

        Raises:
            NeighbourUnreachable: the last try got no answer.
            NeighbourRefused: the last try got a non-2xx answer.
        """
        manner = _MANNER.get()
        delays = self._delays if manner.retries else ()
        attempts = len(delays) + 1
        last: _Transient | None = None
        for number, delay in enumerate((0.0, *delays), start=1):
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                return await attempt()
            except _Transient as failure:
                last = failure
                _logger.log(
                    manner.level,
                    "%s %s, attempt %d of %d: %s",
                    self.name,
                    what,
                    number,
                    attempts,
                    failure,
                )
        assert last is not None
        if last.status is None:
            raise NeighbourUnreachable(
                self.name,
                f"is unreachable: {what} failed {_times(attempts, 'time')}, last: {last.reason}",
            )
        raise NeighbourRefused(self.name, what, last.status, last.detail, attempts)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        answer: Collection[int] = (),
    ) -> httpx.Response:
        """The response to a 2xx or to a status in `answer` (returned at once, not retried)."""
        query = {key: _wire(value) for key, value in (params or {}).items() if value is not None}

        async def attempt() -> httpx.Response:
            try:
                response = await self._client.request(method, path, params=query, json=body)
            except httpx.TransportError as error:
                raise _Transient(_transport(error)) from error
            if response.is_success or response.status_code in answer:
                return response
            detail = _detail(response)
            raise _Transient(f"HTTP {response.status_code}: {detail}", response.status_code, detail)

        return await self._retrying(f"{method} {path}", attempt)

    def _parse(self, model: type[M], response: httpx.Response) -> M:
        what = f"{response.request.method} {response.request.url.path}"
        try:
            return model.model_validate_json(response.content)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors()[:3]
            )
            raise UnexpectedAnswer(
                self.name, f"answered {what} with an unexpected body ({problems})"
            ) from None

    async def _get(self, model: type[M], path: str, params: Mapping[str, Any]) -> M:
        return self._parse(model, await self._request("GET", path, params=params))

    async def _pages(
        self, model: type[P], items: Callable[[P], list[T]], path: str, params: Mapping[str, Any]
    ) -> list[T]:
        """Every item of a listing: pages by `offset` until `offset >= count`, or an empty page
        (the reference loops forever on one)."""
        found: list[T] = []
        offset = 0
        while True:
            page = await self._get(model, path, {**params, "offset": offset})
            batch = items(page)
            found.extend(batch)
            offset += len(batch)
            if not batch or offset >= page.count:
                return found


class Emishows(_Neighbour):
    """Shows, events and their schedule (§2.1)."""

    name: ClassVar[str] = "emishows"

    async def event(self, event_id: UUID) -> Event | None:
        """The event, or None when emishows answers 404 (not retried: it is an answer)."""
        response = await self._request("GET", f"/events/{event_id}", answer=(404,))
        if response.status_code == 404:
            return None
        return self._parse(Event, response)

    async def events(self, where: Mapping[str, Any] | None = None) -> list[Event]:
        """Every event matching the Prisma filter `where`, e.g. `{"id": {"in": [...]}}`."""
        return await self._pages(EventList, lambda p: p.events, "/events", {"where": where})

    async def schedule(
        self, start: datetime, end: datetime, where: Mapping[str, Any] | None = None
    ) -> list[Schedule]:
        """Events with instances overlapping `[start, end)`, with those instances.

        `start` and `end` are UTC: aware, or naive UTC. The instances in the answer are naive
        wall time in each event's zone, and overlap the range rather than start in it.
        """
        params = {"start": _utc_bound(start), "end": _utc_bound(end), "where": where}
        return await self._pages(ScheduleList, lambda p: p.schedules, "/schedule", params)


@dataclass(frozen=True)
class Download:
    """A complete downloaded file: `size` bytes, as announced by `Content-Length`."""

    path: Path
    size: int
    content_type: str
    etag: str
    last_modified: datetime


class _Recordings(_Neighbour):
    """Audio files per event instance, keyed `{event}/{start}` (emirecords, emilounge)."""

    collection: ClassVar[str]
    listing: ClassVar[type[RecordList] | type[PrerecordingList]]

    async def list_recordings(
        self, event: UUID, after: datetime | None = None, before: datetime | None = None
    ) -> list[Record]:
        """The files of `event` with `after < start < before` (both exclusive, naive wall time in
        the event's zone), in the neighbour's order."""
        params = {"after": after, "before": before}
        return await self._pages(self.listing, _listed_items, f"/{self.collection}/{event}", params)

    async def download(self, event: UUID, start: datetime, destination: Path) -> Download:
        """Stream the file of instance `start` (naive, event zone) to `destination`.

        The body goes to `destination` + `.part` and is renamed only once it is complete, so a
        file at `destination` is always whole; a failed download leaves nothing behind.

        Raises:
            DownloadFailed: `Content-Length`, `ETag` or `Last-Modified` is missing or malformed,
                or the content type is not `audio/ogg`.
            NeighbourRefused, NeighbourUnreachable: as for any request; a body shorter than
                `Content-Length` counts as a failed attempt and is tried again.
        """
        path = f"/{self.collection}/{event}/{start.isoformat()}"
        await anyio.Path(destination.parent).mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")

        async def attempt() -> Download:
            try:
                async with self._client.stream(
                    "GET", path, headers={"accept-encoding": "identity"}
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        detail = _detail(response)
                        raise _Transient(
                            f"HTTP {response.status_code}: {detail}", response.status_code, detail
                        )
                    download = self._described(destination, path, response.headers)
                    written = 0
                    async with await anyio.open_file(partial, "wb") as file:
                        async for chunk in response.aiter_bytes():
                            await file.write(chunk)
                            written += len(chunk)
            except httpx.TransportError as error:
                raise _Transient(_transport(error)) from error
            if written != download.size:
                raise _Transient(f"got {written} of {download.size} bytes of {path}")
            await anyio.Path(partial).replace(destination)
            return download

        try:
            return await self._retrying(f"GET {path}", attempt)
        finally:
            await anyio.Path(partial).unlink(missing_ok=True)

    def _described(self, destination: Path, path: str, headers: httpx.Headers) -> Download:
        def required(name: str) -> str:
            value = headers.get(name)
            if not value:
                raise DownloadFailed(self.name, f"sent {path} without a {name} header")
            return str(value)

        length, etag, modified = (
            required("content-length"),
            required("etag"),
            required("last-modified"),
        )
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "audio/ogg":
            raise DownloadFailed(
                self.name, f"sent {path} as {content_type or 'no type'}, expected audio/ogg"
            )
        try:
            size = int(length)
            last_modified = parsedate_to_datetime(modified)
        except (ValueError, TypeError):
            raise DownloadFailed(
                self.name, f"sent {path} with a malformed Content-Length or Last-Modified header"
            ) from None
        if size < 0:
            raise DownloadFailed(self.name, f"sent {path} with Content-Length {size}")
        return Download(destination, size, content_type, etag, last_modified)


def _listed_items(page: RecordList | PrerecordingList) -> list[Record]:
    return page.records if isinstance(page, RecordList) else page.prerecordings


class Emirecords(_Recordings):
    """Recordings of live events (§2.2)."""

    name: ClassVar[str] = "emirecords"
    collection: ClassVar[str] = "records"
    listing: ClassVar[type[RecordList]] = RecordList


class Emilounge(_Recordings):
    """Prerecordings of prerecorded events (§2.3)."""

    name: ClassVar[str] = "emilounge"
    collection: ClassVar[str] = "prerecordings"
    listing: ClassVar[type[PrerecordingList]] = PrerecordingList


@dataclass(frozen=True)
class Busy:
    """emistream's slot is held by another stream (HTTP 409); `detail` is its message."""

    detail: str


_STREAM_EVENT: TypeAdapter[AvailabilityChanged | OtherStreamEvent] = TypeAdapter(StreamEvent)


class Subscription:
    """An open `GET /sse` of emistream: `data: {json}` lines, one per event."""

    def __init__(self, name: str, response: httpx.Response) -> None:
        self._name = name
        self._lines = response.aiter_lines()

    async def availability(self) -> Availability:
        """The availability of the next `availability-changed` event. Other event types and
        non-`data` lines are skipped. Waits as long as it takes: bound it with
        `asyncio.timeout`.

        Raises:
            UnexpectedAnswer: a `data` line that is not an event of the contract.
            NeighbourUnreachable: the stream ended or broke.
        """
        try:
            async for line in self._lines:
                if not line.startswith("data:"):
                    continue
                payload = line.removeprefix("data:").strip()
                try:
                    event = _STREAM_EVENT.validate_json(payload)
                except ValidationError:
                    raise UnexpectedAnswer(
                        self._name, f"sent an unexpected event on /sse: {payload[:200]}"
                    ) from None
                if isinstance(event, AvailabilityChanged):
                    return event.data.availability
        except httpx.TransportError as error:
            raise NeighbourUnreachable(
                self._name, f"broke its event stream: {_transport(error)}"
            ) from error
        raise NeighbourUnreachable(self._name, "closed its event stream")

    async def aclose(self) -> None:
        closer = getattr(self._lines, "aclose", None)
        if closer is not None:
            await closer()


class Emistream(_Neighbour):
    """The streaming gate (§2.4): reserve the single slot, learn when it frees."""

    name: ClassVar[str] = "emistream"

    def __init__(
        self, settings: EmistreamSettings, *, retry_delays: Sequence[float] = RETRY_DELAYS
    ) -> None:
        super().__init__(settings, retry_delays=retry_delays)
        self.srt = settings.srt

    async def reserve(self, event: UUID) -> Reservation | Busy:
        """Reserve the slot for `event` (ogg, not recorded). A 409 is tried again like any
        failure, as the reference does, and returned as `Busy` if it persists.

        Raises:
            NeighbourRefused: any other non-2xx answer (e.g. 422: no instance of the event
                near now).
        """
        body = ReserveRequest(event=event).model_dump(mode="json", by_alias=True)
        try:
            response = await self._request("POST", "/reserve", body=body)
        except NeighbourRefused as refused:
            if refused.status == 409:
                return Busy(refused.detail)
            raise
        return self._parse(Reservation, response)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """An open event stream. Opened before a reservation attempt so that a slot freed
        during the attempt is not missed: its event waits in the stream until read."""
        stream_timeout = httpx.Timeout(self.timeout, read=None)

        async def attempt() -> httpx.Response:
            request = self._client.build_request("GET", "/sse", timeout=stream_timeout)
            try:
                async with asyncio.timeout(self.timeout):
                    response = await self._client.send(request, stream=True)
            except TimeoutError as error:
                raise _Transient("no answer to GET /sse") from error
            except httpx.TransportError as error:
                raise _Transient(_transport(error)) from error
            if not response.is_success:
                await response.aread()
                await response.aclose()
                detail = _detail(response)
                raise _Transient(
                    f"HTTP {response.status_code}: {detail}", response.status_code, detail
                )
            return response

        response = await self._retrying("GET /sse", attempt)
        subscription = Subscription(self.name, response)
        try:
            yield subscription
        finally:
            try:
                await subscription.aclose()
            finally:
                await response.aclose()

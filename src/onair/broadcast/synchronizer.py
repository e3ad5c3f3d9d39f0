"""The synchronizer: one stream task per upcoming replay or prerecorded broadcast in emishows.

At every `reference + k * interval` (by default every full UTC minute; the first cycle at the
next boundary after start-up, never at once) a cycle compares what emishows plans in
`[now, now + window)` with the stream tasks that are pending or running, and reconciles them
(contracts/emischeduler.md §1.10):

1. *expected*: every instance of a replay or prerecorded event whose start (wall time in the
   event's zone, converted to UTC) is in the window;
2. *existing*: every pending or running `stream` task. One whose parameters do not validate, or
   whose event emishows does not know (or gives an unknown zone), is *invalid*; the others are
   matched by `(params.id, params.start)`, the start compared as naive wall time;
3. the invalid ones are cancelled, then the matched ones whose start is in the window but
   expected no more, then every duplicate of a match; finally a task is added for each expected
   instance that no pending or running task matches, due `lead` before the start.

What differs from the reference, on purpose:

* Matching is by key, so two instances of one event in the window never produce a duplicate
  (the reference reused one `filter` iterator across an event's instances). Duplicates already
  there (from the reference, or an operator) are cancelled, keeping a running one, else the
  oldest.
* When emishows is unreachable or answers an error, nothing at all is changed, and the cycle is
  recorded as failed; the next one tries again. A failed cancel or add is logged and recorded
  in the cycle's `failures`, never swallowed.
* The lead is a setting (`operations.stream.lead`, 15 minutes by default).
* On several nodes, one cycle runs at a time: each takes the store's `exclusive` lock without
  waiting, and a node that does not get it records that it skipped.

Kept from the reference: a stream task that failed or was cancelled while its instance is
still ahead in the window is re-created by the next cycle (its `at` is then past, so it runs at
once and the operation decides whether the broadcast can still be made). It is never
re-created while a pending or running one exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from onair import timeutil
from onair.broadcast.clients import Emishows, NeighbourError
from onair.broadcast.models import Event, Instance, Schedule, StreamParameters
from onair.config import SynchronizerSettings
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status, Task
from onair.errors import OnairError
from onair.store.database import Store
from onair.timeutil import Clock, as_utc, naive_utc, next_tick, sleep_until, zone

log = logging.getLogger("onair.synchronizer")

LOCK = "onair.synchronizer"
"""The name of the store lock that makes cycles on several nodes take turns."""

STREAMED = {"or": [{"type": "replay"}, {"type": "prerecorded"}]}
"""The `where` of the schedule query, as the reference sends it (lowercase `or`)."""

PAGE = 1000
"""Tasks read per page of the engine. Pages are newest first; a task that changes status while
the pages are read may shift the pages, so they are large enough to be read in one go."""

EVENTS_PER_QUERY = 100
"""Event ids per `GET /events` query, to keep its URL short."""

Key = tuple[UUID, datetime]
"""An instance's identity: its event id and its start as naive wall time in the event's zone."""


@dataclass(frozen=True)
class Expected:
    """An instance that should have a stream task; `utc_start` is its start as an aware UTC
    instant."""

    event: Event
    instance: Instance
    utc_start: datetime

    @property
    def key(self) -> Key:
        return (self.event.id, self.instance.start)


@dataclass(frozen=True)
class Cancel:
    task: UUID
    reason: str


@dataclass(frozen=True)
class Plan:
    """What one cycle does: `cancel` in order (invalid, unexpected, duplicates), then `add`.
    `problems` are expected instances that cannot be scheduled (an unknown time zone)."""

    expected: list[Expected]
    cancel: list[Cancel]
    add: list[Expected]
    problems: list[str] = field(default_factory=list)


def stream_parameters(task: Task) -> StreamParameters | None:
    """The task's parameters, or None when they do not validate (the task is invalid)."""
    try:
        return StreamParameters.model_validate(dict(task.operation.parameters))
    except ValidationError:
        return None


def expected_instances(
    schedules: Iterable[Schedule], start: datetime, end: datetime
) -> tuple[list[Expected], list[str]]:
    """The instances of replay and prerecorded events that start in `[start, end)` (aware
    instants), earliest first, each once; and the problems of events that cannot be placed.

    An instance start that occurs twice in an autumn fold is the same naive wall time, so the
    wire cannot tell the two apart: it is one instance, placed at its first occurrence (as the
    stream operation places it).
    """
    found: dict[Key, Expected] = {}
    problems: list[str] = []
    for schedule in schedules:
        event = schedule.event
        if event.type not in ("replay", "prerecorded"):
            continue
        try:
            tz = zone(event.timezone)
        except ValueError as error:
            problems.append(f"event {event.id} cannot be scheduled: {error}")
            continue
        for instance in schedule.instances:
            utc_start = as_utc(instance.start, tz)
            if start <= utc_start < end:
                expected = Expected(event, instance, utc_start)
                found.setdefault(expected.key, expected)
    ordered = sorted(found.values(), key=lambda e: (e.utc_start, str(e.event.id)))
    return ordered, problems


def plan(
    schedules: Iterable[Schedule],
    tasks: Iterable[Task],
    events: Mapping[UUID, Event],
    start: datetime,
    end: datetime,
) -> Plan:
    """Reconcile the schedule of `[start, end)` with the pending and running stream `tasks`.

    `events` are emishows' answer for the tasks' event ids: a task whose event is missing there
    is invalid. Pure: the same inputs give the same plan, and a plan applied, then planned again
    on the result, gives no change.
    """
    expected, problems = expected_instances(schedules, start, end)
    wanted = {e.key: e for e in expected}
    invalid: list[Cancel] = []
    unexpected: list[Cancel] = []
    matched: dict[Key, list[Task]] = defaultdict(list)
    seen: set[UUID] = set()
    for task in sorted(tasks, key=lambda t: (t.created_at, str(t.id))):
        if task.id in seen:
            continue
        seen.add(task.id)
        params = stream_parameters(task)
        if params is None:
            invalid.append(Cancel(task.id, "its parameters are invalid"))
            continue
        event = events.get(params.id)
        if event is None:
            invalid.append(Cancel(task.id, f"emishows has no event {params.id}"))
            continue
        try:
            tz = zone(event.timezone)
        except ValueError as error:
            invalid.append(Cancel(task.id, f"event {event.id} cannot be scheduled: {error}"))
            continue
        if not start <= as_utc(params.start, tz) < end:
            continue  # outside the window: left alone
        key = (params.id, params.start)
        if key in wanted:
            matched[key].append(task)
        else:
            unexpected.append(
                Cancel(task.id, f"event {params.id} no longer plans {params.start.isoformat()}")
            )
    duplicates: list[Cancel] = []
    for group in matched.values():
        keep = next((t for t in group if t.status == Status.RUNNING), group[0])
        duplicates += [
            Cancel(t.id, f"it duplicates task {keep.id}") for t in group if t.id != keep.id
        ]
    add = [e for e in expected if e.key not in matched]
    return Plan(expected, invalid + unexpected + duplicates, add, problems)


def new_task(expected: Expected, lead: timedelta) -> NewTask:
    """The stream task of an instance: `start` as naive wall time in the event's zone, due
    `lead` before the start (naive UTC, as the reference writes it)."""
    return NewTask(
        operation=Spec(
            "stream",
            {"id": str(expected.event.id), "start": expected.instance.start.isoformat()},
        ),
        condition=Spec("at", {"datetime": naive_utc(expected.utc_start - lead).isoformat()}),
        dependencies={},
    )


@dataclass(frozen=True)
class Cycle:
    """What one cycle found and did. `held`: this node held the lock (otherwise it did nothing,
    and `expected` is None). `error`: why the cycle failed as a whole (nothing after the
    failure was done). `failures`: single changes that failed, and instances that could not be
    scheduled."""

    at: datetime
    finished: datetime
    held: bool
    expected: int | None = None
    added: tuple[UUID, ...] = ()
    cancelled: tuple[UUID, ...] = ()
    failures: tuple[str, ...] = ()
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Times as naive UTC, like the rest of the Tasks API."""
        return {
            "at": naive_utc(self.at).isoformat(),
            "finished": naive_utc(self.finished).isoformat(),
            "held": self.held,
            "expected": self.expected,
            "added": [str(i) for i in self.added],
            "cancelled": [str(i) for i in self.cancelled],
            "failures": list(self.failures),
            "error": self.error,
        }


@dataclass
class _Progress:
    expected: int | None = None
    added: list[UUID] = field(default_factory=list)
    cancelled: list[UUID] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Synchronizer:
    """Keeps the stream tasks in sync with emishows (see the module docstring).

    `async with` runs the cycles in the background until the block ends; `cycle(now)` runs one
    at once, which is what tests call. `last` is the latest cycle, kept in memory only;
    `watch` adds a callback that sees every cycle as it ends (the metrics count them).
    """

    def __init__(
        self,
        engine: Engine,
        emishows: Emishows,
        store: Store,
        settings: SynchronizerSettings,
        lead: timedelta,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.emishows = emishows
        self.store = store
        self.settings = settings
        self.lead = lead
        self.clock = clock or engine.clock
        self.last: Cycle | None = None
        self.next: datetime | None = None
        """The instant of the next cycle while the loop runs (None otherwise)."""
        self._task: asyncio.Task[None] | None = None
        self._watchers: list[Callable[[Cycle], None]] = []
        self.away: datetime | None = None
        """Since when emishows has failed every cycle (None: it answered the latest one)."""
        self._hinted = False

    def _neighbour_failed(self, error: str) -> None:
        """Log that emishows became unreachable, once: the first time with the setting that
        turns the synchronizer off (a node without station neighbours does not need it), later
        without; and nothing more (DEBUG) while it stays away."""
        if self.away is not None:
            log.debug("synchronizer: emishows still fails: %s", error)
            return
        self.away = self.clock.now()
        hint = ""
        if not self._hinted:
            self._hinted = True
            hint = (
                " A node without emishows does not need the synchronizer: "
                "ONAIR__SYNCHRONIZER__ENABLED=false turns it off."
            )
        log.warning(
            "synchronizer: emishows failed, stream tasks are not synchronized until it "
            "answers (nothing is changed meanwhile; it is asked once per cycle, quietly): "
            "%s.%s",
            error.rstrip("."),
            hint,
        )

    def _neighbour_answered(self) -> None:
        if self.away is not None:
            gone = timeutil.human_duration(self.clock.now() - self.away)
            log.info("synchronizer: emishows answers again after %s; synchronized", gone)
            self.away = None

    def watch(self, watcher: Callable[[Cycle], None]) -> None:
        """Call `watcher` with every cycle as it ends. It must not block; one that raises is
        logged and the cycle still counts."""
        self._watchers.append(watcher)

    async def __aenter__(self) -> Synchronizer:
        self._task = asyncio.create_task(self._loop(), name="onair-synchronizer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.next = None

    async def _loop(self) -> None:
        while True:
            self.next = next_tick(self.settings.reference, self.settings.interval, self.clock.now())
            await sleep_until(self.clock, self.next)
            await self.cycle(self.clock.now())

    async def cycle(self, now: datetime | None = None) -> Cycle:
        """One synchronization of `[now, now + window)` (`now` aware; default: the clock's).

        Never raises for a failure: a failed cycle is logged, and recorded in the `Cycle` it
        returns (and in `last`).
        """
        now = now or self.clock.now()
        progress = _Progress()
        error: str | None = None
        held = False
        try:
            async with self.store.exclusive(LOCK) as held:
                if held:
                    # Failed attempts are this class's to report (once per state change);
                    # while emishows stays away, each cycle tries once instead of four times.
                    with self.emishows.quietly(retries=self.away is None):
                        await self._synchronize(now, progress)
                    self._neighbour_answered()
                else:
                    log.info("synchronizer: another node holds the lock; skipping this cycle")
        except NeighbourError as failure:
            error = str(failure)
            self._neighbour_failed(error)
        except Exception as failure:  # the loop must survive anything; the error is recorded
            error = f"{type(failure).__name__}: {failure}"
            log.exception("synchronizer: cycle failed unexpectedly")
        cycle = Cycle(
            at=now,
            finished=self.clock.now(),
            held=held,
            expected=progress.expected,
            added=tuple(progress.added),
            cancelled=tuple(progress.cancelled),
            failures=tuple(progress.failures),
            error=error,
        )
        self.last = cycle
        for watcher in self._watchers:
            try:
                watcher(cycle)
            except Exception:
                log.exception("synchronizer: a cycle watcher failed")
        return cycle

    async def _synchronize(self, now: datetime, progress: _Progress) -> None:
        """Read everything first, so that a neighbour failing changes nothing; then act."""
        start, end = now, now + self.settings.window
        schedules = await self.emishows.schedule(start, end, where=STREAMED)
        tasks = await self._stream_tasks()
        events = await self._events({p.id for t in tasks if (p := stream_parameters(t))})
        decided = plan(schedules, tasks, events, start, end)
        progress.expected = len(decided.expected)
        for problem in decided.problems:
            log.warning("synchronizer: %s", problem)
            progress.failures.append(problem)

        for cancel in decided.cancel:
            try:
                await self.engine.cancel(cancel.task)
            except OnairError as failure:
                log.warning("synchronizer: cannot cancel task %s: %s", cancel.task, failure)
                progress.failures.append(f"cancel {cancel.task} ({cancel.reason}): {failure}")
                continue
            log.info("synchronizer: cancelled task %s: %s", cancel.task, cancel.reason)
            progress.cancelled.append(cancel.task)

        for expected in decided.add:
            what = f"event {expected.event.id} at {expected.instance.start.isoformat()}"
            try:
                task = await self.engine.add(new_task(expected, self.lead))
            except OnairError as failure:
                log.warning("synchronizer: cannot add a stream task for %s: %s", what, failure)
                progress.failures.append(f"add {what}: {failure}")
                continue
            log.info("synchronizer: added task %s for %s", task.id, what)
            progress.added.append(task.id)

    async def _stream_tasks(self) -> list[Task]:
        """Every pending or running stream task, each once."""
        found: dict[UUID, Task] = {}
        for status in (Status.RUNNING, Status.PENDING):
            offset = 0
            while True:
                page, total = await self.engine.page(
                    operation="stream", status=status, limit=PAGE, offset=offset
                )
                found.update((task.id, task) for task in page)
                offset += len(page)
                if not page or offset >= total:
                    break
        return list(found.values())

    async def _events(self, ids: Iterable[UUID]) -> dict[UUID, Event]:
        ordered: Sequence[str] = sorted(str(i) for i in ids)
        events: dict[UUID, Event] = {}
        for first in range(0, len(ordered), EVENTS_PER_QUERY):
            chunk = list(ordered[first : first + EVENTS_PER_QUERY])
            for event in await self.emishows.events(where={"id": {"in": chunk}}):
                events[event.id] = event
        return events

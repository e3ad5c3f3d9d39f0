"""The loop of one node: sleep until the earliest due instant, claim, run, record.

There is no fixed poll. The worker asks the store for the earliest due instant and sleeps until
`lookahead` before it (longer when many runs are due at once: the time claiming them takes); a
new or changed task wakes it early (in-process, or through the store's notifications from other
nodes). Claimed runs then wait for their exact due instant, one timer per instant, so a run
starts within a few milliseconds of it. Ends of runs are written in batches by one recorder,
which a row the store refuses cannot stall (see `Worker._record`). A heartbeat extends this
node's lease and recovers the runs of nodes whose lease expired; a node that cannot record run
ends stops heartbeating, so that another node recovers its runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any
from uuid import UUID

from onair.config import EngineSettings
from onair.engine import transitions
from onair.engine.events import Event, Events
from onair.engine.models import Outcome
from onair.engine.registry import Registry, RunContext
from onair.engine.transitions import Claimed, Ended, Rules
from onair.errors import OnairError
from onair.store import queries
from onair.store.database import Connection, Store
from onair.timeutil import Alarms, Clock, trusted

log = logging.getLogger("onair.engine")

INITIAL_CLAIM_COST = 0.0002
"""Seconds it takes to claim one run, until measured on this node."""
LEAD_MARGIN = 2.0
"""Claiming a burst is planned to take this many times its measured cost."""
MAX_LEAD = timedelta(seconds=2)
"""The most the lookahead is lengthened for a burst."""
RECORD_BATCH = 250
"""Run ends written per transaction: on SQLite a transaction holds the event loop, so a long
one would delay the starts due meanwhile."""

STARTS_WRITTEN_AFTER = 1.0
"""Seconds after its start a run still going has its real start written (`_note_starts`).
The claim records the planned start (runs are claimed a little ahead of their instant); a
shorter run's real start is written with its end, in the same transaction, so that the
runs that are over in a moment cost no more writes."""


@dataclass
class _Active:
    claimed: Claimed
    task: asyncio.Task[None] | None = None
    reason: Outcome = Outcome.CANCELLED
    error: str | None = field(default=None)


class Worker:
    """Claims and runs due work for node `node`. Use as `async with Worker(...)`."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        settings: EngineSettings,
        node: str,
        events: Events,
    ) -> None:
        self.store = store
        self.registry = registry
        self.rules = Rules(registry, settings.min_interval)
        self.clock = clock
        self.settings = settings
        self.node = node
        self.events = events
        self._outbox: list[str] = []
        self._sending: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._target: datetime | None = None
        self._lead = settings.lookahead
        self._claim_cost = INITIAL_CLAIM_COST
        self._unplanned = 0.0
        self._alarms = Alarms(clock)
        # Recent durations of a turn of the claim loop and of recording a batch of ends, in
        # seconds: how long each holds the event loop on SQLite, so that they are done
        # between starts.
        self._turn_time = 0.0
        self._record_time = 0.0
        self._active: dict[UUID, _Active] = {}
        self._ended: list[Ended] = []
        self._starts: list[dict[str, Any]] = []
        self._starting: list[tuple[_Active, datetime]] = []  # to announce
        # Runs in order of start, with the loop's time then: their real starts to write.
        self._going: list[tuple[_Active, datetime, float]] = []
        self._ended_ready = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False
        self._recording_fails = False
        self._beat = asyncio.Event()  # a heartbeat now, without waiting for its period
        self._own_events = Event.sent_by(node)

    async def __aenter__(self) -> Worker:
        # What the process holds by now (modules, settings, compiled statements) lives as
        # long as it does: out of the collector's sight, a full collection takes a few
        # milliseconds instead of tens, and a run due during one starts that much late.
        # Garbage is collected first, so that none is kept for good.
        gc.collect()
        gc.freeze()
        now = self.clock.now()
        async with self.store.begin() as conn:
            await queries.add_node(conn, self.node, now, now + self.settings.lease)
        await self.store.listen(self._heard)
        async with self.store.begin() as conn:
            # Runs of nodes that died while this one was down; before the first claim.
            await transitions.recover(conn, self.rules, now, 10_000)
        self._background = [
            asyncio.create_task(self._loop(), name="onair-claim"),
            asyncio.create_task(self._record_loop(), name="onair-record"),
            asyncio.create_task(self._heartbeat_loop(), name="onair-heartbeat"),
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping = True
        self._wake.set()
        await self.store.stop_listening()
        loop, recorder, heartbeat = self._background
        for task in (loop, heartbeat):
            task.cancel()
        await asyncio.gather(loop, heartbeat, return_exceptions=True)
        shutdown = f"Interrupted: node {self.node} shut down while the run was in progress."
        for active in list(self._active.values()):
            self._cancel(active, Outcome.INTERRUPTED, shutdown)
        runs = [a.task for a in self._active.values() if a.task is not None]
        await asyncio.gather(*runs, return_exceptions=True)
        self._alarms.close()
        self._ended_ready.set()
        await recorder
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        async with self.store.begin() as conn:
            await queries.remove_node(conn, self.node)

    # Signals --------------------------------------------------------------------------------

    def due_changed(self, instant: datetime | None = None) -> None:
        """Work became due at `instant` (unknown: None); wake the loop if that is earlier than
        what it sleeps for."""
        if instant is None or self._target is None or instant < self._target:
            self._wake.set()
        elif instant <= self._target + self.settings.lookahead and self._planning(instant):
            # One more run in the burst the loop sleeps for: once they add up to a few
            # milliseconds of claiming, wake it to lengthen its lead.
            self._unplanned += self._claim_cost * LEAD_MARGIN
            if self._unplanned > 0.005:
                self._wake.set()

    def interrupt(self, task_id: UUID) -> None:
        """Stop the runs of `task_id` that this node holds (the task was cancelled)."""
        for active in list(self._active.values()):
            if active.claimed.task_id == task_id:
                self._cancel(active, Outcome.CANCELLED, None)

    def stop_run(self, run_id: UUID, error: str) -> None:
        """Stop one run, if this node holds it (it was replaced by a later one)."""
        active = self._active.get(run_id)
        if active is not None:
            self._cancel(active, Outcome.CANCELLED, error)

    def _heard(self, payload: str) -> None:
        kind, _, value = payload.partition(" ")
        if kind == "cancel":
            self.interrupt(UUID(value))
        elif kind == "stop":
            self.stop_run(UUID(value), "Replaced by a later run.")
        elif kind == "event":
            if not value.startswith(self._own_events) and self.events.remote_wanted():
                self.events.publish(Event.from_payload(value))
        elif kind == "due":
            self.due_changed(datetime.fromisoformat(value) if value else None)

    @property
    def running(self) -> int:
        return len(self._active)

    # The claim loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                timeout = await self._turn()
            except Exception:
                log.exception("claiming failed; retrying in a second")
                timeout = 1.0
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), trusted(self.clock.real(timeout)))

    async def _turn(self) -> float:
        """Claim what is due, start it, and say how long to sleep before the next look: one
        transaction, done between the starts of runs already claimed."""
        settings = self.settings
        # No claim while run ends cannot be recorded: their ends could not be either.
        capacity = 0 if self._recording_fails else settings.max_running - len(self._active)
        limit = min(settings.claim_batch, capacity)
        claimed: list[Claimed] = []
        stopped: list[UUID] = []
        missed: list[Event] = []
        earliest: datetime | None = None
        # Deferred at most half the lookahead: what this turn claims is due from then on.
        patience = self.clock.real(self.settings.lookahead.total_seconds() / 2)
        if self.store.holds_loop:
            # On PostgreSQL the turn waits on the database, not the loop: deferring it would
            # only eat into its lead, and under a steady stream of starts it always would.
            await self._alarms.clear_of(self._turn_time, patience)
        now = self.clock.now()
        began = time.perf_counter()
        async with self.store.begin() as conn:
            if capacity > 0:
                claimed = await transitions.claim(
                    conn, self.rules, self.node, now, now + self._lead, limit, stopped, missed
                )
                await self.store.notify(
                    conn,
                    chain(
                        (f"stop {run_id}" for run_id in stopped),
                        (f"event {event.payload()}" for event in missed),
                    ),
                )
            more = capacity > 0 and len(claimed) == limit  # there may be more due right now
            planned = False
            if not more:
                earliest = await queries.earliest_due(conn)
                if earliest is not None and self._planning(earliest, now):
                    self._lead = await self._lead_for(conn, earliest)
                    planned = True
        elapsed = time.perf_counter() - began
        self.events.timing("claim", elapsed)
        self._turn_time = 0.7 * self._turn_time + 0.3 * elapsed
        if len(claimed) >= 20:  # enough to tell the cost per run from the fixed cost
            self._claim_cost = 0.7 * self._claim_cost + 0.3 * elapsed / len(claimed)
        for event in missed:
            self.events.publish(event)
        for run_id in stopped:
            self.stop_run(run_id, "Replaced by a later run.")
        for item in claimed:
            self._start(item)
        if more:
            return 0.0
        self._target = earliest
        if capacity <= len(claimed) or earliest is None:
            return settings.safety_poll.total_seconds()
        now = self.clock.now()
        if planned:
            wait = (earliest - self._lead - now).total_seconds()
        else:
            # Far off: wake once it comes within planning range, to size the lead then.
            wait = (earliest - self.settings.lookahead - MAX_LEAD - now).total_seconds()
            if wait <= 0:
                return 0.0  # it came within range during this turn
        if wait <= 0 and not claimed:
            # Another node holds those rows: let it commit. Its claim takes about as long as
            # this node's own turns, so look again after one of those rather than every 5 ms
            # (on PostgreSQL under sustained load the losers' polls were most of the extra
            # transactions that each added node costs).
            wait = max(0.005, min(self._turn_time, self.settings.lookahead.total_seconds()))
        return min(max(wait, 0.0), settings.safety_poll.total_seconds())

    def _planning(self, instant: datetime, now: datetime | None = None) -> bool:
        """Whether `instant` is near enough for the size of its burst to matter now: within
        the longest lead there can be."""
        now = now or self.clock.now()
        return instant - now <= self.settings.lookahead + MAX_LEAD

    async def _lead_for(self, conn: Connection, earliest: datetime) -> timedelta:
        """How long before `earliest` to claim: the lookahead, plus the time claiming takes
        at the measured cost per run for as many as are due within the lookahead after it.
        A burst of runs due at one instant is thus claimed in full before it, not from it."""
        lookahead = self.settings.lookahead
        burst = await queries.count_due(conn, earliest + lookahead, self.settings.max_running)
        self._unplanned = 0.0
        # A turn also costs its round trips whatever it claims: on PostgreSQL, on a busy
        # machine, tens of milliseconds, more than the lookahead. The lead covers the turn's
        # measured duration as well as the burst's measured cost.
        seconds = (self._turn_time + burst * self._claim_cost) * LEAD_MARGIN
        return lookahead + min(timedelta(seconds=seconds), MAX_LEAD)

    # Runs -----------------------------------------------------------------------------------

    def _start(self, claimed: Claimed) -> None:
        active = _Active(claimed)
        self._active[claimed.run_id] = active
        active.task = asyncio.create_task(self._execute(active), name=f"onair-run-{claimed.run_id}")

    def _cancel(self, active: _Active, reason: Outcome, error: str | None) -> None:
        if active.task is not None and not active.task.done():
            active.reason, active.error = reason, error
            active.task.cancel()

    async def _execute(self, active: _Active) -> None:
        claimed = active.claimed
        started: datetime | None = None
        result = None
        error: str | None = None
        try:
            # Everything that can be done before the due instant is, so that the operation
            # starts as soon as the sleep ends; its start is announced right after.
            operation = self.registry.get(claimed.operation)
            parameters = self.registry.parameters(
                claimed.operation, claimed.parameters, "operation.parameters"
            )
            context = RunContext(
                task_id=claimed.task_id,
                run_id=claimed.run_id,
                due=claimed.due,
                attempt=claimed.attempt,
                owner=claimed.owner,
                clock=self.clock,
                occurrence=claimed.occurrence,
                next_occurrence=claimed.next_occurrence,
            )
            await self._alarms.wait(claimed.due)
            started = self.clock.now()
            self._started(active, started)
            result = await operation.run(parameters, claimed.dependencies, context)
            outcome = Outcome.COMPLETED
        except asyncio.CancelledError:
            outcome, error = active.reason, active.error or "Cancelled."
        except OnairError as exc:
            outcome, error = Outcome.FAILED, transitions.failure(claimed.operation, exc.message)
        except Exception as exc:
            log.exception("run %s of task %s raised", claimed.run_id, claimed.task_id)
            message = f"{type(exc).__name__}: {exc}"
            outcome, error = Outcome.FAILED, transitions.failure(claimed.operation, message)
        finished = self.clock.now()
        self._ended.append(
            Ended(
                claimed.run_id,
                claimed.task_id,
                outcome,
                started,
                finished,
                result,
                error,
                claimed.attempt,
            )
        )
        self._ended_ready.set()

    def _started(self, active: _Active, started: datetime) -> None:
        """Queue what follows a run's start: its announcement, soon, and the writing of its
        real start once it has gone on for `STARTS_WRITTEN_AFTER`. Both are queued in bulk
        (one callback for all the runs that start in a pass of the loop, one timer for all
        that start within a tenth of a second), because a callback and a timer per run cost
        each run of a burst due at one instant about as much as its own wake-up, and delayed
        the starts after it."""
        loop = asyncio.get_running_loop()
        if not self._starting:
            loop.call_soon(self._announce_starts)
        self._starting.append((active, started))
        if not self._going:
            loop.call_later(STARTS_WRITTEN_AFTER, self._note_starts)
        self._going.append((active, started, loop.time()))

    def _announce_starts(self) -> None:
        starting, self._starting = self._starting, []
        for active, started in starting:
            self._announce(self._event(active.claimed, "started", started, started))

    def _note_starts(self) -> None:
        """Have the real starts of the runs still going after `STARTS_WRITTEN_AFTER` (real
        seconds) written by `_record_loop`; those that started since wait for their turn."""
        loop = asyncio.get_running_loop()
        due = loop.time() - STARTS_WRITTEN_AFTER
        ready = 0
        for active, started, at in self._going:
            if at > due:
                break
            ready += 1
            if active.task is not None and not active.task.done():
                self._starts.append(
                    {
                        "run_id": active.claimed.run_id,
                        "task_id": active.claimed.task_id,
                        "started_at": started,
                    }
                )
        del self._going[:ready]
        if self._starts:
            self._ended_ready.set()
        if self._going:
            # At most ten writes a second, however the starts are spread.
            loop.call_later(max(self._going[0][2] - due, 0.1), self._note_starts)

    async def _record_starts(self) -> None:
        """Write the real starts `_note_starts` collected, in one transaction. Best effort: a
        start that cannot be written now is written with its run's end."""
        starts, self._starts = self._starts, []
        try:
            async with self.store.begin() as conn:
                await queries.record_starts(conn, starts)
        except Exception:
            log.exception("recording the real start of %d runs failed", len(starts))

    async def _record_loop(self) -> None:
        """Write the ends of runs, many per transaction, until the worker stops."""
        while True:
            await self._ended_ready.wait()
            self._ended_ready.clear()
            if self._starts:
                await self._record_starts()
            batch, self._ended = self._ended[:RECORD_BATCH], self._ended[RECORD_BATCH:]
            if batch:
                if self.store.holds_loop:
                    await self._alarms.clear_of(self._record_time)
                began = time.perf_counter()
                await self._record(batch)
                self._record_time = 0.7 * self._record_time + 0.3 * (time.perf_counter() - began)
            if self._ended:
                self._ended_ready.set()
                await asyncio.sleep(0)  # let runs due meanwhile start
            if self._stopping and not self._ended and not self._running_tasks():
                return

    def _running_tasks(self) -> bool:
        return any(a.task is not None and not a.task.done() for a in self._active.values())

    def _event(
        self,
        claimed: Claimed,
        kind: str,
        at: datetime,
        started: datetime | None,
        error: str | None = None,
    ) -> Event:
        lateness = (started - claimed.due).total_seconds() if started is not None else None
        return Event(
            kind=kind,
            task_id=claimed.task_id,
            operation=claimed.operation,
            at=at,
            node=self.node,
            run_id=claimed.run_id,
            due=claimed.due,
            lateness=lateness,
            error=error,
            owner=claimed.owner,
        )

    def _announce(self, event: Event) -> None:
        """Publish a run's start here, and send it to the other nodes in the background."""
        log.info(
            "run %s task=%s run=%s operation=%s lateness_ms=%s%s",
            event.kind,
            event.task_id,
            event.run_id,
            event.operation,
            f"{event.lateness * 1000:.1f}" if event.lateness is not None else "-",
            f" error={event.error!r}" if event.error else "",
        )
        self.events.publish(event)
        if self.store.signals:
            self._outbox.append(f"event {event.payload()}")
            if self._sending is None or self._sending.done():
                self._sending = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await self.store.send(batch)
            except Exception:
                log.exception("sending %d events to other nodes failed", len(batch))

    async def _record(self, batch: list[Ended]) -> None:
        """Write `batch` in one transaction; if the store refuses it, write its ends one by
        one (`_record_each`), so that one bad row holds back no other run. Ends that even that
        cannot write mean the store refuses to record: they are retried with a backoff while
        the node lives, and meanwhile the node neither claims nor heartbeats (`_failing`)."""
        pending = batch
        attempt = 0
        while True:
            try:
                await self._commit(pending)
            except Exception:
                attempt += 1
                log.exception("recording %d run ends failed (attempt %d)", len(pending), attempt)
                pending = await self._record_each(pending)
            else:
                pending = []
            if not pending:
                break
            # Keep trying while the node lives: a run must not stay `running` because its
            # end could not be written. If the node stops first, its lease expires and
            # another node (or the next start) recovers the runs as interrupted.
            self._failing(True)
            if self._stopping and attempt >= 3:
                return
            # Retried at least once a heartbeat period, so that a store that recovers is
            # noticed within one.
            period = self.clock.real(self.settings.lease.total_seconds() / 3)
            await asyncio.sleep(min(0.2 * 2**attempt, period))
        self._failing(False)

    async def _record_each(self, batch: list[Ended]) -> list[Ended]:
        """Write the ends of `batch` one at a time, each as it is, then made storable, then
        as a last resort abandoned (`transitions.abandon_run`: its task fails, as its rules
        could not move it on). Returns those that not even that could write. Stops early,
        returning the rest untried, once three in a row have failed and none has passed:
        then it is the store, not the rows."""
        stuck: list[Ended] = []
        recorded = 0
        for index, end in enumerate(batch):
            if recorded == 0 and len(stuck) >= 3:
                return stuck + batch[index:]
            try:
                await self._commit([end])
                recorded += 1
                continue
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            clean = transitions.storable(end)
            try:
                await self._commit([clean])
            except Exception as exc:
                log.exception("recording the end of run %s failed, even made storable", end.run_id)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                recorded += 1
                log.warning(
                    "the end of run %s was refused (%s); recorded with its text made storable, "
                    "the error was %r",
                    end.run_id,
                    reason,
                    end.error,
                )
                continue
            try:
                await self._commit([clean], abandon=f"onair could not record a run's end: {reason}")
            except Exception:
                log.exception("recording the end of run %s failed, even abandoned", end.run_id)
                stuck.append(end)
                continue
            recorded += 1
            log.error("run %s abandoned: its task %s failed (%s)", end.run_id, end.task_id, reason)
        return stuck

    async def _commit(self, batch: list[Ended], abandon: str | None = None) -> None:
        """Record `batch` in one transaction, then publish its ends and forget its runs. With
        `abandon`, the one end of `batch` is recorded by `transitions.abandon_run` with that
        reason instead of by the task's rules."""
        events = []
        for end in batch:
            active = self._active.get(end.run_id)
            if active is not None:
                events.append(
                    self._event(
                        active.claimed, end.outcome.value, end.finished, end.started, end.error
                    )
                )
        began = time.perf_counter()
        async with self.store.begin() as conn:
            if abandon is None:
                due = await transitions.end_runs(conn, self.rules, batch, self.clock.now())
                # Only the work these ends made due wakes the nodes: waking every node for
                # every batch cost each a claim turn per batch of any node (N² turns).
                wake = [f"due {due.isoformat()}"] if due is not None else []
            else:
                (end,) = batch
                await transitions.abandon_run(conn, end, abandon, self.clock.now())
                due, wake = None, ["due "]  # rare: its dependents, if any, may be due now
            await self.store.notify(
                conn, chain(wake, (f"event {event.payload()}" for event in events))
            )
        self.events.timing("record", time.perf_counter() - began)
        # A node that held all the runs it may has room again: its loop slept without a
        # target (or claimed less than was due), so it looks again.
        full = len(self._active) >= self.settings.max_running
        for end in batch:
            self._active.pop(end.run_id, None)
        for event in events:
            log.info(
                "run ended task=%s run=%s operation=%s outcome=%s%s",
                event.task_id,
                event.run_id,
                event.operation,
                event.kind,
                f" error={event.error!r}" if event.error else "",
            )
            self.events.publish(event)
        if full or abandon is not None:
            self._wake.set()
        elif due is not None:
            self.due_changed(due)

    def _failing(self, failing: bool) -> None:
        """Whether run ends wait for a store that refuses them. While they do, this node
        claims nothing (it could not record the ends) and stops heartbeating, so that once
        its lease expires another node recovers its runs; the first end written resumes
        both, with a heartbeat at once."""
        if failing == self._recording_fails:
            return
        self._recording_fails = failing
        if failing:
            log.error(
                "node %s cannot record run ends: it stops claiming and heartbeating until it can",
                self.node,
            )
        else:
            log.warning("node %s records run ends again: claiming and heartbeating", self.node)
            self._beat.set()
            self._wake.set()

    # Lease ----------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        period = self.clock.real(self.settings.lease.total_seconds() / 3)  # the lease is clock time
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat.wait(), period)
            self._beat.clear()
            if self._recording_fails:
                continue  # let the lease expire: another node recovers what this one holds
            try:
                await self._heartbeat()
            except Exception:
                log.exception("heartbeat failed; runs may be recovered by other nodes")

    async def _heartbeat(self) -> None:
        now = self.clock.now()
        async with self.store.begin() as conn:
            if not await queries.extend_node(conn, self.node, now + self.settings.lease):
                log.error("node %s had been declared dead; registering it again", self.node)
                await queries.add_node(conn, self.node, now, now + self.settings.lease)
        async with self.store.begin() as conn:
            recovered = await transitions.recover(conn, self.rules, now, self.settings.claim_batch)
            if recovered:
                await self.store.notify(conn, ["due "])
        if recovered:
            log.warning("recovered %d runs of nodes that stopped", recovered)
            self._wake.set()

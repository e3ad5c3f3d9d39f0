"""The metrics of `GET /metrics` (`onair.api.monitoring`): this node's runs, lateness and
store timings, in Prometheus text format.

Counters and histograms are fed by the engine's events as they happen on this node only
(`remote=False`): on PostgreSQL every node also hears the others' events, and counting those
too would count every run once per node. Sum over `node` for the whole service. The task
gauges are read from the store at scrape time (two indexed counts), so they are the same on
every node; `onair_runs_active` is this node's own.

Each application has its own `CollectorRegistry`, never prometheus-client's global one, so
several nodes can live in one process (the tests do).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from onair.audio.asrun import Aired, AsRun
from onair.broadcast.synchronizer import Cycle
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import Status

LATENESS_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds from due to start: fine below 5 ms, where a healthy node lives, up to 10 s."""

DURATION_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400)
"""Seconds a run lasts: from a credit recharge to a four-hour broadcast."""

STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

_ENDS = ("completed", "failed", "cancelled", "missed", "interrupted")


class Metrics:
    """The node's metrics, fed by `engine.events`. Build before the engine starts, so that no
    run of this node goes uncounted."""

    def __init__(self, engine: Engine, asrun: AsRun | None = None) -> None:
        self.engine = engine
        self.node = engine.node
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("node", "operation")
        self.started = Counter(
            "onair_runs_started", "Runs started on this node.", labels, registry=self.registry
        )
        self.finished = Counter(
            "onair_runs_finished",
            "Runs ended on this node, by outcome (missed: skipped, never started).",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self.lateness = Histogram(
            "onair_run_lateness_seconds",
            "Seconds from a run's due instant to its start.",
            labels,
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.duration = Histogram(
            "onair_run_duration_seconds",
            "Seconds from a run's start to its end, for runs started on this node.",
            (*labels, "outcome"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "onair_store_seconds",
            "Seconds of the engine's store transactions: claim (claiming due runs) and record "
            "(committing run ends).",
            ("node", "action"),
            buckets=STORE_BUCKETS,
            registry=self.registry,
        )
        self.tasks = Gauge(
            "onair_tasks",
            "Tasks in the store by status (pending, running), read at scrape time.",
            ("node", "status"),
            registry=self.registry,
        )
        self.active = Gauge(
            "onair_runs_active", "Runs this node holds now.", ("node",), registry=self.registry
        )
        self.cycles = Counter(
            "onair_synchronizer_cycles",
            "Synchronizer cycles on this node by result: ok, failed, or skipped (another node "
            "held the lock).",
            ("node", "result"),
            registry=self.registry,
        )
        self.first_audio = Histogram(
            "onair_first_audio_lateness_seconds",
            "Seconds from an aired item's planned instant to its first audio leaving onair, by "
            "ffmpeg's own progress (broadcasts, sounds, each playlist track; 0 when early).",
            labels,
            buckets=LATENESS_BUCKETS,
            registry=self.registry,
        )
        self._starts: dict[UUID, datetime] = {}
        engine.events.subscribe(self.observe, remote=False)
        if asrun is not None:
            asrun.watch(self.aired)
        engine.events.on_timing(self.timing)

    def observe(self, event: Event) -> None:
        """Count one event; other nodes' events are theirs to count."""
        if event.run_id is None:
            return  # a task-level change (created, cancelled while pending) is not a run
        node, operation = self.node, event.operation
        if event.kind == "started":
            self.started.labels(node, operation).inc()
            if event.lateness is not None:
                self.lateness.labels(node, operation).observe(max(event.lateness, 0.0))
            self._starts[event.run_id] = event.at
        elif event.kind in _ENDS:
            self.finished.labels(node, operation, event.kind).inc()
            began = self._starts.pop(event.run_id, None)
            if began is not None:
                seconds = (event.at - began).total_seconds()
                self.duration.labels(node, operation, event.kind).observe(max(seconds, 0.0))

    def aired(self, item: Aired) -> None:
        """Count one item of the as-run log (always this node's: items are announced where
        they aired)."""
        if item.lateness is not None:
            self.first_audio.labels(self.node, item.operation).observe(max(item.lateness, 0.0))

    def timing(self, name: str, seconds: float) -> None:
        self.store_seconds.labels(self.node, name).observe(seconds)

    def cycle(self, cycle: Cycle) -> None:
        """Count one synchronizer cycle (`Synchronizer.watch`)."""
        result = "failed" if cycle.error is not None else "ok" if cycle.held else "skipped"
        self.cycles.labels(self.node, result).inc()

    async def refresh(self) -> None:
        """Read the gauges that come from the store (an indexed count per status)."""
        for status in (Status.PENDING, Status.RUNNING):
            _, total = await self.engine.page(status=status, limit=1)
            self.tasks.labels(self.node, status.value).set(total)
        worker = self.engine.worker
        self.active.labels(self.node).set(worker.running if worker is not None else 0)

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

"""`GET /metrics` of real `onair serve` processes after known runs: exact counters, each start
in the lateness histogram once, gauges from the store, and on PostgreSQL each node counting
only its own runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Server
from tests.integration.helpers import schedule, wait_status

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

QUIET = {"ONAIR__CREDITS__DAILY_RECHARGE": "false"}
"""No start-up system task: every run counted is one of the test's."""


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every label not given."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape_until(
    client: httpx.AsyncClient, done: Callable[[Samples], bool], within: float = 15
) -> Samples:
    async with asyncio.timeout(within):
        while not done(samples := await scrape(client)):
            await asyncio.sleep(0.05)
    return samples


async def test_counts_after_known_runs(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(database_url, ONAIR__ENGINE__NODE="metrics-node", **QUIET)
    node = {"node": "metrics-node", "operation": "test"}
    async with server.client() as client:
        for _ in range(3):
            await wait_status(client, await schedule(client), "completed")
        await wait_status(client, await schedule(client, parameters={"fail": "no"}), "failed")
        long = await schedule(client, parameters={"sleep": 30})
        await wait_status(client, long, "running")
        running = await scrape(client)
        assert value(running, "onair_tasks", node="metrics-node", status="running") == 1
        assert value(running, "onair_runs_active", node="metrics-node") == 1
        assert (await client.delete(f"/tasks/{long}")).status_code == 200
        # Every second for two: the first run still runs at the second occurrence, which the
        # default overlap policy (skip) records as missed.
        series = await schedule(
            client,
            parameters={"sleep": 2.5},
            condition={"type": "interval", "parameters": {"every": "PT1S", "count": 2}},
        )
        await wait_status(client, series, "completed")
        ahead = {"type": "at", "parameters": {"datetime": "2999-01-01T00:00:00"}}
        await schedule(client, condition=ahead)
        samples = await scrape_until(
            client, lambda s: value(s, "onair_runs_finished_total", **node, outcome="cancelled")
        )

    finished = {
        outcome: value(samples, "onair_runs_finished_total", **node, outcome=outcome)
        for outcome in ("completed", "failed", "cancelled", "missed", "interrupted")
    }
    assert finished == {"completed": 4, "failed": 1, "cancelled": 1, "missed": 1, "interrupted": 0}
    assert value(samples, "onair_runs_started_total", **node) == 6
    # Each start once in the lateness histogram, none of them late by a second.
    assert value(samples, "onair_run_lateness_seconds_count", **node) == 6
    assert value(samples, "onair_run_lateness_seconds_bucket", **node, le="+Inf") == 6
    assert value(samples, "onair_run_lateness_seconds_bucket", **node, le="1.0") == 6
    assert 0 <= value(samples, "onair_run_lateness_seconds_sum", **node) < 6 * 0.5
    # Durations for the runs that started: the cancelled one ran until the DELETE.
    assert total(samples, "onair_run_duration_seconds_count", **node) == 6
    cancelled = {**node, "outcome": "cancelled"}
    assert value(samples, "onair_run_duration_seconds_count", **cancelled) == 1
    assert value(samples, "onair_run_duration_seconds_sum", **cancelled) < 30
    series_run = {**node, "outcome": "completed"}
    # The run sleeps 2.5 s by the event loop's clock; durations are read off the wall clock,
    # which may run a little slower meanwhile.
    assert value(samples, "onair_run_duration_seconds_sum", **series_run) >= 2.49
    assert value(samples, "onair_tasks", node="metrics-node", status="pending") == 1
    assert value(samples, "onair_tasks", node="metrics-node", status="running") == 0
    assert value(samples, "onair_runs_active", node="metrics-node") == 0
    claims = value(samples, "onair_store_seconds_count", node="metrics-node", action="claim")
    records = value(samples, "onair_store_seconds_count", node="metrics-node", action="record")
    assert claims >= 6
    assert 1 <= records <= 7  # run ends are committed in batches


async def test_each_node_counts_its_own_runs(
    start_server: Callable[..., Server], postgresql_url: str
) -> None:
    a = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-a", **QUIET)
    b = start_server(postgresql_url, ONAIR__ENGINE__NODE="node-b", **QUIET)
    async with a.client() as on_a, b.client() as on_b:
        tasks = [await schedule(on_a if i % 2 else on_b) for i in range(10)]
        for task in tasks:
            await wait_status(on_a, task, "completed")

        def settled(samples: Samples) -> bool:
            return total(samples, "onair_runs_finished_total") == total(
                samples, "onair_runs_started_total"
            )

        by_node = {
            "node-a": await scrape_until(on_a, settled),
            "node-b": await scrape_until(on_b, settled),
        }

    started = 0.0
    for name, samples in by_node.items():
        # Only this node's label: the other node's events, heard here too, are not counted.
        assert {dict(labels).get("node") for (_, labels) in samples} <= {name, None}
        mine = value(samples, "onair_runs_started_total", node=name, operation="test")
        assert (
            value(samples, "onair_run_lateness_seconds_count", node=name, operation="test") == mine
        )
        started += mine
    assert started == 10

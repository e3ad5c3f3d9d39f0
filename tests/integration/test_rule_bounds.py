"""Degenerate rules cannot stall a node: a real server keeps answering `/ping` and starts a
task due meanwhile on time while such rules are posted to `/tasks` and `/tasks/preview`, each
refused within a second; and a node restarts on a store holding rules it would now refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
from sqlalchemy import update

from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec, Status
from onair.store.database import Store
from onair.store.schema import tasks
from tests.conftest import Server
from tests.integration.helpers import schedule, wait_status
from tests.integration.test_user_api import Role, cookie, someone

DEGENERATE = [
    "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31",
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31",
    "FREQ=YEARLY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=7;BYDAY=MO",
]


def rrule(rule: str, start: datetime | None = None) -> dict[str, object]:
    start = start or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    return {"type": "rrule", "parameters": {"rule": rule, "start": start.isoformat()}}


async def _pings(client: httpx.AsyncClient, stop: asyncio.Event) -> list[float]:
    times = []
    while not stop.is_set():
        began = time.perf_counter()
        assert (await client.get("/ping")).status_code == 204
        times.append(time.perf_counter() - began)
        await asyncio.sleep(0.02)
    return times


async def test_degenerate_rules_neither_stall_the_node_nor_delay_a_run(
    shared_server: Server,
) -> None:
    async with shared_server.client() as client, shared_server.client() as pinger:
        due = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1.2)
        on_time = await schedule(
            client, condition={"type": "at", "parameters": {"datetime": due.isoformat()}}
        )
        stop = asyncio.Event()
        pings = asyncio.create_task(_pings(pinger, stop))
        answers = []
        began = time.perf_counter()
        while time.perf_counter() - began < 1.8:  # across the task's instant
            for rule in DEGENERATE:
                for path, body in (
                    (
                        "/tasks",
                        {"operation": {"type": "test", "parameters": {}}, "dependencies": {}},
                    ),
                    ("/tasks/preview", {}),
                ):
                    sent = time.perf_counter()
                    response = await client.post(path, json={**body, "condition": rrule(rule)})
                    answers.append((time.perf_counter() - sent, response.status_code, rule))
                    extra = response.json()["extra"]
                    assert extra[0]["key"] == "condition.parameters.rule", response.text
        stop.set()
        times = await pings
        assert {status for _, status, _ in answers} == {400}
        assert max(elapsed for elapsed, _, _ in answers) < 1.0, max(answers)
        assert max(times) < 0.5, f"/ping took {max(times):.3f} s"
        # The pings went on throughout (one each 20 ms plus its answer: 15 on a loaded machine).
        assert len(times) >= 8
        await wait_status(client, on_time, "completed")
        (run,) = (await client.get(f"/tasks/{on_time}/runs")).json()["runs"]
        assert 0 <= run["lateness"] < 0.5, run  # a stalled node: seconds


async def test_a_node_restarts_on_a_store_holding_rules_it_now_refuses(
    start_server: Callable[..., Server], database_url: str
) -> None:
    """Rules written before the bound existed (here by SQL): the node comes up, and each such
    task fails with the reason when it is next due instead of hanging the node."""
    first = start_server(database_url)
    async with first.client() as client:
        refused = await schedule(client, condition=rrule("FREQ=SECONDLY;INTERVAL=2"))
        unbounded = await schedule(client, condition=rrule("FREQ=SECONDLY;INTERVAL=2"))
        fast = await schedule(client, condition={"type": "interval", "parameters": {"every": 2}})
    first.kill()
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - timedelta(days=1)
    async with Store(database_url) as store, store.begin() as conn:
        for task_id, parameters in (
            # a ZeroDivisionError in every claim, which failed the node's whole batch
            (refused, {"rule": "FREQ=YEARLY;INTERVAL=0", "start": start.isoformat()}),
            # walked day by day to year 9999: seconds of event loop per claim
            (unbounded, {"rule": "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "start": "2026-01-01"}),
            # back to back, a whole core
            (fast, {"every": 0.000001}),
        ):
            await conn.execute(
                update(tasks)
                .where(tasks.c.id == UUID(task_id))
                .values(condition_parameters=parameters)
            )

    began = time.perf_counter()
    second = start_server(database_url)
    assert time.perf_counter() - began < 15
    async with second.client() as client:
        failed = await wait_status(client, refused, "failed", within=10)
        assert failed["error"].startswith("Its rule can no longer be evaluated: ")
        assert "INTERVAL takes no 0" in failed["error"]
        failed = await wait_status(client, unbounded, "failed", within=10)
        assert "within the search bound (50 years, 10000 candidates)" in failed["error"]
        failed = await wait_status(client, fast, "failed", within=10)
        assert "every must be at least 1 s, the floor of how often" in failed["error"]
        assert len((await client.get(f"/tasks/{fast}/runs")).json()["runs"]) <= 2
        assert (await client.get("/ping")).status_code == 204
        later = await schedule(client)
        await wait_status(client, later, "completed")


SYSTEM_TASK = {"name": "recharge", "task_type": "credit_recharge", "parameters": {}}
# Fields the calendar or the store cannot hold, on the user API (422 naming the seed's field).
SEED_REFUSALS = [
    ({"scheduled_at": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"}, "scheduled_at"),
    ({"scheduled_at": "9999-12-31T23:59:59", "timezone": "America/Los_Angeles"}, "scheduled_at"),
    ({"scheduled_at": "9999-12-31T23:00:00-05:00"}, "scheduled_at"),
    (
        {"scheduled_at": "2030-01-01T00:00:00", "recurrence_type": "daily",
         "recurrence_count": 2**63},
        "recurrence_count",
    ),
    (
        {"scheduled_at": "2030-01-01T00:00:00", "recurrence_type": "cron",
         "cron_expression": "0 0 30 2 *"},
        "cron_expression",
    ),
]  # fmt: skip
# The same on the Tasks API (400 in the reference's shape, keyed by the condition's field).
REFERENCE_REFUSALS = [
    ({"type": "at", "parameters": {"datetime": "0001-01-01T00:00:00", "timezone": "Asia/Tokyo"}},
     "datetime"),
    ({"type": "at", "parameters": {"datetime": "9999-12-31T23:00:00-05:00"}}, "datetime"),
    ({"type": "interval", "parameters": {"every": 60, "count": 2**63}}, "count"),
    ({"type": "interval", "parameters": {"every": "PT0.001S"}}, "every"),
    ({"type": "interval", "parameters": {"every": 1e20}}, "every"),
    ({"type": "recurring", "parameters": {"start": "2030-01-01T00:00", "frequency": "yearly",
                                          "interval": 10**30}}, "interval"),
    ({"type": "cron", "parameters": {"expression": "0 0 31 4,6,9,11 *"}}, "expression"),
    (rrule("FREQ=MONTHLY;BYMONTHDAY=32"), "rule"),
    (rrule("FREQ=YEARLY;BYSETPOS=1"), "rule"),
    (rrule("FREQ=DAILY;COUNT=99999999999999999999"), "rule"),
]  # fmt: skip


async def test_condition_fields_out_of_range_are_4xx_on_both_surfaces(
    client: httpx.AsyncClient,
) -> None:
    admin = {"Content-Type": "application/json", **cookie(someone(), Role.ADMIN)}
    for fields, key in SEED_REFUSALS:
        for path in ("/api/v1/scheduler/admin/system-tasks", "/api/v1/scheduler/preview"):
            response = await client.post(path, headers=admin, json={**SYSTEM_TASK, **fields})
            assert response.status_code == 422, (path, fields, response.text)
            locations = [error["loc"] for error in response.json()["detail"]]
            assert ["body", key] in locations, (path, fields, response.text)
    for condition, field in REFERENCE_REFUSALS:
        for path in ("/tasks", "/tasks/preview"):
            body = {"operation": {"type": "test", "parameters": {}}, "dependencies": {}}
            response = await client.post(path, json={**body, "condition": condition})
            assert response.status_code == 400, (path, condition, response.text)
            keys = [problem["key"] for problem in response.json()["extra"]]
            assert f"condition.parameters.{field}" in keys, (path, condition, response.text)


async def test_a_stored_rule_past_the_bound_fails_its_task_with_an_event(
    engine: Engine, store: Store
) -> None:
    """In the engine: when the task is claimed, its rule (changed in the store behind the
    engine's back, as an older version could have written it) is evaluated within the bound,
    and the task fails with the reason and a `failed` event; the claim goes on for the others."""
    events: list[Event] = []
    engine.events.subscribe(events.append)
    start = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(seconds=2)
    hourly = {"rule": "FREQ=HOURLY", "start": start.isoformat()}
    bad = await engine.add(NewTask(Spec("test"), Spec("rrule", hourly)))
    good = await engine.add(NewTask(Spec("test"), Spec("at", {"datetime": start.isoformat()})))
    async with store.begin() as conn:
        parameters = {"rule": "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31", "start": start.isoformat()}
        await conn.execute(
            update(tasks).where(tasks.c.id == bad.id).values(condition_parameters=parameters)
        )
    async with asyncio.timeout(10):
        while (await engine.get(good.id)).status is not Status.COMPLETED:
            await asyncio.sleep(0.05)
    failed = await engine.get(bad.id)
    assert failed.status is Status.FAILED
    assert failed.error is not None
    assert failed.error.startswith("Its rule can no longer be evaluated: no occurrence after ")
    assert failed.next_at is None
    (event,) = [e for e in events if e.task_id == bad.id and e.kind == "failed"]
    assert event.error == failed.error
    assert (await engine.runs(bad.id))[1] == 0  # nothing ran

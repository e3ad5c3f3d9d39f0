"""Alerts through real servers on SQLite and PostgreSQL and a webhook receiver over HTTP: a
failed run and a late start each arrive once, signed with the webhook's secret, retried while
the receiver fails, shown in the run history as webhook tasks; and an alert created before a
restart of the node is delivered after it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from onair.audio.asrun import Aired, AsRun
from onair.config import AlertsSettings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.test import Test
from onair.operations.webhook import Alerter, DeliverWebhook
from onair.store.database import Store
from tests.conftest import Server
from tests.fakes.server import Fault, Logged, serve
from tests.fakes.webhooks import FakeReceiver, Received
from tests.integration.helpers import schedule, wait_status

SECRET = "a-secret-of-the-station-0123456789"


@pytest.fixture
def receiver() -> Iterator[FakeReceiver]:
    fake = FakeReceiver()
    with serve(fake):
        yield fake


def alert_settings(receiver: FakeReceiver) -> dict[str, str]:
    hook = {"url": f"{receiver.url}/hook", "secret": SECRET, "alerts": ["run_failed", "late_start"]}
    return {
        "ONAIR__ALERTS__WEBHOOKS": json.dumps({"ops": hook}),
        "ONAIR__ALERTS__BACKOFF": "PT0.2S",
        "ONAIR__ALERTS__LATE_START": "PT1S",
        "ONAIR__ENGINE__LEASE": "PT3S",
        "ONAIR__CREDITS__DAILY_RECHARGE": "false",
    }


async def delivered(receiver: FakeReceiver, count: int, within: float = 20) -> list[Received]:
    await asyncio.wait_for(receiver.wait_for(lambda: len(receiver.deliveries()) >= count), within)
    return receiver.deliveries()


async def answered(receiver: FakeReceiver, count: int, within: float = 5) -> list[Logged]:
    """The first `count` POSTs to the hook once each has been answered: the receiver keeps a
    delivery before its answer leaves, so the status is read only once it is set."""

    def done() -> bool:
        posts = receiver.logged("POST", "/hook")
        return len(posts) >= count and all(p.status is not None for p in posts[:count])

    await asyncio.wait_for(receiver.wait_for(done), within)
    return receiver.logged("POST", "/hook")


def verified(received: Received) -> dict[str, Any]:
    """The alert, once its signature checks out as a receiver would check it."""
    timestamp = received.headers["x-onair-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + received.body, hashlib.sha256)
    assert received.headers["x-onair-signature"] == f"sha256={expected.hexdigest()}"
    assert abs(int(timestamp) - datetime.now(UTC).timestamp()) < 60
    alert: dict[str, Any] = received.json()
    assert received.headers["x-onair-alert"] == alert["type"]
    assert received.headers["x-onair-delivery"] == alert["id"]
    return alert


async def webhook_tasks(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    index = (await client.get("/tasks")).json()
    found = []
    for ids in index.values():
        for task_id in ids:
            task = (await client.get(f"/tasks/{task_id}")).json()
            if task["task"]["operation"]["type"] == "webhook":
                found.append(task)
    return found


async def test_a_failed_run_and_a_late_start_arrive_signed_once_each_after_retries(
    start_server: Callable[..., Server], database_url: str, receiver: FakeReceiver
) -> None:
    receiver.inject(Fault("/hook", times=1, status=500))
    server = start_server(database_url, **alert_settings(receiver))
    async with server.client() as client:
        failing = await schedule(client, parameters={"fail": "no signal"})
        past = (datetime.now(UTC) - timedelta(seconds=3)).replace(tzinfo=None).isoformat()
        late = await schedule(client, condition={"type": "at", "parameters": {"datetime": past}})
        await wait_status(client, late, "completed")
        alerts = [verified(r) for r in await delivered(receiver, 2)]

        by_type = {a["type"]: a for a in alerts}
        assert sorted(by_type) == ["late_start", "run_failed"]
        failed = by_type["run_failed"]
        assert (failed["task_id"], failed["operation"], failed["owner"]) == (failing, "test", None)
        assert "no signal" in failed["detail"]["error"]
        started_late = by_type["late_start"]
        assert started_late["task_id"] == late
        assert started_late["detail"]["lateness_seconds"] >= 3
        assert started_late["detail"]["threshold_seconds"] == 1.0
        # The receiver failed once: that alert took two deliveries, each a webhook task's run.
        posts = await answered(receiver, 3)
        assert [p.status for p in posts] == [500, 204, 204]
        tasks = await webhook_tasks(client)
        assert len(tasks) == 2
        runs = {}
        for task in tasks:
            assert task["task"]["operation"]["parameters"]["webhook"] == "ops"
            await wait_status(client, task["task"]["id"], "completed")
            page = (await client.get(f"/tasks/{task['task']['id']}/runs")).json()
            runs[task["task"]["operation"]["parameters"]["alert"]["id"]] = page["runs"]
        attempts = sorted(len(r) for r in runs.values())
        assert attempts == [1, 2]
        retried = next(r for r in runs.values() if len(r) == 2)
        errors = sorted(str(run["error"]) for run in retried)
        assert any("Webhook ops did not take the alert: HTTP 500." in e for e in errors), errors


async def test_an_alert_created_before_a_restart_is_delivered_after_it(
    start_server: Callable[..., Server], database_url: str, receiver: FakeReceiver
) -> None:
    down = Fault("/hook", times=1_000_000, status=503)
    receiver.inject(down)
    settings = alert_settings(receiver)
    first = start_server(database_url, **settings)
    async with first.client() as client:
        failing = await schedule(client, parameters={"fail": "no signal"})
        await receiver.wait_for(lambda: len(receiver.logged("POST", "/hook")) >= 1)
    first.stop()
    down.times = 0  # the receiver is back
    assert receiver.deliveries() == []

    second = start_server(database_url, **settings)
    async with second.client() as client:
        [received] = await delivered(receiver, 1)
        alert = verified(received)
        assert (alert["type"], alert["task_id"]) == ("run_failed", failing)
        assert int(received.headers["x-onair-attempt"]) >= 2
        [task] = await webhook_tasks(client)
        await wait_status(client, task["task"]["id"], "completed")
    assert len(receiver.deliveries()) == 1


async def test_a_late_first_audio_and_a_cut_item_are_alerted(
    store: Store, receiver: FakeReceiver
) -> None:
    """The as-run side, in process: an item whose first audio left 10 s late and that was cut
    by its max duration gives one alert of each kind; an on-time completed item gives none."""
    settings = AlertsSettings.model_validate(
        {"webhooks": {"ops": {"url": f"{receiver.url}/hook", "secret": SECRET}}}
    )
    asrun = AsRun()
    registry = Registry([Test(), DeliverWebhook(settings)])
    async with Engine(store, registry) as engine, Alerter(engine, asrun, settings):
        now = datetime.now(UTC)
        item = Aired(
            uuid.uuid4(), uuid.uuid4(), "play_playlist", "track", "Jingle", "alice", "default",
            now - timedelta(seconds=11), now - timedelta(seconds=1), 0.5, 0.0, "max_duration",
            now,
        )  # fmt: skip
        on_time = replace(item, first_audio_at=item.planned_at, end="completed", id=uuid.uuid4())
        await asrun.record([on_time, item])
        alerts = [verified(r) for r in await delivered(receiver, 2)]

    assert sorted(a["type"] for a in alerts) == ["cut_short", "late_first_audio"]
    for alert in alerts:
        assert alert["detail"]["item"]["id"] == str(item.id)
        assert (alert["owner"], alert["operation"]) == ("alice", "play_playlist")
    late = next(a for a in alerts if a["type"] == "late_first_audio")
    assert late["detail"]["item"]["lateness_seconds"] == 10.0
    assert late["summary"] == "First audio of track 'Jingle' left 10.000 s late."

"""Alerts that arrive: the `webhook` operation, and the `Alerter` that schedules it.

The alerter watches this node's engine events and as-run log and, for each alert (a run failed,
a run started later than `alerts.late_start`, an item's first audio later than
`alerts.late_first_audio`, an item cut short, a broadcast at risk: one alert per new reason),
adds one `webhook` task per configured webhook that takes that alert. Each delivery is then one
of onair's own tasks: stored before anything is sent, so a node that restarts before it is
delivered delivers it after; retried with backoff while the receiver fails; listed in the run
history like any other task.

A delivery is a POST of the alert's JSON, signed with the webhook's secret (HMAC-SHA256 over
`<timestamp>.<body>`, docs/operations.md, "Alerts"). A task names a webhook of the settings,
never a URL, so onair calls only the URLs an admin configured. Alerts about webhook tasks
themselves are never raised, so a failing receiver cannot feed itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from onair.audio.asrun import Aired, AsRun
from onair.config import AlertKind, AlertsSettings
from onair.engine.admission import ADMINS, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec
from onair.engine.policies import Policy, Retry
from onair.engine.registry import JSON, RunContext
from onair.errors import InvalidParameters, OperationError, Problem

log = logging.getLogger("onair.alerts")

CUT_SHORT = frozenset({"max_duration", "cancelled", "credits"})
"""As-run ends that cut an item short (a failed one is already a `run_failed` alert)."""


class WebhookParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhook: str = Field(min_length=1, max_length=128, description="A configured webhook's name.")
    alert: dict[str, Any] = Field(description="The alert, posted as the request's JSON body.")


class DeliveryFailed(OperationError):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"Webhook {name} did not take the alert: {why}.")


def body_of(alert: Mapping[str, Any]) -> bytes:
    """The bytes posted (and signed): compact JSON, keys sorted."""
    return json.dumps(alert, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`X-Onair-Signature`: `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class DeliverWebhook:
    """POST one alert to one configured webhook; a non-2xx answer or no answer fails the run,
    which is retried (by default 10 attempts, 5 s apart and doubling, at most 10 minutes)."""

    name: ClassVar[str] = "webhook"
    Parameters: ClassVar[type[BaseModel]] = WebhookParameters
    policy: ClassVar[Policy] = Policy(
        retry=Retry(attempts=10, backoff=timedelta(seconds=5), cap=timedelta(minutes=10))
    )
    roles: ClassVar[frozenset[Role]] = ADMINS

    def __init__(self, settings: AlertsSettings) -> None:
        self.settings = settings

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        """Raises InvalidParameters keyed `operation.parameters.webhook`: not configured."""
        if parameters.webhook not in self.settings.webhooks:
            known = ", ".join(sorted(self.settings.webhooks)) or "none"
            problem = Problem(
                f"Unknown webhook: {parameters.webhook}. Configured webhooks: {known}.",
                "operation.parameters.webhook",
            )
            raise InvalidParameters([problem])
        return None

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{webhook, status, attempt}` once the receiver answered 2xx."""
        assert isinstance(parameters, WebhookParameters)
        hook = self.settings.webhooks.get(parameters.webhook)
        if hook is None:
            raise DeliveryFailed(parameters.webhook, "it is no longer configured")
        body = body_of(parameters.alert)
        timestamp = str(int(context.clock.now().timestamp()))
        headers = {
            "content-type": "application/json",
            "user-agent": "onair-webhook",
            "x-onair-alert": str(parameters.alert.get("type", "")),
            "x-onair-delivery": str(parameters.alert.get("id", "")),
            "x-onair-attempt": str(context.attempt),
            "x-onair-timestamp": timestamp,
            "x-onair-signature": signature(hook.secret.get_secret_value(), timestamp, body),
        }
        timeout = self.settings.timeout.total_seconds()
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                response = await client.post(hook.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryFailed(parameters.webhook, f"{type(error).__name__}: {error}") from None
        if not response.is_success:
            raise DeliveryFailed(parameters.webhook, f"HTTP {response.status_code}")
        return {
            "webhook": parameters.webhook,
            "status": response.status_code,
            "attempt": context.attempt,
        }


class Alerter:
    """Turns this node's events and as-run items into webhook tasks. Enter it after the engine
    (`async with`), so that leaving it waits for the alerts being added before the engine
    stops."""

    def __init__(self, engine: Engine, asrun: AsRun, settings: AlertsSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._adding: set[asyncio.Task[None]] = set()
        self._stops = [engine.events.subscribe(self.observe, remote=False), asrun.watch(self.aired)]

    async def __aenter__(self) -> Alerter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for stop in self._stops:
            stop()
        if self._adding:
            await asyncio.wait(set(self._adding))

    def observe(self, event: Event) -> None:
        if event.operation == DeliverWebhook.name or event.run_id is None:
            return
        if event.kind == "readiness" and event.data is not None:
            verdict = dict(event.data)
            for reason in verdict.get("new", []):
                summary = f"Broadcast of event {verdict['event']} at {verdict['start']} is at risk."
                risk = {**verdict, "reason": reason}
                self.alert("at_risk", event, f"{summary} {reason['message']}", risk)
            return
        threshold = self.settings.late_start.total_seconds()
        if event.kind == "failed":
            failure: dict[str, Any] = {"error": event.error, "due": _iso(event.due)}
            self.alert("run_failed", event, f"Run of {event.operation} failed.", failure)
        elif event.kind == "started" and event.lateness is not None:
            if event.lateness > threshold:
                detail: dict[str, Any] = {
                    "due": _iso(event.due),
                    "lateness_seconds": round(event.lateness, 4),
                    "threshold_seconds": threshold,
                }
                summary = f"Run of {event.operation} started {event.lateness:.3f} s late."
                self.alert("late_start", event, summary, detail)

    def aired(self, item: Aired) -> None:
        event = item.event(self.engine.node)
        threshold = self.settings.late_first_audio.total_seconds()
        lateness = item.lateness
        if lateness is not None and lateness > threshold:
            summary = f"First audio of {item.kind} {item.name!r} left {lateness:.3f} s late."
            detail = {"item": item.as_json(), "threshold_seconds": threshold}
            self.alert("late_first_audio", event, summary, detail)
        if item.end in CUT_SHORT:
            summary = f"{item.kind.capitalize()} {item.name!r} was cut short ({item.end})."
            self.alert("cut_short", event, summary, {"item": item.as_json()})

    def alert(self, kind: AlertKind, event: Event, summary: str, detail: dict[str, Any]) -> None:
        """Schedule the delivery of one alert to each webhook that takes `kind`."""
        hooks = [name for name, hook in self.settings.webhooks.items() if kind in hook.alerts]
        if not hooks:
            return
        alert = {
            "id": str(uuid.uuid4()),
            "type": kind,
            "at": self.engine.clock.now().isoformat(),
            "node": self.engine.node,
            "task_id": str(event.task_id),
            "run_id": None if event.run_id is None else str(event.run_id),
            "operation": event.operation,
            "owner": event.owner,
            "summary": summary,
            "detail": detail,
        }
        for name in hooks:
            adding = asyncio.get_running_loop().create_task(self._add(name, alert))
            self._adding.add(adding)
            adding.add_done_callback(self._adding.discard)

    async def _add(self, name: str, alert: dict[str, Any]) -> None:
        try:
            retry = {
                "attempts": self.settings.attempts,
                "backoff": self.settings.backoff.total_seconds(),
            }
            new = NewTask(
                Spec(DeliverWebhook.name, {"webhook": name, "alert": alert}),
                Spec("now"),
                name=f"alert {alert['type']} to {name}",
                policy={"retry": retry},
            )
            await self.engine.add(new)
        except Exception:
            log.exception("could not schedule the %s alert to webhook %s", alert["type"], name)


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()

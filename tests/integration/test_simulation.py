"""The simulated window against the engine, on both databases: what the simulation lists as
run is exactly what the engine then runs (series, a one-shot, a paused series, a skipped
occurrence, a moved one), and the Tasks API, the user API and the CLI answer it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from onair.accounts.tokens import Role
from onair.engine.admission import SYSTEM
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec
from onair.tasks import TaskService
from tests.conftest import Server
from tests.integration.helpers import schedule
from tests.integration.test_cli import onair
from tests.integration.test_user_api import cookie, someone


def every(start: datetime, seconds: float) -> Spec:
    return Spec("interval", {"every": seconds, "start": start.isoformat()})


async def test_the_simulation_lists_what_the_engine_then_runs(engine: Engine) -> None:
    service = TaskService(engine)

    base = datetime.now(UTC) + timedelta(seconds=0.5)
    a = await engine.add(NewTask(Spec("test"), every(base, 0.4), name="a"))
    b = await engine.add(NewTask(Spec("test"), every(base + timedelta(seconds=0.1), 0.6)))
    once = await engine.add(
        NewTask(Spec("test"), Spec("at", {"datetime": (base + timedelta(seconds=1)).isoformat()}))
    )
    paused = await engine.add(NewTask(Spec("test"), every(base, 0.3)))
    await engine.pause(paused.id, "Ola", "no host")
    await engine.skip(a.id, base + timedelta(seconds=0.8))
    await engine.move(b.id, base + timedelta(seconds=0.7), base + timedelta(seconds=1.05))
    start, end = datetime.now(UTC), base + timedelta(seconds=2)
    week = await service.simulate(SYSTEM, start, end)
    planned = sorted((o.task.id, o.due) for o in week.occurrences if o.outcome == "run")
    assert {o.outcome for o in week.occurrences if o.task.id == paused.id} == {"paused"}
    assert [o.due for o in week.occurrences if o.outcome == "skipped"] == [
        base + timedelta(seconds=0.8)
    ]
    assert (b.id, base + timedelta(seconds=1.05)) in planned
    assert (once.id, base + timedelta(seconds=1)) in planned

    await asyncio.sleep((end - datetime.now(UTC)).total_seconds() + 0.3)
    ran = []
    for task in (a, b, once, paused):
        runs, _ = await engine.runs(task.id, limit=100)
        ran += [(task.id, run.due_at) for run in runs if start <= run.due_at < end]
    assert sorted(ran) == planned
    for task in (a, b, paused):
        await engine.cancel(task.id)


async def test_the_apis_and_the_command_line_answer_it(
    shared_server: Server, client: httpx.AsyncClient
) -> None:
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
    condition = {"type": "interval", "parameters": {"every": "PT6H", "start": start.isoformat()}}
    task = await schedule(client, condition=condition)
    answer = await client.post("/tasks/simulate", json={"days": 1})
    assert answer.status_code == 200, answer.text
    mine = [r for r in answer.json()["runs"] if r["task"] == task]
    assert [r["due"] for r in mine] == [
        (start + timedelta(hours=6 * i)).isoformat() for i in range(4)
    ]
    assert {r["outcome"] for r in mine} == {"run"}
    assert (await client.post("/tasks/simulate", json={"days": 40})).status_code == 400
    admin = await client.post(
        "/api/v1/scheduler/simulate", headers=cookie(someone(), Role.ADMIN), json={"days": 1}
    )
    assert admin.status_code == 200, admin.text
    first = [r for r in admin.json()["runs"] if r["task"] == task][0]
    assert first["due"] == start.replace(tzinfo=UTC).isoformat()
    user = await client.post("/api/v1/scheduler/simulate", headers=cookie(someone()), json={})
    assert user.status_code == 200
    assert user.json()["runs"] == []  # a user sees only their own tasks
    shown = await asyncio.to_thread(onair, shared_server, "tasks", "simulate", "--days", "1")
    assert shown.returncode == 0, shown.stderr
    assert start.isoformat() in shown.stdout
    assert (await client.delete(f"/tasks/{task}")).status_code == 200

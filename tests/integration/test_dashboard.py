"""The dashboard end to end: a real `onair serve` and the system's headless Chromium driven by
Playwright. Tasks made through the API appear without a reload, a running task shows up live
and its cancel button cancels it, a phone-sized screen still reaches the button, and with auth
on a forged token sees nothing while a user sees only their own tasks.

With `ONAIR_TEST_SCREENSHOTS=1`, the SQLite run also writes the README's screenshots of each
page to docs/img/ (not by default, so that a test run leaves the working tree as it was).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.credit_recharge import CreditRecharge
from onair.store.database import Store
from onair.tasks import SchedulerService
from onair.wire import TaskType
from tests.conftest import Server
from tests.integration.helpers import body, schedule, wait_status
from tests.integration.test_events_stream import user_task
from tests.integration.tones import file_outputs, tone, upload

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
WAIT = 15_000
"""Milliseconds any page state may take to appear (Playwright's own deadline)."""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        await browser.close()


async def open_page(browser: Browser, url: str, width: int = 1200, height: int = 900) -> Page:
    page = await browser.new_page(viewport={"width": width, "height": height})
    await page.goto(url)
    return page


async def loaded(page: Page) -> None:
    await expect(page.locator("body[data-loaded]")).to_have_count(1, timeout=WAIT)
    await expect(page.locator("#live")).to_have_text("live", timeout=WAIT)


def at(hours: float) -> dict[str, object]:
    instant = datetime.now(UTC) + timedelta(hours=hours)
    return {"type": "at", "parameters": {"datetime": instant.replace(tzinfo=None).isoformat()}}


async def test_live_dashboard_and_cancel(
    server: Server, own_client: httpx.AsyncClient, browser: Browser, database_url: str
) -> None:
    shots = database_url.startswith("sqlite") and bool(os.environ.get("ONAIR_TEST_SCREENSHOTS"))
    client = own_client
    page = await open_page(browser, f"{server.url}/ui")
    await loaded(page)
    reloads = await page.evaluate("performance.getEntriesByType('navigation').length")

    # A task made through the API appears in the next 24 hours, without a reload.
    later = await schedule(client, condition=at(3))
    upcoming = page.locator(f"#upcoming li[data-task='{later}']")
    await expect(upcoming).to_have_count(1, timeout=WAIT)
    await expect(
        page.locator(f".row[data-group='System'] a.mark[data-tasks~='{later}']")
    ).to_have_count(1)  # its own mark, or in a cluster with marks close to it
    cron = {"type": "cron", "parameters": {"expression": "0 * * * *", "timezone": "Europe/Paris"}}
    hourly = await schedule(client, condition=cron)
    await expect(page.locator(f"#upcoming li[data-task='{hourly}']")).to_have_count(
        24, timeout=WAIT
    )
    failing = await schedule(client, parameters={"fail": "the transmitter is off"})
    failure = page.locator(f"#failures li[data-task='{failing}']")
    await expect(failure).to_contain_text(
        "Operation test failed: the transmitter is off.", timeout=WAIT
    )

    # A running task shows up live, with its elapsed time ticking.
    long = await schedule(client, parameters={"sleep": 30})
    row = page.locator(f"#running tr[data-task='{long}']")
    await expect(row).to_have_count(1, timeout=WAIT)
    await expect(row.locator("td.elapsed")).to_have_text(
        re.compile(r"^(\d+m )?\d+s$"), timeout=WAIT
    )
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == reloads
    # On a phone-sized screen the running task and its cancel button are still in view.
    phone = await open_page(browser, f"{server.url}/ui", width=390, height=844)
    await loaded(phone)
    phone_cancel = phone.locator(f"#running tr[data-task='{long}'] button.cancel")
    await expect(phone_cancel).to_be_in_viewport(timeout=WAIT)
    if shots:
        IMAGES.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=IMAGES / "dashboard.png", full_page=True)
        await phone.screenshot(path=IMAGES / "dashboard-phone.png", full_page=True)
    await phone.close()

    # Its cancel button cancels it through the API; the row goes away.
    await row.locator("button.cancel").click()
    await wait_status(client, long, "cancelled")
    await expect(row).to_have_count(0, timeout=WAIT)
    runs = (await client.get(f"/tasks/{long}/runs")).json()["runs"]
    assert [r["outcome"] for r in runs] == ["cancelled"]

    # The task page: rule, next instants with the zone's offset, runs with their lateness.
    series = await schedule(client, condition={"type": "interval", "parameters": {"every": "PT1S"}})
    await with_runs(client, series, 2)
    task = await open_page(browser, f"{server.url}/ui/tasks/{series}")
    await loaded(task)
    await expect(task.locator("#runs tr")).not_to_have_count(0, timeout=WAIT)
    assert "ms" in (await task.locator("#runs td.lateness").first.inner_text())
    await expect(task.locator("#next tr")).to_have_count(10)
    await expect(task.locator("#rule")).to_contain_text('"every": "PT1S"')
    await expect(task.locator("#rule-words")).to_have_text("every 1 second, UTC")
    count = await task.locator("#runs tr").count()
    await expect(task.locator("#runs tr")).not_to_have_count(count, timeout=WAIT)  # live
    await task.locator("#cancel").click()
    await wait_status(client, series, "cancelled")
    await expect(task.locator("#task-name")).to_contain_text("cancelled", timeout=WAIT)
    paris = await open_page(browser, f"{server.url}/ui/tasks/{hourly}")
    await loaded(paris)
    await expect(paris.locator("#next tr").first).to_contain_text("+01:00")
    if shots:
        await paris.screenshot(path=IMAGES / "task.png", full_page=True)
        await task.screenshot(path=IMAGES / "task-runs.png", full_page=True)


async def with_runs(client: httpx.AsyncClient, task: str, count: int) -> None:
    """Wait until `task` has had `count` runs."""
    async with asyncio.timeout(15):
        while (await client.get(f"/tasks/{task}/runs")).json()["count"] < count:
            await asyncio.sleep(0.05)


async def test_auth_forged_token_sees_nothing(
    start_server: Callable[..., Server], database_url: str, browser: Browser
) -> None:
    server = start_server(database_url, ONAIR__AUTH__PROTECT_TASKS_API="true")
    admin = {
        "Authorization": f"Bearer {create_token('root', role=Role.ADMIN, settings=AuthSettings())}"
    }
    alice = f"alice-{datetime.now(UTC).timestamp():.0f}"
    mine = await user_task(server, alice)
    async with server.client() as client:
        created = await client.post("/tasks", json=body(condition=at(2)), headers=admin)
        assert created.status_code == 201
        system = created.json()["task"]["id"]

    page = await open_page(browser, f"{server.url}/ui")
    await expect(page.locator("#login")).to_be_visible(timeout=WAIT)
    assert await page.locator("#upcoming li").count() == 0

    forged = create_token("root", role=Role.ADMIN, settings=AuthSettings(secret="x" * 40))
    await page.fill("#token", forged)
    await page.click("#login button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("This token was refused.", timeout=WAIT)
    await expect(page.locator("#main")).to_be_hidden()
    assert await page.locator("#upcoming li").count() == 0

    await page.fill("#token", create_token(alice, settings=AuthSettings()))
    await page.click("#login button[type=submit]")
    await loaded(page)
    await expect(page.locator("#who")).to_contain_text(alice)
    # Alice's task is 30 days away: not in the next 24 hours, but its page is hers.
    assert await page.locator(f"[data-task='{system}']").count() == 0
    # Pages opened in the same tab keep the token (sessionStorage is per tab).
    await page.goto(f"{server.url}/ui/tasks/{system}")
    await expect(page.locator("#task-missing")).to_be_visible(timeout=WAIT)
    await page.goto(f"{server.url}/ui/tasks/{mine}")
    await loaded(page)
    await expect(page.locator("#task-name")).to_contain_text("pending")
    await page.locator("#cancel").click()  # through the user API, with her rights
    await expect(page.locator("#task-name")).to_contain_text("cancelled", timeout=WAIT)

    await page.goto(f"{server.url}/ui")
    await loaded(page)
    await page.click("#signout")
    await expect(page.locator("#login")).to_be_visible(timeout=WAIT)
    await page.fill("#token", admin["Authorization"].removeprefix("Bearer "))
    await page.click("#login button[type=submit]")
    await loaded(page)
    await expect(page.locator(f"#upcoming li[data-task='{system}']")).to_have_count(1)


async def test_week_view_and_pausing_and_skipping_on_the_task_page(
    server: Server, own_client: httpx.AsyncClient, browser: Browser
) -> None:
    client = own_client
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0, tzinfo=None
    )
    daily = {
        "type": "recurring",
        "parameters": {"start": tomorrow.isoformat(), "frequency": "daily"},
    }
    show = await schedule(client, condition=daily)
    other = await schedule(client, condition=daily)
    assert (await client.post(f"/tasks/{other}/pause", json={"note": "holiday"})).status_code == 200
    skipped = tomorrow + timedelta(days=2)
    answer = await client.post(f"/tasks/{show}/skip", json={"at": skipped.isoformat()})
    assert answer.status_code == 200, answer.text

    week = await open_page(browser, f"{server.url}/ui/week")
    await loaded(week)
    end = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=7)
    days = sum(1 for k in range(8) if tomorrow + timedelta(days=k) < end)  # 6 or 7
    chips = week.locator(f"a.chip[data-task='{show}']")
    await expect(chips).to_have_count(days, timeout=WAIT)  # one of them marked skipped
    await expect(week.locator(f"a.chip[data-task='{show}'][data-outcome='skipped']")).to_have_count(
        1
    )
    await expect(week.locator(f"a.chip[data-task='{other}'][data-outcome='paused']")).to_have_count(
        days
    )
    await expect(week.locator("#conflicts-none")).to_be_visible()

    # The task page pauses with a note, resumes, and skips one of its next instants.
    page = await open_page(browser, f"{server.url}/ui/tasks/{show}")
    await loaded(page)
    await page.locator("#pause-note").fill("studio closed")
    await page.locator("#pause").click()
    await expect(page.locator("#paused")).to_contain_text("studio closed", timeout=WAIT)
    assert (await client.get(f"/tasks/{show}")).json()["paused"]["note"] == "studio closed"
    await page.locator("#resume").click()
    await expect(page.locator("#paused")).to_be_hidden(timeout=WAIT)
    assert (await client.get(f"/tasks/{show}")).json()["paused"] is None
    first = page.locator("#next button.skip").first
    at = await first.get_attribute("data-at")
    await first.click()
    await expect(page.locator("#changes li")).to_have_count(2, timeout=WAIT)
    changes = (await client.get(f"/tasks/{show}")).json()["changes"]
    assert at is not None
    assert datetime.fromisoformat(at).replace(tzinfo=None).isoformat() in changes["skipped"]


@pytest.fixture(scope="module")
def operator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One protected node on SQLite for the tests below (what they check is the pages', not
    the database's), with a file output, no daily recharge and the dashboard in Kolkata's
    zone (+05:30 all year)."""
    directory = tmp_path_factory.mktemp("operator")
    server = Server(
        directory,
        {
            "ONAIR__STORE__URL": f"sqlite:///{directory / 'operator.db'}",
            "ONAIR__AUTH__PROTECT_TASKS_API": "true",
            "ONAIR__AUDIO__OUTPUTS": file_outputs(directory, "default"),
            "ONAIR__CREDITS__DAILY_RECHARGE": "false",
            "ONAIR__UI__TIMEZONE": "Asia/Kolkata",
        },
    )
    server.start()
    yield server
    server.stop()


async def test_documentation_pages_render_with_the_network_unplugged(
    operator_server: Server, browser: Browser
) -> None:
    """Swagger UI and ReDoc of both surfaces render in Chromium when every request to
    another host is refused (a machine without internet): they are served by the node."""
    server = operator_server
    own = f"127.0.0.1:{server.port}"
    elsewhere: list[str] = []

    async def only_the_node(route: Route) -> None:
        if httpx.URL(route.request.url).netloc.decode() == own:
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    context = await browser.new_context()
    await context.route("**/*", only_the_node)
    page = await context.new_page()
    for prefix, title in (("", "onair"), ("/api/v1", "onair user API")):
        await page.goto(f"{server.url}{prefix}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(title, timeout=WAIT)
        operations = page.locator(".swagger-ui .opblock")
        await expect(operations.first).to_be_visible(timeout=WAIT)
        assert await operations.count() > 5
    # ReDoc once (its pages of both surfaces are the same template; their files are checked
    # over HTTP in test_tasks_api.py).
    await page.goto(f"{server.url}/redoc")
    await expect(page.locator("h1").first).to_contain_text("onair", timeout=WAIT)
    await context.close()
    # The one request elsewhere is ReDoc's "API docs by Redocly" badge, an image in its
    # sidebar; refused, the page is whole all the same.
    assert set(elsewhere) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, elsewhere


async def named_task(server: Server, owner: str | None, name: str, hours: float) -> str:
    """A task of `owner` (None: the system's) named `name`, `hours` from now, made on the
    server's database without a worker."""
    async with Store(server.env["ONAIR__STORE__URL"]) as store:
        scheduler = SchedulerService(Engine(store, Registry([CreditRecharge(Accounts(store))])))
        task = await scheduler.create_task(
            name=name,
            task_type=TaskType.CREDIT_RECHARGE,
            scheduled_at=datetime.now(UTC) + timedelta(hours=hours),
            parameters={"user_id": owner},
            user_id=owner,
        )
    return str(task.id)


async def test_an_operator_searches_filters_by_owner_and_reads_names(
    operator_server: Server, tmp_path: Path, browser: Browser
) -> None:
    """Owner column and filter, search by name, marks that never overlap on a phone, the
    sound's name on a task's page, nothing but "No such task" for a missing one, and every
    time in the station's zone."""
    server = operator_server
    alice, bob = "alice", "bob"
    await named_task(server, alice, "Morning news", 2)
    await named_task(server, alice, "Evening news", 5)
    await named_task(server, bob, "Jingle", 3)
    bunch = [await named_task(server, None, f"Top-up {i}", 10 + i / 60) for i in range(6)]
    async with server.client() as client:
        headers = {"Authorization": f"Bearer {create_token(alice, settings=AuthSettings())}"}
        sound = await upload(client, headers, tone(tmp_path / "beep.wav", 0.2), "Morning beep")
        created = await client.post(
            "/api/v1/scheduler/tasks",
            headers=headers,
            json={
                "name": "Beep",
                "task_type": "play_sound",
                "scheduled_at": (datetime.now(UTC) + timedelta(hours=6)).isoformat(),
                "parameters": {"sound_id": sound["id"]},
            },
        )
        assert created.status_code == 201, created.text
        beep = created.json()["id"]
    admin = create_token("root", role=Role.ADMIN, settings=AuthSettings())

    page = await open_page(browser, f"{server.url}/ui")
    await page.fill("#token", admin)
    await page.click("#login button[type=submit]")
    await loaded(page)
    upcoming = page.locator("#upcoming li")
    await expect(upcoming).to_have_count(10, timeout=WAIT)
    await expect(page.locator("#upcoming li[data-owner='alice'] .tag.owner")).to_have_text(
        ["alice", "alice", "alice"]
    )
    await expect(page.locator("#upcoming li[data-owner='system']")).to_have_count(6)

    # Every time in the station's zone, 24-hour, labelled; its UTC instant on hover.
    await expect(page.locator("#zone")).to_have_text("times in Asia/Kolkata")
    first = upcoming.first.locator("time")
    instant = datetime.fromisoformat(await first.get_attribute("datetime") or "")
    kolkata = instant.astimezone(ZoneInfo("Asia/Kolkata"))
    await expect(first).to_have_text(f"{kolkata:%Y-%m-%d %H:%M:%S}")
    await expect(first).to_have_attribute(
        "title", f"{instant.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )

    await page.fill("#search", "NEWS")
    await expect(upcoming).to_have_count(2)
    await expect(upcoming.locator("a")).to_have_text(["Morning news", "Evening news"])
    await expect(page.locator("#shown")).to_have_text("2 of 10 shown")
    await page.fill("#search", "")
    await page.select_option("#owner", "bob")
    await expect(upcoming).to_have_count(1)
    await expect(upcoming.locator("a")).to_have_text("Jingle")
    await page.select_option("#owner", "")

    # On a phone the six top-ups a minute apart are one mark with their count, and no two
    # marks of a row overlap.
    phone = await open_page(browser, f"{server.url}/ui", width=390, height=844)
    await phone.fill("#token", admin)  # a new tab: sessionStorage is per tab
    await phone.click("#login button[type=submit]")
    await loaded(phone)
    cluster = phone.locator(f".row[data-group='System'] a.mark[data-task='{bunch[0]}']")
    await expect(cluster).to_have_attribute("data-count", "6")
    await expect(cluster).to_have_text("6")
    assert (await cluster.get_attribute("data-tasks") or "").split() == bunch
    rows = await phone.evaluate(
        """() => [...document.querySelectorAll('.timeline .row')].map((row) =>
            [...row.querySelectorAll('.mark')].map((m) => m.getBoundingClientRect())
              .map((r) => [r.left, r.right]).sort((a, b) => a[0] - b[0]))"""
    )
    for marks in rows:
        for (_, right), (left, _) in itertools.pairwise(marks):
            assert left >= right, rows

    # A play task's page names its sound; a missing task's page shows nothing else.
    await page.goto(f"{server.url}/ui/tasks/{beep}")
    await loaded(page)
    parameters = page.locator("dd[data-fact='parameters']")
    await expect(parameters).to_have_text("sound “Morning beep”")
    assert await parameters.get_attribute("title") == f"sound {sound['id']}"
    await page.goto(f"{server.url}/ui/tasks/{uuid.uuid4()}")
    await expect(page.locator("#task-missing")).to_be_visible(timeout=WAIT)
    await expect(page.locator("#task-name")).to_have_text("No such task")
    await expect(page.locator("section.detail")).to_have_count(2)
    for section in await page.locator("section.detail").all():
        await expect(section).to_be_hidden()
    assert await page.locator("#facts dd").count() == 0

"""The `onair` command: serve a node, and manage tasks of a running service over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from onair.accounts.roles import Role
from onair.timeutil import human_duration

if TYPE_CHECKING:
    from onair.config import Settings


def _settings() -> Settings:
    """The node's settings, loaded only by the commands that need them: the commands that
    speak to a node over HTTP start faster without them."""
    from onair.config import Settings

    return Settings()


app = typer.Typer(help="onair: the scheduler for radio stations and audio platforms.")
tasks_app = typer.Typer(help="Tasks of a running service (over its HTTP API).")
db_app = typer.Typer(help="The database.")
app.add_typer(tasks_app, name="tasks")
app.add_typer(db_app, name="db")
token_app = typer.Typer(help="Tokens of the user-facing API, for development and tests.")
app.add_typer(token_app, name="token")
sounds_app = typer.Typer(help="The media library.")
app.add_typer(sounds_app, name="sounds")
console = Console()

UrlOption = Annotated[
    str | None,
    typer.Option("--url", envvar="ONAIR_URL", help="Service URL (default: from the settings)."),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ONAIR_TOKEN",
        help="An admin token, when the Tasks API is protected (`onair token create`).",
    ),
]


def main() -> None:
    app()


@app.command()
def serve() -> None:
    """Run a node: the HTTP API and the engine, on the configured store."""
    import uvicorn

    from onair.api.connections import uvicorn_options
    from onair.app import UnsafeExposure, configure_logging, create_app

    settings = _settings()
    configure_logging(settings)
    try:
        application = create_app(settings)
    except UnsafeExposure as refusal:
        console.print(f"[red]onair will not start: {refusal}[/red]")
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=settings.server.host,
        port=settings.server.port,
        forwarded_allow_ips=settings.server.trusted,
        timeout_graceful_shutdown=max(1, round(settings.server.shutdown_grace.total_seconds())),
        log_config=None,
        access_log=False,
        **uvicorn_options(settings.server),
    )


@app.command()
def settings(
    readme: Annotated[
        Path | None, typer.Option(help="Rewrite the settings table in this README instead.")
    ] = None,
    defaults: Annotated[
        bool, typer.Option(help="Print the defaults as the README's Markdown table instead.")
    ] = False,
) -> None:
    """Print the value of every setting this node would use, and where it comes from
    (`default`, `environment`, `.env`), secrets masked."""
    import os

    from dotenv import dotenv_values
    from pydantic import ValidationError

    from onair.config import effective_settings, settings_table

    if defaults:
        print(settings_table())
        return
    if readme is None:
        try:
            effective = _settings()
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            console.print(f"invalid settings: {problems}", style="red", markup=False)
            raise typer.Exit(1) from None
        dotenv = dotenv_values(".env") if Path(".env").is_file() else {}
        rows = effective_settings(effective, os.environ, dotenv)
        _emit(("variable", "value", "source"), rows)
        return
    marked = re.compile(r"(<!-- settings:begin.*?-->\n).*?(<!-- settings:end -->)", re.S)
    text = readme.read_text()
    if not marked.search(text):
        console.print(f"[red]{readme} has no settings:begin/settings:end markers[/red]")
        raise typer.Exit(1)
    readme.write_text(marked.sub(lambda m: m[1] + settings_table() + "\n" + m[2], text))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the configured database to the newest schema."""
    from onair.store.database import Store

    async def upgrade() -> None:
        settings = _settings()
        async with Store(settings.store.url) as store:
            await store.migrate()

    asyncio.run(upgrade())
    console.print("database is up to date")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The user id (the token's sub).")],
    role: Annotated[Role, typer.Option("--role", help="The token's role.")] = Role.USER,
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 30m, 1h, 7d...")] = "1h",
    private_key: Annotated[
        Path | None, typer.Option("--private-key", help="PEM private key (RS256 only).")
    ] = None,
) -> None:
    """Print a signed token, with the configured secret (HS256) or `--private-key` (RS256)."""
    from onair.accounts.tokens import create_token, parse_ttl

    try:
        token = create_token(
            user,
            role=role,
            ttl=parse_ttl(ttl),
            settings=_settings().auth,
            private_key=private_key,
        )
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    print(token)


@sounds_app.command("import")
def sounds_import(
    directory: Annotated[Path, typer.Argument(help="A folder of audio files (and subfolders).")],
    user: Annotated[
        str | None, typer.Option("--user", help="The owner (default: the system's sounds).")
    ] = None,
) -> None:
    """Add every audio file under DIRECTORY to the library of the configured store, each checked
    by decoding it; files that are not playable audio are listed and skipped (exit 1 if any)."""
    from rich.progress import Progress

    from onair.audio.library import Library
    from onair.audio.probe import UnsupportedAudio
    from onair.store.database import Store

    if not directory.is_dir():
        console.print(f"[red]{directory} is not a folder[/red]")
        raise typer.Exit(2)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))

    async def run() -> tuple[int, list[str]]:
        settings = _settings()
        imported, refused = 0, []
        async with Store(settings.store.url) as store:
            await store.migrate()
            library = Library(store, settings.audio.media_dir)
            with Progress(console=console) as progress:
                bar = progress.add_task("importing", total=len(files))
                for path in files:
                    progress.update(bar, description=path.name[:40])
                    try:
                        sound = await library.import_file(path, owner=user)
                        imported += 1
                        progress.console.print(
                            f"{sound.id}  {sound.duration_seconds:8.2f} s  {path}"
                        )
                    except UnsupportedAudio as error:
                        refused.append(f"{path}: {error.reason}")
                    progress.advance(bar)
        return imported, refused

    imported, refused = asyncio.run(run())
    for line in refused:
        console.print(f"[yellow]skipped {line}[/yellow]")
    console.print(f"imported {imported} sound(s), skipped {len(refused)}")
    if refused:
        raise typer.Exit(1)


def _client(url: str | None, token: str | None = None) -> httpx.Client:
    if url is None:
        server = _settings().server
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
        url = f"http://{host}:{server.port}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, timeout=30, headers=headers)


def _fail(response: httpx.Response) -> typer.Exit:
    """Print the service's error as one line and say how to exit; a 401 or 403 says which
    token is needed."""
    try:
        payload = response.json()
        message = payload.get("extra") or payload.get("detail")
    except (ValueError, AttributeError):
        message = response.text
    console.print(
        f"{response.status_code}: {_readable(message)}", style="red", markup=False, soft_wrap=True
    )
    if response.status_code in (401, 403):
        console.print(
            "[red]this needs an admin token: pass --token or set ONAIR_TOKEN "
            "(`onair token create --user NAME --role admin`, with the node's ONAIR__AUTH__*)"
            "[/red]"
        )
    return typer.Exit(1)


def _emit(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """A table on a terminal; tab-separated lines under a header elsewhere (a pipe, a file),
    whole values, never cut to a width."""
    if console.is_terminal:
        table = Table(*columns)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    print("\n".join("\t".join(row) for row in [columns, *rows]), flush=True)


def _readable(message: Any) -> str:
    """An error of either surface as one line: the Tasks API's `[{"message", "key"}]` and
    FastAPI's `[{"loc", "msg"}]` as `key: message; key: message`, anything else as text."""
    if isinstance(message, list):
        parts = []
        for problem in message:
            if not isinstance(problem, dict):
                parts.append(str(problem))
                continue
            text = problem.get("message") or problem.get("msg") or json.dumps(problem)
            key = problem.get("key")
            if key is None and isinstance(problem.get("loc"), list):
                key = ".".join(str(p) for p in problem["loc"] if p not in ("body", "query"))
            parts.append(f"{key}: {text}" if key else str(text))
        return "; ".join(parts)
    if isinstance(message, str):
        return " ".join(message.split())
    return json.dumps(message)


def _call(
    url: str | None, method: str, path: str, body: Any = None, token: str | None = None
) -> Any:
    """The JSON answer of the service, or exit 1 with its error message."""
    try:
        with _client(url, token) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as error:
        console.print(f"[red]cannot reach the service: {error}[/red]")
        raise typer.Exit(1) from error
    if response.is_error:
        raise _fail(response)
    return response.json() if response.content else None


@tasks_app.command("list")
def tasks_list(
    url: UrlOption = None,
    token: TokenOption = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Tasks shown with their name and next due (0: ids only).")
    ] = 50,
) -> None:
    """Tasks by status (running and pending first) with their name and next due instant, and
    how many there are of each status."""
    index = _call(url, "GET", "/tasks", token=token)
    order = ("running", "pending", "failed", "cancelled", "completed")
    ids = [(status, task_id) for status in order for task_id in index.get(status, [])]
    rows: list[tuple[str, ...]] = []
    if limit == 0:
        rows = list(ids)
    else:
        with _client(url, token) as client:
            for _, task_id in ids[:limit]:
                response = client.get(f"/tasks/{task_id}")
                if response.status_code == 404:  # removed meanwhile
                    continue
                if response.is_error:
                    raise _fail(response)
                task = response.json()
                due = _due(task["next"]) if task.get("next") else ""
                name = task.get("name") or task["task"]["operation"]["type"]
                rows.append((task["status"], name, due, task_id))
    _emit(("status", "id") if limit == 0 else ("status", "name", "next due", "id"), rows)
    more = f" (the first {limit} shown: --limit)" if 0 < limit < len(ids) else ""
    counts = ", ".join(f"{status}: {len(found)}" for status, found in index.items())
    console.print(counts + more)


@tasks_app.command("show")
def tasks_show(task_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
    """One task: its status, operation, condition and latest runs."""
    task = _call(url, "GET", f"/tasks/{task_id}", token=token)
    detail = _call(url, "GET", f"/tasks/{task['status']}/{task_id}", token=token)
    table = Table(show_header=False)
    table.add_row("id", task["task"]["id"])
    table.add_row("status", task["status"])
    table.add_row("operation", json.dumps(task["task"]["operation"]))
    table.add_row("condition", json.dumps(task["task"]["condition"]))
    table.add_row("rule", task.get("description") or "")
    table.add_row("dependencies", json.dumps(task["task"]["dependencies"]))
    table.add_row("next", _due(task.get("next")))
    if task.get("retry") is not None:
        table.add_row("retry", f"attempt due {_due(task['retry'])}")
    paused = task.get("paused")
    if paused:
        note = f": {paused['note']}" if paused["note"] else ""
        table.add_row("paused", f"since {paused['at']} by {paused['by']}{note}")
    changes = task.get("changes")
    if changes:
        moves = [f"moved {m['at']} to {m['to']}" for m in changes["moved"]]
        table.add_row("changes", "; ".join([f"skipped {s}" for s in changes["skipped"]] + moves))
    for key in ("scheduled", "started", "cancelled", "failed", "completed", "error", "result"):
        if key in detail:
            table.add_row(key, json.dumps(detail[key]) if key == "result" else str(detail[key]))
    console.print(table)
    runs = _call(url, "GET", f"/tasks/{task_id}/runs?limit=10", token=token)
    if runs["runs"]:
        history = Table("due (UTC)", "started", "lateness ms", "outcome", "error")
        for run in runs["runs"]:
            late = run["lateness"]
            history.add_row(
                run["due"],
                str(run["started"]),
                f"{late * 1000:.1f}" if late is not None else "",
                str(run["outcome"] or "running"),
                run["error"] or "",
            )
        console.print(history)


@tasks_app.command("schedule")
def tasks_schedule(
    operation: Annotated[str, typer.Argument(help="Operation type, e.g. test.")],
    parameters: Annotated[str, typer.Option(help="Operation parameters (JSON).")] = "{}",
    condition: Annotated[str, typer.Option(help="Condition type: now, at, ...")] = "now",
    condition_parameters: Annotated[
        str, typer.Option("--when", help="Condition parameters (JSON).")
    ] = "{}",
    dependencies: Annotated[str, typer.Option(help="{name: task id} (JSON).")] = "{}",
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Schedule a task."""
    try:
        body = {
            "operation": {"type": operation, "parameters": json.loads(parameters)},
            "condition": {"type": condition, "parameters": json.loads(condition_parameters)},
            "dependencies": json.loads(dependencies),
        }
    except json.JSONDecodeError as error:
        console.print(f"[red]not JSON: {error}[/red]")
        raise typer.Exit(2) from error
    created = _call(url, "POST", "/tasks", body, token=token)
    task_id = created["task"]["id"]
    task = _call(url, "GET", f"/tasks/{task_id}", token=token)
    if task.get("next") is not None:
        console.print(f"scheduled {task_id}, next due {_due(task['next'])}")
    else:  # a `now` task may have run already
        console.print(f"scheduled {task_id}, {task['status']}")


def _due(text: str | None) -> str:
    """A naive UTC instant of the Tasks API for people: `2030-01-01 00:00:00 UTC (in 3 years
    29 days)`, so that nobody has to guess its zone or do the arithmetic."""
    if text is None:
        return "none"
    instant = datetime.fromisoformat(text).replace(tzinfo=UTC)
    delta = instant - datetime.now(UTC)
    if abs(delta) < timedelta(seconds=1):
        when = "now"
    elif delta > timedelta(0):
        when = f"in {human_duration(delta)}"
    else:
        when = f"{human_duration(delta)} ago"
    return f"{instant:%Y-%m-%d %H:%M:%S} UTC ({when})"


@tasks_app.command("preview")
def tasks_preview(
    condition: Annotated[str, typer.Option(help="Condition type: at, cron, recurring, ...")],
    condition_parameters: Annotated[
        str, typer.Option("--when", help="Condition parameters (JSON).")
    ] = "{}",
    count: Annotated[int, typer.Option(min=1, max=500, help="How many instants.")] = 10,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """The next instants of a condition, as the service would run a task added now (asked of
    the service, so the rules and errors are the server's)."""
    try:
        parameters = json.loads(condition_parameters)
    except json.JSONDecodeError as error:
        console.print(f"[red]not JSON: {error}[/red]")
        raise typer.Exit(2) from error
    body = {"condition": {"type": condition, "parameters": parameters}, "count": count}
    answer = _call(url, "POST", "/tasks/preview", body, token=token)
    console.print(answer["description"])
    table = Table("#", "UTC", "local", "note")
    for number, instant in enumerate(answer["instants"], 1):
        table.add_row(str(number), instant["utc"], instant["local"], instant["note"] or "")
    console.print(table)
    if not answer["instants"]:
        console.print("the rule has no occurrence left")


WATCH_COLUMNS = ("state", "when (UTC)", "task", "operation", "id")


def _watch_rows(overview: dict[str, Any], limit: int) -> list[tuple[str, ...]]:
    """Running tasks first (with elapsed time), then the next ones in the coming 24 hours."""
    now = datetime.fromisoformat(overview["now"])
    rows: list[tuple[str, ...]] = []
    for task in overview["running"]:
        started = datetime.fromisoformat(task["started"]) if task["started"] else now
        elapsed = int((now - started).total_seconds())
        when = f"{started:%H:%M:%S} +{elapsed // 60}m{elapsed % 60:02d}s"
        rows.append(("running", when, task["name"], task["operation"], task["id"]))
    for item in overview["timeline"][:limit]:
        at = datetime.fromisoformat(item["at"])
        rows.append(
            ("upcoming", f"{at:%m-%d %H:%M:%S}", item["name"], item["operation"], item["id"])
        )
    return rows


def _watch_table(overview: dict[str, Any], limit: int) -> Table:
    now = datetime.fromisoformat(overview["now"])
    table = Table(*WATCH_COLUMNS, title=f"onair at {now:%H:%M:%S}")
    for state, *rest in _watch_rows(overview, limit):
        table.add_row(f"[green]{state}[/green]" if state == "running" else state, *rest)
    return table


def _plain(overview: dict[str, Any], limit: int) -> list[str]:
    """The watch's rows as tab-separated lines under a `# onair at` line, for a pipe or a
    file: no box drawing, no colour, one task per line (`grep`, `cut -f`)."""
    now = datetime.fromisoformat(overview["now"])
    return [f"# onair at {now:%Y-%m-%d %H:%M:%S} UTC"] + [
        "\t".join(row) for row in _watch_rows(overview, limit)
    ]


@tasks_app.command("watch")
def tasks_watch(
    url: UrlOption = None,
    token: TokenOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Upcoming runs shown.")] = 20,
    once: Annotated[bool, typer.Option(help="Print the table once and exit.")] = False,
) -> None:
    """A live table of running and upcoming tasks, refreshed every second (from the data the
    dashboard reads, `GET /ui/api/overview`). Not on a terminal (a pipe, a file), it prints
    plain tab-separated lines instead, again each time what it shows changes."""
    import time

    from rich.live import Live

    def fetch(client: httpx.Client) -> dict[str, Any]:
        try:
            response = client.get("/ui/api/overview")
        except httpx.HTTPError as error:
            console.print(f"cannot reach the service: {error}", style="red")
            raise typer.Exit(1) from error
        if response.is_error:
            raise _fail(response)
        return dict(response.json())

    with _client(url, token) as client:
        if not console.is_terminal:
            shown: list[str] = []
            while True:
                lines = _plain(fetch(client), limit)
                if lines[1:] != shown or once:
                    print("\n".join(lines), flush=True)
                    shown = lines[1:]
                if once:
                    return
                try:
                    time.sleep(1)
                except KeyboardInterrupt:
                    return
        if once:
            console.print(_watch_table(fetch(client), limit))
            return
        with Live(_watch_table(fetch(client), limit), console=console, auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(1)  # a polling view: one request a second
                    live.update(_watch_table(fetch(client), limit), refresh=True)
            except KeyboardInterrupt:
                pass


@tasks_app.command("cancel")
def tasks_cancel(task_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
    """Cancel a pending or running task."""
    cancelled = _call(url, "DELETE", f"/tasks/{task_id}", token=token)
    console.print(f"cancelled {cancelled['task']['id']} at {cancelled['cancelled']}")


@tasks_app.command("pause")
def tasks_pause(
    task_id: str,
    note: Annotated[str | None, typer.Option(help="Why it is paused (shown everywhere).")] = None,
    by: Annotated[str | None, typer.Option(help="Who pauses it (default: the caller).")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Pause a task: nothing of it runs until it is resumed (a run in progress goes on)."""
    body = {key: value for key, value in (("note", note), ("by", by)) if value is not None}
    paused = _call(url, "POST", f"/tasks/{task_id}/pause", body, token=token)["paused"]
    console.print(f"paused {task_id} at {paused['at']} by {paused['by']}")


@tasks_app.command("resume")
def tasks_resume(task_id: str, url: UrlOption = None, token: TokenOption = None) -> None:
    """Resume a paused task (its policy's `resume`: drop what it missed, or run the latest)."""
    resumed = _call(url, "POST", f"/tasks/{task_id}/resume", token=token)
    console.print(f"resumed {task_id}; next run at {resumed['next']}")


@tasks_app.command("skip")
def tasks_skip(
    task_id: str,
    at: Annotated[str, typer.Argument(help="The occurrence (ISO 8601; naive: UTC).")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Skip one occurrence of a series; the rest is unchanged."""
    task = _call(url, "POST", f"/tasks/{task_id}/skip", {"at": at}, token=token)
    console.print(f"skipped {at} of {task_id}; next run at {task['next']}")


@tasks_app.command("move")
def tasks_move(
    task_id: str,
    at: Annotated[str, typer.Argument(help="The occurrence (ISO 8601; naive: UTC).")],
    to: Annotated[str, typer.Argument(help="Its new instant (ISO 8601; naive: UTC).")],
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Move one occurrence of a series to another instant; the rest is unchanged."""
    task = _call(url, "POST", f"/tasks/{task_id}/move", {"at": at, "to": to}, token=token)
    console.print(f"moved {at} of {task_id} to {to}; next run at {task['next']}")


@tasks_app.command("simulate")
def tasks_simulate(
    days: Annotated[float, typer.Option(min=0.01, max=31, help="How long a window.")] = 7,
    start: Annotated[str | None, typer.Option(help="Its start (ISO 8601, UTC).")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Every run the caller's tasks would have in a window, with the policies applied, and
    what would conflict (asked of the service: nothing is stored or run)."""
    body: dict[str, Any] = {"days": days} | ({"start": start} if start else {})
    answer = _call(url, "POST", "/tasks/simulate", body, token=token)
    table = Table("due (UTC)", "local", "task", "operation", "outcome", "note")
    for run in answer["runs"]:
        outcome = run["outcome"] if run["outcome"] == "run" else f"[yellow]{run['outcome']}[/]"
        table.add_row(
            run["due"], run["local"], run["name"], run["operation"], outcome, run["note"] or ""
        )
    console.print(table)
    for conflict in answer["conflicts"]:
        console.print(
            f"[red]conflict on {conflict['resource']} at {conflict['at']}: "
            f"{conflict['first']} and {conflict['second']}[/red]"
        )
    if answer["truncated"]:
        console.print("[yellow]some tasks or occurrences were left out (bounds)[/yellow]")


@tasks_app.command("feed")
def tasks_feed(
    revoke: Annotated[bool, typer.Option(help="Revoke the feed's URL instead.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """A new secret URL of the caller's iCalendar feed (the one before stops working), or
    with --revoke, none."""
    if revoke:
        _call(url, "DELETE", "/tasks/feed", token=token)
        console.print("revoked: the feed's URL no longer answers")
        return
    console.print(_call(url, "POST", "/tasks/feed", token=token)["url"], soft_wrap=True)


@tasks_app.command("clean")
def tasks_clean(
    older_than: Annotated[
        str | None, typer.Option(help="Only tasks finished longer ago (ISO 8601, e.g. P7D).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Remove finished tasks that nothing depends on."""
    strategy = (
        {"type": "timedelta", "parameters": {"delta": older_than}}
        if older_than
        else {"type": "all", "parameters": {}}
    )
    result = _call(url, "POST", "/tasks/clean", {"strategy": strategy}, token=token)
    console.print(f"removed {len(result['removed'])} tasks")


@app.command("asrun")
def asrun_export(
    since: Annotated[
        str | None,
        typer.Option("--from", help="Start of the range, ISO 8601 (naive: UTC; default 24 h ago)."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="End of the range, excluded (default: now).")
    ] = None,
    form: Annotated[
        str, typer.Option("--format", help="csv (the documented columns) or json.")
    ] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Export the station's as-run log for a time range: what went on air, when its first
    audio left, how late, how long, and how it ended (`GET /asrun`)."""
    if form not in ("csv", "json"):
        console.print(f"[red]--format must be csv or json, not {form!r}[/red]")
        raise typer.Exit(2)
    params = {
        "format": form,
        **({"from": since} if since else {}),
        **({"to": until} if until else {}),
    }
    try:
        with _client(url, token) as client:
            if form == "csv":
                response = client.get("/asrun", params=params)
                if response.is_error:
                    raise _fail(response)
                text = response.text
            else:
                items: list[Any] = []
                while True:
                    response = client.get(
                        "/asrun", params={**params, "limit": 1000, "offset": len(items)}
                    )
                    if response.is_error:
                        raise _fail(response)
                    page = response.json()
                    items.extend(page["items"])
                    if not page["items"] or len(items) >= page["total"]:
                        break
                text = json.dumps(items, indent=2) + "\n"
    except httpx.HTTPError as error:
        console.print(f"[red]cannot reach the service: {error}[/red]")
        raise typer.Exit(1) from error
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")

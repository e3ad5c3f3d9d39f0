"""The composition root: the one place that builds a node (store, engine, operations, services)
from the settings, starts it, and serves it over HTTP or embeds it in a Python program.
Nothing is built at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Authenticator
from onair.api import create_api
from onair.audio.asrun import AsRun
from onair.audio.library import Library
from onair.audio.outputs import default_outputs
from onair.audio.player import Player
from onair.broadcast.clients import Emilounge, Emirecords, Emishows, Emistream
from onair.broadcast.synchronizer import Synchronizer
from onair.config import Settings, exposed
from onair.engine.cleaning import Cleaner
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.node import Node
from onair.operations.credit_recharge import CreditRecharge, ensure_daily_recharge
from onair.operations.play import PlayPlaylist, PlaySound
from onair.operations.readiness import CheckBroadcast, ReadinessPlanner
from onair.operations.stream import Stream
from onair.operations.test import Test
from onair.operations.webhook import Alerter, DeliverWebhook
from onair.store.database import Store
from onair.tasks import SchedulerService
from onair.timeutil import Clock, SystemClock

log = logging.getLogger("onair")


class UnsafeExposure(Exception):
    """A node that would be reachable beyond this machine with a door left open; the message
    names the setting to change."""


def build(settings: Settings, clock: Clock | None = None) -> Node:
    """Everything a node needs, wired but not started."""
    clock = clock or SystemClock()
    store = Store(settings.store.url, pool_size=settings.store.pool_size)
    accounts = Accounts(store, settings.credits.plan, clock)
    emishows, emirecords = Emishows(settings.emishows), Emirecords(settings.emirecords)
    emilounge = Emilounge(settings.emilounge)  # always, as the reference b445346 does
    emistream = Emistream(settings.emistream)
    streaming, srt = settings.operations.stream, settings.emistream.srt
    # The engine first: the as-run log announces on its events, and the audio operations that
    # report to the log join its registry after it.
    registry = Registry([Test(), CreditRecharge(accounts), DeliverWebhook(settings.alerts)])
    engine = Engine(store, registry, clock=clock, settings=settings.engine)
    asrun = AsRun(store, engine.events, engine.node)
    stream = Stream(
        emishows, emirecords, emilounge, emistream, streaming, srt.host, srt.port, asrun
    )
    audio = settings.audio
    outputs, audio_warning = audio.outputs, None
    if not outputs:
        found = default_outputs()
        outputs, audio_warning = found.outputs, found.warning
    player = Player(outputs, busy_timeout=audio.busy_timeout.total_seconds(), clock=clock)
    library = Library(store, audio.media_dir, clock)
    play = (library, player, accounts, audio.cost, audio.seed, asrun)
    checks = CheckBroadcast(stream, settings.readiness, engine, streaming.lead)
    for operation in (stream, PlaySound(*play), PlayPlaylist(*play), checks):
        registry.add(operation)
    synchronizer = Synchronizer(
        engine, emishows, store, settings.synchronizer, streaming.lead, clock
    )
    return Node(
        settings=settings,
        store=store,
        registry=registry,
        engine=engine,
        tasks=SchedulerService(engine, settings.retries),
        accounts=accounts,
        authenticator=Authenticator(settings.auth),
        library=library,
        player=player,
        synchronizer=synchronizer,
        asrun=asrun,
        neighbours=(emishows, emirecords, emilounge, emistream),
        audio_warning=audio_warning,
    )


@contextlib.asynccontextmanager
async def running(node: Node) -> AsyncIterator[Node]:
    """Start the node's parts in order; they stop in reverse, even on error."""
    settings = node.settings
    async with contextlib.AsyncExitStack() as stack:
        for client in node.neighbours:  # closed last, once nothing uses them
            await stack.enter_async_context(client)
        await stack.enter_async_context(node.store)
        await node.store.migrate()
        for partial in await asyncio.to_thread(node.library.remove_partial_uploads):
            logging.getLogger("onair.audio").warning(
                "removed %s, a partial upload left by a node that stopped", partial
            )
        await stack.enter_async_context(node.engine)
        # Entered after the engine, so it stops first: runs still playing at shutdown end as
        # failed ("the player has shut down") with their ffmpeg reaped, before the engine stops.
        if node.audio_warning:
            logging.getLogger("onair.audio").warning(node.audio_warning)
        await stack.enter_async_context(node.player)
        # After the engine, so that it stops first, once the alerts it was adding are stored.
        await stack.enter_async_context(Alerter(node.engine, node.asrun, settings.alerts))
        if settings.readiness.enabled:
            lead = settings.operations.stream.lead
            await stack.enter_async_context(ReadinessPlanner(node.engine, settings.readiness, lead))
        if settings.credits.daily_recharge:
            await ensure_daily_recharge(node.engine)
        if settings.cleaner.enabled:
            await stack.enter_async_context(
                Cleaner(
                    _expire(node),
                    node.engine.clock,
                    settings.cleaner.reference,
                    settings.cleaner.interval,
                    settings.cleaner.retention,
                )
            )
        if settings.synchronizer.enabled:
            await stack.enter_async_context(node.synchronizer)
        yield node


def _expire(node: Node) -> Callable[[datetime], Awaitable[object]]:
    """The retention of everything a node keeps: finished tasks, runs, the as-run log."""

    async def expire(before: datetime) -> object:
        tasks, runs = await node.engine.expire(before)
        return tasks, runs, await node.asrun.expire(before)

    return expire


def check_exposure(settings: Settings, authenticator: Authenticator) -> None:
    """Refuse a node that would be reachable beyond this machine with the Tasks API open or
    tokens checked with the public development secret (docs/auth.md); log the explicit
    opt-out of a private network.

    Raises:
        UnsafeExposure: with one message naming the setting to change.
    """
    server, auth = settings.server, settings.auth
    where = (
        f"bound to {server.host} (ONAIR__SERVER__HOST)"
        if not server.allowed_hosts
        else f"answering to {', '.join(server.allowed_hosts)} (ONAIR__SERVER__ALLOWED_HOSTS)"
    )
    if not exposed(server):
        authenticator.warn_if_insecure()
        return
    if authenticator.development_secret:
        raise UnsafeExposure(
            f"onair is {where} and would check tokens with the public development secret: "
            "anyone could mint an admin token. Set ONAIR__AUTH__SECRET (e.g. `openssl rand "
            "-hex 32`), or RS256 with ONAIR__AUTH__PUBLIC_KEY, or bind to 127.0.0.1."
        )
    if not auth.protect_tasks_api and not auth.open_tasks_api:
        raise UnsafeExposure(
            f"onair is {where} with the Tasks API (/tasks) open to anyone who reaches it. Set "
            "ONAIR__AUTH__PROTECT_TASKS_API=true (admin tokens), or ONAIR__AUTH__OPEN_TASKS_API"
            "=true to keep it open on a private network you trust, or bind to 127.0.0.1."
        )
    if not auth.protect_tasks_api:
        log.warning(
            "the Tasks API is open without a token while onair is %s "
            "(ONAIR__AUTH__OPEN_TASKS_API=true): anyone who reaches it acts as the station",
            where,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The HTTP application of one node, on `settings` (read from the environment if None).

    Raises: UnsafeExposure, as `check_exposure`."""
    node = build(settings or Settings())
    check_exposure(node.settings, node.authenticator)
    return create_api(node, running)


class Scheduler(SchedulerService):
    """The in-process service: `async with Scheduler() as scheduler:` builds a node, opens its
    store (SQLite under ./data by default), migrates it, runs the engine and the node's
    start-up (the daily recharge system task included) until the block ends. No web server.

    `settings` default to the environment's (`ONAIR__*`), without the broadcast synchronizer:
    an embedded scheduler has no station schedule to follow unless it is given settings that
    say so. `database_url` overrides the store. `node` has every part (`node.accounts`: users
    and their credits; `node.library`: sounds and playlists).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if settings is None:
            settings = Settings()
            quiet = settings.synchronizer.model_copy(update={"enabled": False})
            settings = settings.model_copy(update={"synchronizer": quiet})
        if database_url is not None:
            store = settings.store.model_copy(update={"url": database_url})
            settings = settings.model_copy(update={"store": store})
        self.node = build(settings, clock)
        super().__init__(self.node.engine, settings.retries)
        self.accounts: Accounts = self.node.accounts
        self.library: Library = self.node.library
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Scheduler:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(running(self.node))
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.__aexit__(*exc)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log.format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log.level)

"""The composition root: the one place that builds the store, the engine, the operations and
the HTTP application from the settings. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Authenticator
from onair.api import create_api
from onair.api.events import EventLog, Owners
from onair.api.metrics import Metrics
from onair.audio.library import Library
from onair.audio.outputs import default_outputs
from onair.audio.player import Player
from onair.broadcast.clients import Emilounge, Emirecords, Emishows, Emistream
from onair.broadcast.synchronizer import Synchronizer
from onair.config import Settings
from onair.engine.cleaning import Cleaner
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.operations.credit_recharge import CreditRecharge, ensure_daily_recharge
from onair.operations.play import PlayChecks, PlayPlaylist, PlaySound
from onair.operations.stream import Stream
from onair.operations.test import Test
from onair.store.database import Store
from onair.timeutil import Clock, SystemClock


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: Registry
    engine: Engine
    accounts: Accounts
    neighbours: tuple[Emishows, Emirecords, Emilounge, Emistream]
    synchronizer: Synchronizer
    library: Library
    player: Player
    play_checks: PlayChecks
    audio_warning: str | None = None


def build(settings: Settings, clock: Clock | None = None) -> Services:
    """Everything a node needs, wired but not started."""
    clock = clock or SystemClock()
    store = Store(settings.store.url, pool_size=settings.store.pool_size)
    accounts = Accounts(store, settings.credits.plan, clock)
    emishows, emirecords = Emishows(settings.emishows), Emirecords(settings.emirecords)
    emilounge = Emilounge(settings.emilounge)  # always, as the reference b445346 does
    emistream = Emistream(settings.emistream)
    streaming, srt = settings.operations.stream, settings.emistream.srt
    stream = Stream(emishows, emirecords, emilounge, emistream, streaming, srt.host, srt.port)
    audio = settings.audio
    outputs, audio_warning = audio.outputs, None
    if not outputs:
        found = default_outputs()
        outputs, audio_warning = found.outputs, found.warning
    player = Player(outputs, busy_timeout=audio.busy_timeout.total_seconds(), clock=clock)
    library = Library(store, audio.media_dir, clock)
    play = (library, player, store, audio.cost, audio.seed)
    registry = Registry(
        [Test(), CreditRecharge(accounts), stream, PlaySound(*play), PlayPlaylist(*play)]
    )
    engine = Engine(store, registry, clock=clock, settings=settings.engine)
    synchronizer = Synchronizer(
        engine, emishows, store, settings.synchronizer, streaming.lead, clock
    )
    neighbours = (emishows, emirecords, emilounge, emistream)
    return Services(
        settings,
        store,
        registry,
        engine,
        accounts,
        neighbours,
        synchronizer,
        library,
        player,
        PlayChecks(library, player, store),
        audio_warning,
    )


@contextlib.asynccontextmanager
async def running(services: Services) -> AsyncIterator[Services]:
    """Start the node's parts in order; they stop in reverse, even on error."""
    settings = services.settings
    async with contextlib.AsyncExitStack() as stack:
        for client in services.neighbours:  # closed last, once nothing uses them
            await stack.enter_async_context(client)
        await stack.enter_async_context(services.store)
        await services.store.migrate()
        await stack.enter_async_context(services.engine)
        # Entered after the engine, so it stops first: runs still playing at shutdown end as
        # failed ("the player has shut down") with their ffmpeg reaped, before the engine stops.
        if services.audio_warning:
            logging.getLogger("onair.audio").warning(services.audio_warning)
        await stack.enter_async_context(services.player)
        if settings.credits.daily_recharge:
            await ensure_daily_recharge(services.engine)
        if settings.cleaner.enabled:
            await stack.enter_async_context(
                Cleaner(
                    services.engine.expire,
                    services.engine.clock,
                    settings.cleaner.reference,
                    settings.cleaner.interval,
                    settings.cleaner.retention,
                )
            )
        if settings.synchronizer.enabled:
            await stack.enter_async_context(services.synchronizer)
        yield services


def create_app(settings: Settings | None = None) -> FastAPI:
    """The HTTP application of one node, on `settings` (read from the environment if None)."""
    services = build(settings or Settings())
    # Watchers of the engine's events subscribe before it starts, so they miss no run.
    metrics = Metrics(services.engine)
    services.synchronizer.watch(metrics.cycle)
    event_log = EventLog(services.engine, services.settings.events)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(services):
            app.state.engine = services.engine
            app.state.services = services
            app.state.metrics = metrics
            app.state.event_log = event_log
            app.state.owners = Owners(services.engine)
            app.state.authenticator = Authenticator(services.settings.auth)
            app.state.authenticator.warn_if_insecure()
            yield

    limits = services.settings
    return create_api(
        lifespan,
        max_body_size=limits.server.max_body_size,
        larger_bodies={"/api/v1/sounds": limits.audio.max_upload_size},
    )


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

"""What a node is made of: the parts the composition root (`onair.app.build`) wires together and
the surfaces (the HTTP API, the embedded `Scheduler`) use. Built once per node, never at import
time."""

from __future__ import annotations

from dataclasses import dataclass

from onair.accounts.credits import Accounts
from onair.accounts.tokens import Authenticator
from onair.audio.asrun import AsRun
from onair.audio.library import Library
from onair.audio.player import Player
from onair.broadcast.clients import Emilounge, Emirecords, Emishows, Emistream
from onair.broadcast.synchronizer import Synchronizer
from onair.config import Settings
from onair.engine.core import Engine
from onair.engine.registry import Registry
from onair.store.database import Store
from onair.tasks import SchedulerService


@dataclass(frozen=True, kw_only=True)
class Node:
    """One node's parts, wired but not started (`onair.app.running` starts them in order)."""

    settings: Settings
    store: Store
    registry: Registry
    engine: Engine
    tasks: SchedulerService
    """The one front door to the tasks, for every surface."""
    accounts: Accounts
    authenticator: Authenticator
    library: Library
    player: Player
    synchronizer: Synchronizer
    asrun: AsRun
    """The as-run log: what went on air, and when its first audio left."""
    neighbours: tuple[Emishows, Emirecords, Emilounge, Emistream]
    audio_warning: str | None = None
    """Logged at start-up: the host has no sound device and plays to a silent sink."""

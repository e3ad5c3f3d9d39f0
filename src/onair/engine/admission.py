"""Admission: who may add a task, and what its runs hold. The rules every door applies.

Each operation declares once what admitting one of its tasks means: `Operation.roles` (who may
schedule it) and `Operation.admit` (what else its parameters must satisfy, and the resource its
runs hold, with how long). `Engine.add` applies both to every task, whichever surface it came
through, so a rule written for one surface holds on all of them.

The engine knows no users: a caller is an opaque owner id and a role. The surfaces say which
role a request has (docs/auth.md): a token's `user` or `admin`, the `station` for the open
Tasks API without a token, `admin` for trusted in-process callers (the Python API, the node's
own system tasks).

Resources: a task whose operation holds one (an output, for the play operations) occupies it for
its next run, the one in progress or else the next one due, from that run's start for the
declared duration (`Hold.seconds`), or, when the duration is not known beforehand, until the
series' following occurrence (a one-shot: until it ends by itself or is cancelled). A new task
is refused with `ResourceTaken` (409) when its first run would overlap a span another pending or
running task holds, unless its policy shares resources (`policy.resource: "shared"`). The spans
are columns of the task (`held_from`, `held_until`), kept by the engine's transitions, so the
check is one indexed query in the transaction that stores the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from onair.engine.models import Record


class Role(StrEnum):
    """What a caller may do. `user`: their own tasks and media; `station`: the station's system
    tasks, without a token on the open Tasks API; `admin`: every task and all media."""

    USER = "user"
    STATION = "station"
    ADMIN = "admin"


_ADMIN = Role.ADMIN  # read once: an enum member's lookup is a descriptor call
ANYONE = frozenset(Role)
STAFF = frozenset({Role.STATION, Role.ADMIN})
"""The station and admins: operations of the station's own (broadcasts)."""
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Caller:
    """Who adds, reads or cancels tasks: `owner` is whose tasks they add and see (None: the
    system's), `role` what they may do. Admins see every task."""

    owner: str | None
    role: Role

    @property
    def admin(self) -> bool:
        return self.role is _ADMIN

    def sees(self, owner: str | None) -> bool:
        """Whether a task (or media) of `owner` is visible to this caller."""
        return self.admin or owner == self.owner


SYSTEM = Caller(None, Role.ADMIN)
"""Trusted in-process callers: the node's own tasks, the Python API, tests."""


@dataclass(frozen=True)
class Admission:
    """What an operation is told of a task being added: whose it is, who adds it, and when its
    first run is due (aware UTC)."""

    owner: str | None
    caller: Caller
    first: datetime
    series: bool


@dataclass(frozen=True)
class Hold:
    """A resource the runs of a task hold: `resource` (e.g. `output:default`), for `seconds`
    from a run's start; None when that is not known beforehand (a loop without a limit)."""

    resource: str
    seconds: float | None


def span(
    seconds: float | None, start: datetime, following: Callable[[], datetime | None]
) -> tuple[datetime, datetime | None]:
    """The span a run starting at `start` holds its resource: `seconds`, or when that is None
    until the series' following occurrence (`following()`, asked only then; None: the run
    holds it until it ends by itself or is cancelled)."""
    if seconds is not None:
        return start, start + timedelta(seconds=seconds)
    return start, following()


def held(row: Record, start: datetime, following: Callable[[], datetime | None]) -> dict[str, Any]:
    """The task values that say what `row` holds for its run starting at `start` (nothing for
    a task that holds no resource)."""
    if row["resource"] is None:
        return {}
    held_from, held_until = span(row["hold"], start, following)
    return {"held_from": held_from, "held_until": held_until}

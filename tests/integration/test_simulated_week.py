"""The simulated window against the engine in compressed time, on both databases: a station's
days across the spring DST change in Europe/Warsaw (a daily show at a wall time the change
skips, under each gap policy), two sounds overlapping on one output (the second refused, then
admitted as shared and listed as a conflict), a jingle series whose plays outlast its interval
(every other occurrence missed), and a paused series. What the simulation says runs is exactly
what the engine then runs, what it says is missed the engine records as missed, and nothing it
says is paused runs.

The engine runs on a `CompressedClock`: 63 hours pass in 10.5 real seconds, and every
sleep, timeout and lease of the engine is in clock time (`Clock.real`). Every instant that
decides an outcome lies hours of clock time (a second or more of real time) from the next
one, so a busy machine's late wake-ups of tens of milliseconds change nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import pytest
from pydantic import BaseModel, ConfigDict, Field

from onair.config import EngineSettings
from onair.engine.admission import ANYONE, SYSTEM, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.models import NewTask, Outcome, Spec
from onair.engine.policies import Policy
from onair.engine.registry import JSON, Registry, RunContext
from onair.errors import ResourceTaken
from onair.operations.test import Test
from onair.store.database import Store
from onair.tasks import TaskService
from onair.timeutil import CompressedClock, sleep_until

WARSAW = "Europe/Warsaw"
START = datetime(2027, 3, 26, 12, tzinfo=UTC)
"""The clock's start. Warsaw skips 02:00-03:00 on 2027-03-28 (01:00 UTC)."""
FACTOR = 6 * 3600
"""Six hours of clock time a real second."""
END = START + timedelta(hours=63)
"""10.5 real seconds after `START`."""


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


class SoundParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output: str
    seconds: float = Field(gt=0)


class Sound:
    """A play-like operation: holds `output:<output>` for `seconds` from its start, as the play
    operations hold theirs, and plays that long by the run's clock."""

    name: ClassVar[str] = "sound"
    Parameters: ClassVar[type[BaseModel]] = SoundParameters
    policy: ClassVar[Policy] = Policy()
    roles: ClassVar[frozenset[Role]] = ANYONE

    async def admit(self, parameters: Any, admission: Admission) -> Hold:
        assert isinstance(parameters, SoundParameters)
        return Hold(f"output:{parameters.output}", parameters.seconds)

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        assert isinstance(parameters, SoundParameters)
        await context.sleep_until(context.clock.now() + timedelta(seconds=parameters.seconds))
        return {"played": parameters.seconds}


def sound(output: str, hours: float) -> Spec:
    return Spec("sound", {"output": output, "seconds": hours * 3600})


def daily(wall: str, start: datetime | None = None) -> Spec:
    since = {} if start is None else {"start": start.isoformat()}
    return Spec("cron", {"expression": wall, "timezone": WARSAW, **since})


async def test_the_simulated_days_are_what_the_engine_runs_in_compressed_time(
    store: Store,
) -> None:
    clock = CompressedClock(START, FACTOR)
    # Leases, heartbeats and the safety poll are clock time: hours here, about a second real.
    settings = EngineSettings(
        lease=timedelta(hours=24), safety_poll=timedelta(hours=6), lookahead=timedelta(minutes=10)
    )
    async with Engine(store, Registry([Test(), Sound()]), clock=clock, settings=settings) as engine:
        show = await engine.add(NewTask(sound("studio", 1), daily("30 2 * * *"), name="show"))
        gapless = await engine.add(
            NewTask(Spec("test"), daily("30 2 * * *"), name="gapless", policy={"dst_gap": "skip"})
        )
        first = await engine.add(
            NewTask(sound("default", 2), Spec("at", {"datetime": at(16).isoformat()}), name="a")
        )
        second = NewTask(
            sound("default", 2), Spec("at", {"datetime": at(17).isoformat()}), name="b"
        )
        with pytest.raises(ResourceTaken):
            await engine.add(second)
        shared = await engine.add(
            NewTask(second.operation, second.condition, name="b", policy={"resource": "shared"})
        )
        every_12h = {"every": 12 * 3600, "start": at(15).isoformat(), "count": 4}
        jingle = await engine.add(
            NewTask(sound("jingles", 18), Spec("interval", every_12h), name="jingle")
        )
        paused = await engine.add(
            NewTask(Spec("test"), daily("0 */6 * * *", at(12)), name="paused")
        )
        await engine.pause(paused.id, "admin:ola", "no host this week")

        now = clock.now()
        assert now < at(10), f"set-up took until {now}: the first occurrence is at {at(13.5)}"
        week = await TaskService(engine).simulate(SYSTEM, now, END)
        said: dict[str, set[tuple[UUID, datetime]]] = {}
        for o in week.occurrences:
            said.setdefault(o.outcome, set()).add((o.task.id, o.due))

        # What the simulation says, before the engine runs it.
        gap_day = datetime(2027, 3, 28, 1, tzinfo=UTC)  # 03:00 CEST, the first after the gap
        shows = [datetime(2027, 3, 27, 1, 30, tzinfo=UTC), gap_day]
        shows.append(datetime(2027, 3, 29, 0, 30, tzinfo=UTC))  # 02:30 CEST
        assert sorted(due for task, due in said["run"] if task == show.id) == shows
        assert sorted(due for task, due in said["run"] if task == gapless.id) == [
            shows[0],
            shows[2],
        ]
        [moved] = [o for o in week.occurrences if o.task.id == show.id and o.due == gap_day]
        assert moved.note is not None  # the gap moved it, and the simulation says so
        assert (first.id, at(16)) in said["run"]
        assert (shared.id, at(17)) in said["run"]
        [conflict] = week.conflicts
        assert (conflict.resource, conflict.first.task.id, conflict.second.task.id) == (
            "output:default",
            first.id,
            shared.id,
        )
        assert sorted(due for task, due in said["run"] if task == jingle.id) == [at(15), at(39)]
        assert sorted(due for _, due in said["missed"]) == [at(27), at(51)]
        assert {task for task, _ in said["paused"]} == {paused.id}
        assert len(said["paused"]) == 8  # every six hours of wall time from 03-27 06:00
        assert "skipped" not in said

        await sleep_until(clock, END + timedelta(hours=1))
        ran: set[tuple[UUID, datetime]] = set()
        missed: set[tuple[UUID, datetime]] = set()
        for task in (show, gapless, first, shared, jingle, paused):
            runs, _ = await engine.runs(task.id, limit=100)
            for run in runs:
                if now <= run.due_at < END:
                    (missed if run.outcome is Outcome.MISSED else ran).add((task.id, run.due_at))
        assert ran == said["run"]
        assert missed == said["missed"]
        assert not ran & said["paused"]
        for task in (show, gapless, paused):
            await engine.cancel(task.id)

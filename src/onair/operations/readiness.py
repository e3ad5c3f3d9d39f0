"""Readiness before air: each upcoming broadcast is checked at the leads the station sets
(`readiness.leads`, by default 24 h, 1 h and 10 min before its start).

A check (`check_broadcast`, one system task per broadcast and lead, planned when its stream
task is created and cancelled with it) asks:

1. does the show's instance still exist in emishows (the stream run's own look-up)?
2. is its recording there? The first check downloads it ahead (`Stream.prefetch`) and keeps it
   in the cache until the broadcast, whose run then takes it instead of downloading;
3. does its length fit the slot within `readiness.duration_tolerance`?
4. has it no silence longer than `readiness.max_silence` (ffmpeg's `silencedetect`), and an
   integrated loudness within [`loudness_min`, `loudness_max`] LUFS (ffmpeg's `ebur128`)?

The answer is `ready`, or `at_risk` with the reasons, in the check's result and as a
`readiness` event (the event stream; the alerts). A reason already reported by the previous
check of the same broadcast is not `new`, so an alert is sent once per problem. When emishows
changes a broadcast, the synchronizer replaces its stream task, and the new task's checks are
planned afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import anyio
from pydantic import BaseModel, ConfigDict, Field, NaiveDatetime

from onair.audio.analysis import Analysis, analyse, analysis_path
from onair.broadcast.models import StreamParameters
from onair.config import ReadinessSettings
from onair.engine.admission import STAFF, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.events import Event
from onair.engine.models import NewTask, Spec, Status, Task
from onair.engine.policies import Policy
from onair.engine.registry import JSON, RunContext
from onair.errors import NotFound, OperationError
from onair.operations.stream import (
    EventNotFound,
    InstanceNotFound,
    NoDownload,
    ScheduleNotFound,
    Stream,
)
from onair.timeutil import as_utc

log = logging.getLogger("onair.readiness")

_NAMESPACE = uuid.UUID("4f1b7c56-3a0e-4c69-9d0e-6b1f3f5a2c10")


def check_id(stream_task: UUID, lead: timedelta) -> UUID:
    """The id of a broadcast's check at `lead`: fixed, so that planning twice adds it once."""
    return uuid.uuid5(_NAMESPACE, f"{stream_task}/{lead.total_seconds():g}")


class CheckParameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: UUID = Field(description="The event, as the stream task names it.")
    start: NaiveDatetime = Field(description="The instance's start, wall time in its zone.")
    lead_seconds: float = Field(ge=0, description="How long before the start it checks.")
    previous: UUID | None = Field(None, description="The broadcast's previous check, if any.")


_FILE_CHECKS = frozenset({"duration", "silence", "loudness"})
"""What only the recording's audio tells (checked where it is kept, before the broadcast runs)."""


def _reason(check: str, message: str) -> dict[str, str]:
    return {"check": check, "message": message}


class CheckBroadcast:
    """One readiness check. It completes with its verdict whatever it finds; it fails only
    when a neighbour does not answer (the next lead checks again: no retries)."""

    name: ClassVar[str] = "check_broadcast"
    Parameters: ClassVar[type[BaseModel]] = CheckParameters
    policy: ClassVar[Policy] = Policy(misfire_grace=timedelta(minutes=5))
    roles: ClassVar[frozenset[Role]] = STAFF

    def __init__(
        self,
        stream: Stream,
        settings: ReadinessSettings,
        engine: Engine,
        stream_lead: timedelta = timedelta(minutes=15),
    ) -> None:
        self.stream = stream
        self.settings = settings
        self.engine = engine
        self.stream_lead = stream_lead

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{event, start, lead_seconds, state, reasons: [{check, message}], new: [...],
        recording: {duration_seconds, slot_seconds, longest_silence_seconds, loudness_lufs}
        | None}`; `state` is `ready` or `at_risk`, `new` the reasons the previous check did
        not give."""
        assert isinstance(parameters, CheckParameters)
        reasons, recording = await self._check(parameters)
        before = await self._previous(parameters.previous)
        if self._late(parameters) and not reasons:
            # What only the file could tell still holds: the file has not changed since.
            reasons = [r for r in before if r.get("check") in _FILE_CHECKS]
        previous = {r.get("check") for r in before}
        result = {
            "event": str(parameters.id),
            "start": parameters.start.isoformat(),
            "lead_seconds": parameters.lead_seconds,
            "state": "at_risk" if reasons else "ready",
            "reasons": reasons,
            "new": [r for r in reasons if r["check"] not in previous],
            "recording": recording,
        }
        event = Event(
            "readiness",
            context.task_id,
            self.name,
            context.clock.now(),
            self.engine.node,
            run_id=context.run_id,
            data=result,
        )
        self.engine.events.publish(event)
        return result

    async def _check(
        self, parameters: CheckParameters
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        named = StreamParameters(id=parameters.id, start=parameters.start)
        try:
            event, tz, instance = await self.stream.locate(named)
        except (EventNotFound, ScheduleNotFound, InstanceNotFound) as error:
            return [_reason("instance", str(error))], None
        if self._late(parameters):
            # The broadcast's run has started and holds its own download: a check this close
            # to air only sees that the recording is still there (nothing is kept for it).
            try:
                await self.stream.source(event, tz, instance)
            except NoDownload as error:
                return [_reason("recording", str(error))], None
            return [], None
        try:
            path = await self.stream.prefetch(event, tz, instance)
        except NoDownload as error:
            return [_reason("recording", str(error))], None
        settings = self.settings
        limit = settings.max_silence.total_seconds()
        try:
            analysis = await self._analysis(path, settings.silence_noise_db, limit)
        except OperationError as error:
            return [_reason("recording", f"The recording does not decode: {error}")], None
        slot = (as_utc(instance.end, tz) - as_utc(instance.start, tz)).total_seconds()
        reasons = []
        gap = analysis.duration - slot
        if abs(gap) > settings.duration_tolerance.total_seconds():
            longer = "longer" if gap > 0 else "shorter"
            reasons.append(
                _reason(
                    "duration",
                    f"The recording lasts {analysis.duration:.1f} s, {abs(gap):.1f} s {longer} "
                    f"than its {slot:.0f} s slot.",
                )
            )
        if analysis.silences:
            start, end = max(analysis.silences, key=lambda s: s[1] - s[0])
            reasons.append(
                _reason(
                    "silence",
                    f"The recording is silent for {end - start:.1f} s from {start:.1f} s "
                    f"(at most {limit:g} s allowed).",
                )
            )
        loudness = analysis.loudness
        if loudness is None or not settings.loudness_min <= loudness <= settings.loudness_max:
            said = "unmeasurable (silent)" if loudness is None else f"{loudness:.1f} LUFS"
            reasons.append(
                _reason(
                    "loudness",
                    f"The recording's integrated loudness is {said}, outside "
                    f"{settings.loudness_min:g} to {settings.loudness_max:g} LUFS.",
                )
            )
        recording = {
            "duration_seconds": round(analysis.duration, 3),
            "slot_seconds": slot,
            "longest_silence_seconds": round(analysis.longest_silence, 3),
            "loudness_lufs": loudness,
        }
        return reasons, recording

    async def _analysis(self, path: Path, noise_db: float, min_silence: float) -> Analysis:
        """The prefetched recording's analysis, made once and kept beside it for the later
        leads (decoding an hour of audio takes tens of seconds of a core)."""
        kept = anyio.Path(analysis_path(path))
        key = {"noise_db": noise_db, "min_silence": min_silence}
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            saved = json.loads(await kept.read_text())
            if saved["key"] == key:
                return Analysis(
                    saved["duration"],
                    tuple((float(a), float(b)) for a, b in saved["silences"]),
                    saved["loudness"],
                )
        analysis = await analyse(path, noise_db=noise_db, min_silence=min_silence)
        saved = {
            "key": key,
            "duration": analysis.duration,
            "silences": [list(s) for s in analysis.silences],
            "loudness": analysis.loudness,
        }
        with contextlib.suppress(OSError):
            await kept.write_text(json.dumps(saved))
        return analysis

    def _late(self, parameters: CheckParameters) -> bool:
        """Whether the check comes after the broadcast's run has started (and downloaded)."""
        return parameters.lead_seconds < self.stream_lead.total_seconds()

    async def _previous(self, task_id: UUID | None) -> list[dict[str, Any]]:
        """The reasons the broadcast's previous check gave."""
        if task_id is None:
            return []
        with contextlib.suppress(NotFound):
            task = await self.engine.get(task_id)
            if isinstance(task.result, dict):
                return [r for r in task.result.get("reasons", []) if isinstance(r, dict)]
        return []


class ReadinessPlanner:
    """Plans the checks of each stream task created on this node, at each lead still ahead,
    and cancels them with their stream task. Enter it after the engine."""

    def __init__(self, engine: Engine, settings: ReadinessSettings, stream_lead: timedelta):
        self.engine = engine
        self.settings = settings
        self.stream_lead = stream_lead
        self._pending: set[asyncio.Task[None]] = set()
        self._stop = engine.events.subscribe(self.observe, remote=False)

    async def __aenter__(self) -> ReadinessPlanner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop()
        if self._pending:
            await asyncio.wait(set(self._pending))

    def observe(self, event: Event) -> None:
        if event.operation != Stream.name or event.run_id is not None:
            return
        if event.kind == "created":
            self._spawn(self._plan(event.task_id))
        elif event.kind == "cancelled":
            self._spawn(self._unplan(event.task_id))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _leads(self) -> list[timedelta]:
        return sorted(set(self.settings.leads), reverse=True)

    async def _plan(self, stream_task: UUID) -> None:
        try:
            task = await self.engine.get(stream_task)
            parameters = StreamParameters.model_validate(dict(task.operation.parameters))
            if task.next_at is None:
                return
            start = task.next_at + self.stream_lead
            now = self.engine.clock.now()
            previous: UUID | None = None
            for lead in self._leads():
                due = start - lead
                if due <= now:
                    continue
                check = CheckParameters(
                    id=parameters.id,
                    start=parameters.start,
                    lead_seconds=lead.total_seconds(),
                    previous=previous,
                )
                new = NewTask(
                    Spec(CheckBroadcast.name, check.model_dump(mode="json")),
                    Spec("at", {"datetime": due.isoformat()}),
                    name=f"readiness of {parameters.id} {lead} ahead",
                    id=check_id(stream_task, lead),
                )
                await self.engine.add(new)
                previous = new.id
        except Exception:
            log.exception("could not plan the readiness checks of stream task %s", stream_task)

    async def _unplan(self, stream_task: UUID) -> None:
        for lead in self._leads():
            with contextlib.suppress(Exception):
                await self.engine.cancel(check_id(stream_task, lead))


async def upcoming(engine: Engine, limit: int = 500) -> list[dict[str, Any]]:
    """The readiness of each upcoming broadcast (a pending stream task), soonest first: the
    latest check's `state` and `reasons`, or `unchecked` before its first lead.
    `{task_id, event, start, due, state, reasons, lead_seconds, checked_at}`."""
    streams, _ = await engine.page(status=Status.PENDING, operation=Stream.name, limit=limit)
    checks, _ = await engine.page(
        status=Status.COMPLETED, operation=CheckBroadcast.name, limit=limit * 4
    )
    latest: dict[tuple[str, str], Task] = {}
    for done in checks:  # newest first: the first seen of a broadcast is its latest
        result = done.result if isinstance(done.result, dict) else {}
        latest.setdefault((str(result.get("event")), str(result.get("start"))), done)
    answer = []
    for task in streams:
        try:
            parameters = StreamParameters.model_validate(dict(task.operation.parameters))
        except ValueError:
            continue
        key = (str(parameters.id), parameters.start.isoformat())
        check = latest.get(key)
        verdict = check.result if check is not None and isinstance(check.result, dict) else {}
        answer.append(
            {
                "task_id": str(task.id),
                "event": key[0],
                "start": key[1],
                "due": None if task.next_at is None else task.next_at.isoformat(),
                "state": verdict.get("state", "unchecked"),
                "reasons": verdict.get("reasons", []),
                "lead_seconds": verdict.get("lead_seconds"),
                "checked_at": None
                if check is None or check.finished_at is None
                else check.finished_at.isoformat(),
            }
        )
    answer.sort(key=lambda item: item["due"] or "")
    return answer

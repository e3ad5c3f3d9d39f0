"""The schedule as an iCalendar feed (RFC 5545, written with the `icalendar` package).

Each pending or running task is one VEVENT in its own zone (TZID, with its VTIMEZONE). A series
is one event with a recurrence, and the feed says exactly what onair will run over its horizon
(`HORIZON`, or the first `MAX_INSTANTS` occurrences), reconciled instance by instance:

- a rule RFC 5545 can say (`recurring`, `rrule`; `interval` in whole seconds, hourly
  `recurring`) is written as its RRULE, with UNTIL the last instant covered;
- a `cron` series is written as its expansion: DTSTART and RDATEs;
- a skipped occurrence is an EXDATE; a moved one is an override (RECURRENCE-ID), or in a
  series of absolute steps (written in UTC) an EXDATE and an RDATE;
- an occurrence onair's DST rule places elsewhere than RFC 5545 would (a wall time in a gap
  runs at the first instant after it) is an override too, its DESCRIPTION saying why, and an
  instance the rule has but onair does not run is an EXDATE.

So a calendar that expands the feed shows the instants onair's previews give (tested with
`recurring-ical-events` in tests/integration/test_ical.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from dateutil.rrule import rrulestr
from icalendar import Calendar, Event, vRecur

from onair.engine.admission import Caller, Role
from onair.engine.calendar import Changed, Changes
from onair.engine.conditions import (
    Condition,
    Interval,
    Recurring,
    RRule,
    parse_condition,
)
from onair.engine.core import Engine
from onair.engine.dst import with_dst
from onair.engine.models import Status, Task
from onair.engine.triggers import Occurrence, OneShot, Trigger, Unbounded, search_budget
from onair.engine.words import describe
from onair.errors import FeedNotFound, InvalidInput
from onair.store import feeds as store

HORIZON = timedelta(days=366)
"""How far ahead a feed lists occurrences; calendar apps fetch it again long before."""
MAX_INSTANTS = 1000
"""Occurrences of one task in a feed, at most (a minutely series would have 527,040)."""
DURATION = timedelta(minutes=5)
"""An event's length when its task holds nothing for a known span."""

_TICK = timedelta(microseconds=1)
_CANDIDATES = 4 * MAX_INSTANTS


def feed(tasks: Iterable[Task], now: datetime, name: str) -> bytes:
    """The calendar of `tasks` as iCalendar bytes, from `now` (aware UTC) over `HORIZON`."""
    calendar = Calendar()
    calendar.add("prodid", "-//onair//schedule//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for task in tasks:
        for event in events(task, now):
            calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


def events(task: Task, now: datetime) -> list[Event]:
    """The VEVENTs of one task: none once it has finished or has nothing ahead."""
    if task.status.finished or task.next_at is None:
        return []
    try:
        condition = parse_condition(task.condition.type, dict(task.condition.parameters))
        base = with_dst(condition.trigger(task.created_at), task.policy)
        with search_budget(_CANDIDATES):
            planned = _planned(task, condition, base, now + HORIZON)
    except (InvalidInput, Unbounded):
        return []  # a rule this version no longer reads, or none within the bound
    if not planned:
        return []
    if isinstance(base, OneShot):
        return [_event(task, condition, planned[0].utc)]
    return _series(task, condition, planned)


def _planned(task: Task, condition: Condition, base: Trigger, end: datetime) -> list[Occurrence]:
    """What onair will run: the task's occurrences (changes applied) from its next due
    instant to `end`, at most `MAX_INSTANTS` and what its `count` leaves."""
    trigger = Changed(base, Changes.of(task.changes))
    wanted = MAX_INSTANTS
    if condition.limit is not None:
        wanted = min(wanted, condition.limit - task.occurrences)
    found: list[Occurrence] = []
    after = task.next_at - _TICK if task.next_at else None
    while len(found) < wanted:
        occurrence = trigger.occurrence_after(after)
        if occurrence is None or occurrence.utc > end:
            break
        found.append(occurrence)
        after = occurrence.utc
    return found


def _event(task: Task, condition: Condition, start: datetime) -> Event:
    """A VEVENT of `task` starting at `start` (aware: written with its zone's TZID, or UTC)."""
    event = Event()
    event.add("uid", f"{task.id}@onair")
    event.add("dtstamp", task.updated_at)
    event.add("summary", task.name or task.operation.type)
    event.add("dtstart", start)
    event.add("duration", DURATION)
    words = describe(condition)
    if task.paused_at is not None:
        note = f": {task.pause_note}" if task.pause_note else ""
        words += f"\nPaused by {task.paused_by} since {task.paused_at.isoformat()}{note}"
        event.add("status", "TENTATIVE")
    event.add("description", words)
    event.add("categories", [task.operation.type])
    return event


def _series(task: Task, condition: Condition, planned: Sequence[Occurrence]) -> list[Event]:
    zone = condition.zone
    changes = Changes.of(task.changes)
    moved_to = {to: original for original, to in changes.moved.items()}
    runs = [o.utc for o in planned]
    originals = [moved_to.get(o.utc, o.utc) for o in planned]
    walls = {o.wall: o.utc for o in planned if o.wall is not None}
    first = min(originals)
    rule = _rule(condition)
    if rule is None:  # no RRULE says it: the expansion itself
        main = _event(task, condition, runs[0].astimezone(zone))
        # DTSTART is listed again: some readers take RDATEs alone as the recurrence set.
        main.add("rdate", [instant.astimezone(UTC) for instant in runs])
        return [main]
    kind, recur = rule
    frame: tzinfo = zone if kind == "wall" else UTC  # absolute steps are written in UTC
    by_instant = {instant: wall for wall, instant in walls.items()}
    anchor = by_instant.get(first, first.astimezone(frame).replace(tzinfo=None))
    main = _event(task, condition, anchor.replace(tzinfo=frame))
    until = max(max(runs), max(originals))
    recur["UNTIL"] = until.astimezone(UTC)
    main.add("rrule", recur)
    overrides: list[Event] = []
    exdates: list[datetime] = []
    handled: set[datetime] = set()
    for wall, instant in _expand(recur, anchor, frame, until):
        if instant in changes.moved and kind == "utc":
            # Some readers match a RECURRENCE-ID by its wall time alone, which a UTC one
            # (`Z`) is not: an absolute series' move is an EXDATE and an RDATE.
            exdates.append(instant)
        elif instant in changes.moved:
            target = changes.moved[instant]
            overrides.append(_override(task, condition, wall, frame, target, "moved"))
            handled.add(target)
        elif instant in runs:
            handled.add(instant)
        elif wall in walls and walls[wall] not in handled:
            overrides.append(_override(task, condition, wall, frame, walls[wall], "dst"))
            handled.add(walls[wall])
        else:  # by its wall time: readers match a wall time in a gap by it, not its instant
            exdates.append(wall.replace(tzinfo=frame) if kind == "wall" else instant)
    extra = sorted(set(runs) - handled)
    if exdates:
        main.add("exdate", exdates)
    if extra:
        main.add("rdate", [instant.astimezone(UTC) for instant in extra])
    return [main, *overrides]


def _override(
    task: Task,
    condition: Condition,
    wall: datetime,
    frame: tzinfo,
    instant: datetime,
    why: str,
) -> Event:
    """The override of the instance the rule gives at `wall` (in `frame`): onair runs it at
    `instant`, because it was moved or because of onair's DST rule."""
    zone = condition.zone
    start = instant.astimezone(frame)  # in the frame of the rule; but a wall time read back
    if start.replace(fold=0).astimezone(UTC) != instant:  # as another instant (a fold's
        start = instant.astimezone(UTC)  # second pass) is written in UTC
    event = _event(task, condition, start)
    event.add("recurrence-id", wall.replace(tzinfo=frame))
    local = instant.astimezone(zone).isoformat()
    if why == "moved":
        note = f"Moved from {wall.isoformat()} to {local} (this occurrence only)."
    else:
        note = f"{wall.isoformat()} in {zone.key} (DST): by onair's DST rule it runs at {local}."
    event["description"] = f"{event['description']}\n{note}"
    return event


def _rule(condition: Condition) -> tuple[str, vRecur] | None:
    """The RRULE that says the condition (`wall`: on wall time in its zone; `utc`: absolute
    steps), or None when RFC 5545 has none (cron, fractional intervals)."""
    if isinstance(condition, Recurring):
        if condition.frequency == "hourly":
            return "utc", vRecur(freq="HOURLY", interval=condition.interval)
        return "wall", vRecur(freq=condition.frequency.upper(), interval=condition.interval)
    if isinstance(condition, Interval):
        seconds = condition.every.total_seconds()
        if seconds != int(seconds):
            return None
        return "utc", vRecur(freq="SECONDLY", interval=int(seconds))
    if isinstance(condition, RRule):
        body = condition.rule.strip()
        if body.upper().startswith("RRULE:"):
            body = body[len("RRULE:") :]
        parts = [p for p in body.split(";") if p and p.split("=")[0].upper() not in _ENDS]
        return "wall", vRecur.from_ical(";".join(parts))
    return None


_ENDS = {"COUNT", "UNTIL"}


def _expand(
    recur: vRecur, wall_start: datetime, zone: tzinfo, until: datetime
) -> list[tuple[datetime, datetime]]:
    """The instances of `recur` from `wall_start` (naive, in `zone`) up to `until`, as RFC
    5545 readers compute them: on naive wall time, each localized with the offset in force
    before a gap (`fold=0`). Returns (wall, instant) pairs."""
    text = bytes(recur.to_ical()).decode()  # type: ignore[no-untyped-call]
    limit = until.astimezone(zone).replace(tzinfo=None) + timedelta(days=2)
    rule = rrulestr(_without_until(text), dtstart=wall_start, cache=False)
    pairs = []
    for wall in rule.between(wall_start, limit, inc=True):
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant > until:
            break
        pairs.append((wall, instant))
    return pairs


def _without_until(text: str) -> str:
    return ";".join(p for p in text.split(";") if not p.upper().startswith("UNTIL="))


class Feeds:
    """The secret feed URLs, one per scope, and the feeds they give. Calendar apps cannot send
    a bearer token, so the secret in the URL is the credential: made with `secrets`, shown
    once, kept only as its digest, rotated (the old URL stops working) or revoked by its
    owner. A scope is what its owner sees: an admin every task, the station (the open Tasks
    API) the system's, a user their own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def rotate(self, caller: Caller) -> str:
        """A new secret for the caller's feed, replacing any before."""
        secret = secrets.token_urlsafe(32)
        async with self.engine.store.begin() as conn:
            await store.replace_feed(
                conn, scope_of(caller), _digest(secret), self.engine.clock.now()
            )
        return secret

    async def revoke(self, caller: Caller) -> bool:
        """Revoke the caller's feed; False when it had none."""
        async with self.engine.store.begin() as conn:
            return await store.drop_feed(conn, scope_of(caller))

    async def calendar(self, secret: str) -> bytes:
        """The feed of `secret`.

        Raises: FeedNotFound (an unknown, rotated or revoked secret)."""
        async with self.engine.store.begin() as conn:
            scope = await store.feed_scope(conn, _digest(secret))
        if scope is None:
            raise FeedNotFound()
        owner: str | None = None
        any_owner = scope == "all"
        if scope.startswith("user:"):
            owner = scope.removeprefix("user:")
        tasks: list[Task] = []
        for status in (Status.RUNNING, Status.PENDING):
            page, _ = await self.engine.page(
                owner=owner, any_owner=any_owner, status=status, limit=MAX_TASKS
            )
            tasks += page
        name = "onair" if owner is None else f"onair: {owner}"
        # Seconds for a large station (about 7 ms a daily series): off the event loop.
        return await asyncio.to_thread(feed, tasks, self.engine.clock.now(), name)


MAX_TASKS = 1000
"""Pending (and, apart, running) tasks a feed lists, newest first."""


def scope_of(caller: Caller) -> str:
    if caller.admin:
        return "all"
    if caller.role is Role.USER:
        return f"user:{caller.owner}"
    return "system"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()

"""Scenario 7: rules are evaluated within a bound. How long the worst degenerate rules take to be
refused (what `POST /tasks` and the previews do with them: parse, then the bounded search for a
first occurrence), and how long one claim takes to coalesce a day of missed occurrences of an
every-second rule and a month of an every-minute cron (a node back after downtime).

In process and on the CPU only: each figure is the best of three, in milliseconds. Before the
bound, the rules took 0.2 s (YEARLY) to 5.8 s (MINUTELY) and a SECONDLY rule with BYHOUR never
came back; the coalescing took 8.5 s and 10.4 s, all of it on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from benchmarks.common import Options, Row, log
from onair.engine.conditions import first_due, parse_condition
from onair.engine.policies import Policy, decide
from onair.errors import InvalidParameters

NOW = datetime(2026, 12, 3, 10, tzinfo=UTC)
DEGENERATE = {
    "daily Feb 30": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "secondly Feb 30": "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
    "hourly Feb 31": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31",
    "minutely Apr 31": "FREQ=MINUTELY;BYMONTH=4;BYMONTHDAY=31",
    "weekly step never on Monday": "FREQ=DAILY;INTERVAL=7;BYDAY=MO",
    "INTERVAL=0": "FREQ=YEARLY;INTERVAL=0",
    "secondly by hour, Feb 30": "FREQ=SECONDLY;BYHOUR=23;BYMONTH=2;BYMONTHDAY=30",
}
COALESCED = {
    "a day of an every-second RRULE": (
        "rrule",
        {"rule": "FREQ=SECONDLY", "start": "2026-12-02T10:00:00"},
    ),
    "a month of an every-minute cron": (
        "cron",
        {"expression": "* * * * *", "start": "2026-11-03T10:00:00"},
    ),
}


def _best(work: Callable[[], object]) -> float:
    times = []
    for _ in range(3):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times) * 1000


def _refuse(rule: str) -> None:
    try:
        condition = parse_condition("rrule", {"rule": rule, "start": "2026-12-03T00:00:00"})
        first_due(condition, condition.trigger(NOW), NOW)
    except InvalidParameters:
        return
    raise AssertionError(f"{rule} was accepted")


def _coalesce(kind: str, parameters: dict[str, object]) -> None:
    trigger = parse_condition(kind, dict(parameters)).trigger(NOW)
    first = trigger.next_after(None)
    assert first is not None
    decision = decide(trigger.next_after, None, first, NOW, Policy())
    assert decision.due == NOW, decision


async def run(options: Options) -> list[Row]:
    rows = []
    for label, rule in DEGENERATE.items():
        value = _best(partial(_refuse, rule))
        rows.append(Row("rules", "onair", f"refuse {label}", round(value, 2), "ms", rule, False))
        log(f"rules: refused {label} in {value:.1f} ms")
    for label, (kind, parameters) in COALESCED.items():
        value = _best(partial(_coalesce, kind, parameters))
        rows.append(Row("rules", "onair", f"claim after {label}", round(value, 2), "ms", "", False))
        log(f"rules: coalesced {label} in {value:.1f} ms")
    return rows

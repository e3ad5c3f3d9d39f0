"""Both OpenAPI documents fuzzed with schemathesis against a real server, on SQLite and
PostgreSQL: every operation of the Tasks API (`/openapi.json`, with no token and with an
admin's) and of the user API (`/api/v1/openapi.json`, with a user's and an admin's token),
judged on two things only: no answer is a 5xx (nor a dropped connection or one slower than
`SLOW`), and the node keeps answering `/ping` within `PING`.

CI runs `EXAMPLES` examples per operation and caller, derandomized so that a run is
repeatable (about a minute in all); `make fuzz` runs many more, new ones each time
(`ONAIR_FUZZ_EXAMPLES`, `ONAIR_FUZZ_RANDOM`). Failures are gathered over every operation and
reported together, each with the request that reproduces it.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case

from onair.accounts.tokens import Role, create_token
from onair.config import AuthSettings
from tests.conftest import Server

EXAMPLES = int(os.environ.get("ONAIR_FUZZ_EXAMPLES", "4"))
RANDOM = os.environ.get("ONAIR_FUZZ_RANDOM", "") == "1"
SLOW = 5.0
"""Seconds within which every answer must come: longer is a stall."""
PING = 0.5
"""Seconds within which `/ping` must answer after each request."""


@dataclass(frozen=True)
class Document:
    name: str
    schema: str
    base: str
    callers: tuple[str, ...]


DOCUMENTS = [
    Document("tasks", "/openapi.json", "", ("station", "admin")),
    Document("users", "/api/v1/openapi.json", "/api/v1", ("user", "admin")),
]

RULES: tuple[str, ...] = ()
"""Modules whose 5xx are known and owned elsewhere: a 5xx whose every traceback ends in one
of them is reported as known instead of failing. Empty: the condition validation's 5xx
(instants beyond the calendar once a zone applies, integers beyond 64 bits, degenerate
rules; `onair/engine/conditions.py`, `triggers.py`, `preview.py`) that this suite found
have been fixed. Name a module here only with the issue that owns its 5xx."""

_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*\n|\n)*(.*)")
_FRAME = re.compile(r'File "[^"]*/(onair/[\w/]+\.py)", line \d+')


def tracebacks(log: str) -> list[tuple[str | None, str]]:
    """Every traceback in `log`: the onair module of its last onair frame, and its text."""
    found = []
    for match in _TRACEBACK.finditer(log):
        frames = _FRAME.findall(match.group(0))
        found.append((frames[-1] if frames else None, match.group(0)))
    return found


class Judge:
    """Sorts a server's 5xx answers into failures and known issues, by the traceback each one
    left in the server's log (`RULES`)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.read = len(server.log.read_bytes())
        self.failures: list[str] = []
        self.known: list[str] = []

    def server_error(self, what: str) -> None:
        deadline = time.monotonic() + 2
        while True:  # the log is written just after the answer
            text = self.server.log.read_bytes()[self.read :].decode(errors="replace")
            found = tracebacks(text)
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.read += len(text.encode())
        modules = {module for module, _ in found}
        if found and RULES and modules <= set(RULES):
            self.known.append(f"{what} [{', '.join(sorted(map(str, modules)))}]")
        else:
            self.failures.append(f"{what}\n" + "\n".join(t[-1500:] for _, t in found))

    def verdict(self) -> None:
        """Fails on any failure, and on any traceback in the log that no 5xx explained (an
        error behind an answer that looked fine, or in the engine)."""
        rest = self.server.log.read_bytes()[self.read :].decode(errors="replace")
        self.failures += [
            f"a traceback in the log:\n{text[-1500:]}" for _, text in tracebacks(rest)
        ]
        if self.known:
            print("known (owned elsewhere, `RULES`):\n" + "\n".join(self.known))
        assert not self.failures, "\n\n".join(self.failures)


def _responsive(server: Server) -> None:
    """`/ping` answers within `PING`, on a connection of its own."""
    ping = httpx.get(server.url + "/ping", timeout=PING)
    assert ping.status_code == 204, f"/ping answered {ping.status_code}"


def _headers(caller: str) -> dict[str, str]:
    if caller == "station":
        return {}
    role = Role.ADMIN if caller == "admin" else Role.USER
    token = create_token(
        f"fuzz-{caller}", role=role, settings=AuthSettings(), ttl=timedelta(hours=3)
    )
    return {"Authorization": f"Bearer {token}"}


def _streams(operation: Any) -> bool:
    """Server-Sent Events never end by themselves: they are not fuzzed."""
    return str(operation.path).endswith("/events")


def _fuzz(server: Server, document: Document, caller: str, judge: Judge) -> None:
    """Every operation of `document`, as `caller`; what goes wrong goes to `judge`."""
    schema = schemathesis.openapi.from_url(server.url + document.schema)
    for result in schema.get_all_operations():
        operation = result.ok()
        if not _streams(operation):
            _fuzz_operation(server, operation, document, caller, judge)


def _fuzz_operation(
    server: Server, operation: Any, document: Document, caller: str, judge: Judge
) -> None:
    base = server.url + document.base
    headers = _headers(caller)
    session = requests.Session()
    label = f"{operation.method.upper()} {document.base}{operation.path} as {caller}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Case) -> None:
        try:
            response = case.call(base_url=base, session=session, headers=headers, timeout=SLOW)
        except requests.Timeout:
            judge.failures.append(f"{label}: {case.as_curl_command()}: no answer in {SLOW} s")
            return
        except requests.RequestException:  # a 500 drops the connection: judged by its log
            judge.server_error(f"{label}: {case.as_curl_command()}: connection dropped")
            session.close()
            return
        if response.status_code >= 500:
            judge.server_error(f"{label}: {case.as_curl_command()} -> {response.status_code}")
        _responsive(server)

    try:
        check()
    except Exception as error:  # a failed check or generation: a finding, not a crash
        judge.failures.append(f"{label}: {type(error).__name__}: {str(error)[:1500]}")


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("document", "caller"),
    [(d, c) for d in DOCUMENTS for c in d.callers],
    ids=[f"{d.name}-{c}" for d in DOCUMENTS for c in d.callers],
)
def test_no_5xx_and_the_node_stays_responsive(
    shared_server: Server, document: Document, caller: str
) -> None:
    judge = Judge(shared_server)
    _fuzz(shared_server, document, caller, judge)
    judge.verdict()


# Conditions: the documents say only "an object" of a condition's parameters, so schemathesis
# seldom reaches the rules. These bodies name real condition types with values at and past
# every edge (years 1 and 9999, zones, huge integers and durations, degenerate rules).

_ZONES = st.sampled_from(["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Nope"])
_INSTANTS = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59-12:00",
            "2030-03-10T02:30:00",
            "2030-11-03T01:30:00",
            "not a date",
        ]
    ),
    st.datetimes().map(lambda moment: moment.isoformat()),
)
_INTEGERS = st.one_of(st.integers(-3, 3), st.sampled_from([2**31, 2**63, 2**64, -(2**63), 10**30]))
_DURATIONS = st.one_of(
    _INTEGERS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["PT0S", "PT0.000001S", "-PT1S", "P999999999D", "P1000000000D", "PT1H"]),
)
_RULES = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=SECONDLY;INTERVAL=0",
        "FREQ=MINUTELY;BYSETPOS=400",
        "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO;COUNT=99999999999",
        "FREQ=DAILY;UNTIL=99991231T235959Z",
        "FREQ=HOURLY;INTERVAL=99999999999",
        "RRULE:FREQ=WEEKLY;BYDAY=XX",
    ]
)
_CRONS = st.sampled_from(
    [
        "0 9 * * 1-5",
        "0 0 30 2 *",
        "*/0 * * * *",
        "0 0 31 4,6,9,11 *",
        "61 * * * *",
        "@reboot",
        "* * * * * * *",
    ]
)
_CONDITIONS = st.fixed_dictionaries(
    {"type": st.sampled_from(["now", "at", "recurring", "cron", "rrule", "interval"])},
).flatmap(
    lambda head: st.fixed_dictionaries(
        {
            "type": st.just(head["type"]),
            "parameters": st.fixed_dictionaries(
                {},
                optional={
                    "datetime": _INSTANTS,
                    "start": _INSTANTS,
                    "until": _INSTANTS,
                    "timezone": _ZONES,
                    "count": _INTEGERS,
                    "interval": _INTEGERS,
                    "frequency": st.sampled_from(["hourly", "daily", "monthly", "yearly"]),
                    "expression": _CRONS,
                    "rule": _RULES,
                    "every": _DURATIONS,
                },
            ),
        }
    )
)
_SEED_TASKS = st.fixed_dictionaries(
    {
        "name": st.just("fuzz"),
        "task_type": st.just("credit_recharge"),
        "scheduled_at": _INSTANTS,
        "timezone": _ZONES,
    },
    optional={
        "recurrence_type": st.sampled_from(
            ["none", "hourly", "daily", "monthly", "yearly", "cron"]
        ),
        "cron_expression": _CRONS,
        "recurrence_count": _INTEGERS,
    },
)
CONDITION_EXAMPLES = int(os.environ.get("ONAIR_FUZZ_CONDITIONS", "10"))


@pytest.mark.timeout(600)
def test_conditions_never_5xx(shared_server: Server) -> None:
    """POST /tasks, /tasks/preview and the user API's tasks and preview with edge conditions:
    each answer a 4xx or a normal one, within `SLOW`, and `/ping` within `PING` after it."""
    admin = _headers("admin")
    judge = Judge(shared_server)

    @settings(
        max_examples=CONDITION_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(condition=_CONDITIONS, seed=_SEED_TASKS)
    def check(condition: dict[str, Any], seed: dict[str, Any]) -> None:
        task = {
            "operation": {"type": "test", "parameters": {}},
            "condition": condition,
            "dependencies": {},
        }
        with httpx.Client(base_url=shared_server.url, timeout=SLOW) as client:
            for path, body, headers in (
                ("/tasks", task, {}),
                ("/tasks/preview", {"condition": condition, "count": 3}, {}),
                ("/api/v1/scheduler/admin/system-tasks", seed, admin),
                ("/api/v1/scheduler/preview", seed | {"count": 3}, admin),
            ):
                what = f"POST {path} {json.dumps(body)}"
                try:
                    response = client.post(path, json=body, headers=headers)
                except httpx.TimeoutException:
                    judge.failures.append(f"{what}: no answer within {SLOW} s")
                    continue
                except httpx.HTTPError:  # a 500 drops the connection: judged by its log
                    judge.server_error(f"{what}: connection dropped")
                    continue
                if response.status_code >= 500:
                    judge.server_error(f"{what}: {response.status_code}")
                _responsive(shared_server)

    check()
    judge.verdict()

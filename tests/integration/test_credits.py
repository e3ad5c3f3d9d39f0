"""Credits on SQLite and PostgreSQL: users created on first use, recharges capped by the plan
and idempotent per run, in-process and through a real server's `credit_recharge` tasks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import insert

from onair.accounts.credits import Accounts, Plan
from onair.accounts.tokens import Principal, Role, create_token
from onair.config import AuthSettings, PlanSettings
from onair.engine.registry import RunContext
from onair.errors import OperationError
from onair.operations.credit_recharge import CreditRecharge, CreditRechargeParameters
from onair.store.database import Store
from onair.store.schema import users
from onair.timeutil import SystemClock
from tests.conftest import Server
from tests.integration.helpers import wait_status

PLAN = PlanSettings(credits=100, max_credits=250)


@pytest.fixture
def accounts(store: Store) -> Accounts:
    return Accounts(store, PLAN)


def context(task_id: uuid.UUID | None = None, occurrence: int = 1) -> RunContext:
    """A new run (its own id) of occurrence `occurrence` of task `task_id` (default: new)."""
    return RunContext(
        task_id=task_id or uuid.uuid4(),
        run_id=uuid.uuid4(),
        due=datetime.now(UTC),
        attempt=1,
        owner=None,
        clock=SystemClock(),
        occurrence=occurrence,
    )


@pytest.mark.parametrize(
    ("balance", "expected"),
    [
        pytest.param(0, 100, id="adds_the_plan_credits"),
        pytest.param(200, 250, id="stops_at_the_maximum"),
        pytest.param(250, 250, id="full_stays_full"),
        pytest.param(300, 300, id="above_the_maximum_is_not_cut"),
    ],
)
def test_plan_recharge(balance: int, expected: int) -> None:
    assert Plan(100, 250).recharged(balance) == expected


async def test_users_start_with_the_plan_credits(accounts: Accounts) -> None:
    user = await accounts.ensure(Principal("alice", Role.USER))
    assert (user.id, user.role, user.credits, user.plan) == (
        "alice",
        Role.USER,
        100,
        Plan(100, 250),
    )
    again = await accounts.ensure(Principal("alice", Role.ADMIN))
    assert (again.role, again.credits, again.created_at) == (Role.ADMIN, 100, user.created_at)
    assert await accounts.get("bob") is None


async def test_recharge_is_capped_and_recorded(accounts: Accounts) -> None:
    for name in ("alice", "bob"):
        await accounts.ensure(Principal(name, Role.USER))
    balances = []
    for _ in range(3):
        recorded = await accounts.recharge(uuid.uuid4())
        assert sorted(t.user_id for t in recorded) == ["alice", "bob"]
        balances.append([(t.amount, t.balance) for t in recorded if t.user_id == "alice"][0])
    assert balances == [(100, 200), (50, 250), (0, 250)]
    alice = await accounts.get("alice")
    assert alice is not None
    assert alice.credits == 250
    page, total = await accounts.transactions("alice")
    assert total == 3
    assert [t.balance for t in page] == [250, 250, 200]


async def test_an_occurrence_credits_each_user_once(accounts: Accounts) -> None:
    await accounts.ensure(Principal("alice", Role.USER))
    occurrence = uuid.uuid4()
    first = await accounts.recharge(occurrence)
    assert [(t.user_id, t.amount) for t in first] == [("alice", 100)]
    assert await accounts.recharge(occurrence) == []
    await accounts.ensure(Principal("bob", Role.USER))
    # The same occurrence again reaches only the user it has not credited yet.
    assert [(t.user_id, t.amount) for t in await accounts.recharge(occurrence)] == [("bob", 100)]
    alice = await accounts.get("alice")
    assert alice is not None
    assert alice.credits == 200
    _, total = await accounts.transactions("alice")
    assert total == 1


async def test_one_user_or_everyone(accounts: Accounts) -> None:
    for name in ("alice", "bob"):
        await accounts.ensure(Principal(name, Role.USER))
    recorded = await accounts.recharge(uuid.uuid4(), user_id="bob")
    assert [t.user_id for t in recorded] == ["bob"]
    alice, bob = await accounts.get("alice"), await accounts.get("bob")
    assert (alice and alice.credits, bob and bob.credits) == (100, 200)


async def test_recharge_of_everyone_crosses_pages(accounts: Accounts) -> None:
    names = [f"user-{i:04d}" for i in range(1203)]
    now = datetime.now(UTC)
    row = {"role": "user", "credits": 100, "plan_credits": 100, "plan_max_credits": 250}
    async with accounts.store.begin() as conn:
        await conn.execute(
            insert(users), [row | {"id": n, "created_at": now, "updated_at": now} for n in names]
        )
    recorded = await accounts.recharge(uuid.uuid4())
    assert sorted(t.user_id for t in recorded) == names
    assert {t.balance for t in recorded} == {200}


async def test_the_operation_is_idempotent_per_occurrence(accounts: Accounts) -> None:
    """A retry, or a run interrupted after its commit and run again, is another run of the
    same occurrence: it credits nobody twice. The next occurrence recharges."""
    await accounts.ensure(Principal("alice", Role.USER))
    operation = CreditRecharge(accounts)
    task = uuid.uuid4()
    everyone = CreditRechargeParameters()
    assert await operation.run(everyone, {}, context(task)) == {"users": 1, "credits": 100}
    assert await operation.run(everyone, {}, context(task)) == {"users": 0, "credits": 0}
    assert await operation.run(everyone, {}, context(task, 2)) == {"users": 1, "credits": 50}
    assert await operation.run(everyone, {}, context()) == {"users": 1, "credits": 0}
    page, _ = await accounts.transactions("alice")
    assert [t.task_id for t in page[1:]] == [task, task]
    assert len({t.run_id for t in page}) == 3
    with pytest.raises(OperationError, match="User bob does not exist."):
        await operation.run(CreditRechargeParameters(user_id="bob"), {}, context())


# Through a real server ------------------------------------------------------------------------


def _auth(user: str, role: Role = Role.USER) -> dict[str, str]:
    return {"Cookie": f"access_token={create_token(user, role=role, settings=AuthSettings())}"}


async def _recharge_now(client: httpx.AsyncClient, user_id: str | None) -> str:
    soon = (datetime.now(UTC) + timedelta(milliseconds=300)).isoformat()
    response = await client.post(
        "/api/v1/scheduler/admin/system-tasks",
        headers=_auth("root", Role.ADMIN),
        json={
            "name": "recharge now",
            "task_type": "credit_recharge",
            "scheduled_at": soon,
            "parameters": {"user_id": user_id},
        },
    )
    assert response.status_code == 201, response.text
    task_id = str(response.json()["id"])
    await wait_status(client, task_id, "completed")
    return task_id


async def test_recharges_through_the_api(
    start_server: Callable[..., Server], database_url: str
) -> None:
    server = start_server(
        database_url,
        ONAIR__CREDITS__PLAN__CREDITS="100",
        ONAIR__CREDITS__PLAN__MAX_CREDITS="250",
    )
    async with server.client() as client:
        for name in ("alice", "bob"):
            me = (await client.get("/api/v1/users/me", headers=_auth(name))).json()
            assert (me["credits"], me["plan"]) == (100, {"credits": 100, "max_credits": 250})

        everyone = await _recharge_now(client, None)
        only_bob = await _recharge_now(client, "bob")
        await _recharge_now(client, "bob")

        alice = (await client.get("/api/v1/users/me", headers=_auth("alice"))).json()
        bob = (await client.get("/api/v1/users/me", headers=_auth("bob"))).json()
        assert (alice["credits"], bob["credits"]) == (200, 250)

        response = await client.get("/api/v1/users/me/credit-transactions", headers=_auth("bob"))
        page = response.json()
        assert page["total"] == 3
        assert [(t["amount"], t["balance"]) for t in page["transactions"]] == [
            (0, 250),
            (50, 250),
            (100, 200),
        ]
        assert [t["task_id"] for t in page["transactions"][1:]] == [only_bob, everyone]
        assert all(t["reason"] == "recharge" for t in page["transactions"])

        task = (
            await client.get(
                f"/api/v1/scheduler/tasks/{everyone}", headers=_auth("root", Role.ADMIN)
            )
        ).json()
        assert (task["status"], task["executions_count"]) == ("completed", 1)
        result = (await client.get(f"/tasks/completed/{everyone}")).json()["result"]
        # The admin who created the task is a user too (created on first use).
        assert result == {"users": 3, "credits": 300}

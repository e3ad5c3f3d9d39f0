"""The `credit_recharge` operation, and the system task that runs it every day.

`{"user_id": "..."}` recharges one user, `{"user_id": null}` (or `{}`) everyone, each by their
plan (see `onair.accounts.credits`). An occurrence of the task credits each user at most once,
however often it runs (a retry under a policy that allows one, or a run interrupted after its
commit and run again): its transactions are keyed by the occurrence (`occurrence_key`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from onair.accounts.credits import Accounts
from onair.engine.admission import ADMINS, Admission, Hold, Role
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Task
from onair.engine.policies import Policy
from onair.engine.registry import JSON, RunContext
from onair.errors import OperationError, TaskExists


class CreditRechargeParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        None, min_length=1, max_length=128, description="The user to recharge; null: everyone."
    )


def occurrence_key(context: RunContext) -> uuid.UUID:
    """The key of the occurrence `context`'s run serves: the same for its retries, another for
    the task's next occurrence."""
    return uuid.uuid5(context.task_id, f"occurrence {context.occurrence}")


class CreditRecharge:
    name: ClassVar[str] = "credit_recharge"
    Parameters: ClassVar[type[BaseModel]] = CreditRechargeParameters
    # No retries: a run's credits are committed in one transaction, so a failed run credited
    # nobody, and the next occurrence recharges as usual.
    policy: ClassVar[Policy] = Policy()
    # Admins only: a user must not top up their own balance, nor the open Tasks API anyone's.
    roles: ClassVar[frozenset[Role]] = ADMINS

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        """`{"users": n, "credits": total}` credited by this run.

        Raises:
            OperationError: `user_id` names no user.
        """
        assert isinstance(parameters, CreditRechargeParameters)
        user_id = parameters.user_id
        if user_id is not None and await self.accounts.get(user_id) is None:
            raise OperationError(f"User {user_id} does not exist.")
        recorded = await self.accounts.recharge(
            occurrence_key(context),
            run_id=context.run_id,
            task_id=context.task_id,
            user_id=user_id,
        )
        return {"users": len(recorded), "credits": sum(t.amount for t in recorded)}


DAILY_RECHARGE_ID = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://onair/system-tasks/daily-credit-recharge"
)
"""The fixed id of the start-up system task, the same on every node and every start."""

DAILY_RECHARGE = NewTask(
    id=DAILY_RECHARGE_ID,
    name="Daily Credit Recharge",
    owner=None,
    operation=Spec(CreditRecharge.name, {"user_id": None}),
    condition=Spec(
        "recurring",
        {"start": "2024-01-01T00:00:00", "timezone": "UTC", "frequency": "daily"},
    ),
)


async def ensure_daily_recharge(engine: Engine) -> Task:
    """Add the daily recharge of everyone at 00:00 UTC unless it exists. Safe when several
    nodes start at once: the fixed id lets exactly one add succeed. A cancelled one stays
    cancelled (until the cleaner removes it; the next start then adds it again)."""
    try:
        return await engine.add(DAILY_RECHARGE)
    except TaskExists:
        return await engine.get(DAILY_RECHARGE_ID)

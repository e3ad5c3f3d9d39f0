"""onair: the scheduler for radio stations and audio platforms.

The Python API (docs/python-api.md):

    from onair import Scheduler, TaskType

    async with Scheduler() as scheduler:
        task = await scheduler.create_task(name=..., task_type=TaskType.CREDIT_RECHARGE, ...)

`tests/unit/test_exports.py` keeps `__all__` sorted and in sync with what is importable.
"""

from __future__ import annotations

from onair.accounts.credits import Accounts, CreditTransaction, Plan, User
from onair.accounts.tokens import Principal, Role
from onair.config import Settings
from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Task
from onair.engine.registry import Operation, RunContext
from onair.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidParameters,
    NotFound,
    OnairError,
    OperationError,
    Problem,
    TaskExists,
    TaskFinished,
    TaskNotFound,
    Unauthorized,
)
from onair.scheduler import (
    RecurrenceType,
    ScheduledTask,
    Scheduler,
    SchedulerService,
    TaskStatus,
    TaskType,
)

__all__ = [
    "Accounts",
    "Conflict",
    "CreditTransaction",
    "Engine",
    "Forbidden",
    "InvalidInput",
    "InvalidParameters",
    "NewTask",
    "NotFound",
    "OnairError",
    "Operation",
    "OperationError",
    "Plan",
    "Principal",
    "Problem",
    "RecurrenceType",
    "Role",
    "RunContext",
    "ScheduledTask",
    "Scheduler",
    "SchedulerService",
    "Settings",
    "Spec",
    "Task",
    "TaskExists",
    "TaskFinished",
    "TaskNotFound",
    "TaskStatus",
    "TaskType",
    "Unauthorized",
    "User",
]

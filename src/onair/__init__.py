"""onair: the scheduler for radio stations and audio platforms.

The Python API (docs/python-api.md):

    from onair import Scheduler, TaskType

    async with Scheduler() as scheduler:
        task = await scheduler.create_task(name=..., task_type=TaskType.CREDIT_RECHARGE, ...)

`tests/unit/test_exports.py` keeps `__all__` sorted and in sync with what is importable.
Names are imported on first use, so that `onair serve` and the CLI start without loading
the whole API.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from onair.accounts.credits import Accounts, CreditTransaction, Plan, User
    from onair.accounts.roles import Role
    from onair.accounts.tokens import Principal
    from onair.app import Scheduler
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
    from onair.tasks import SchedulerService
    from onair.wire import RecurrenceType, ScheduledTask, TaskStatus, TaskType

_EXPORTS = {
    "Accounts": "onair.accounts.credits",
    "Conflict": "onair.errors",
    "CreditTransaction": "onair.accounts.credits",
    "Engine": "onair.engine.core",
    "Forbidden": "onair.errors",
    "InvalidInput": "onair.errors",
    "InvalidParameters": "onair.errors",
    "NewTask": "onair.engine.models",
    "NotFound": "onair.errors",
    "OnairError": "onair.errors",
    "Operation": "onair.engine.registry",
    "OperationError": "onair.errors",
    "Plan": "onair.accounts.credits",
    "Principal": "onair.accounts.tokens",
    "Problem": "onair.errors",
    "RecurrenceType": "onair.wire",
    "Role": "onair.accounts.roles",
    "RunContext": "onair.engine.registry",
    "ScheduledTask": "onair.wire",
    "Scheduler": "onair.app",
    "SchedulerService": "onair.tasks",
    "Settings": "onair.config",
    "Spec": "onair.engine.models",
    "Task": "onair.engine.models",
    "TaskExists": "onair.errors",
    "TaskFinished": "onair.errors",
    "TaskNotFound": "onair.errors",
    "TaskStatus": "onair.wire",
    "TaskType": "onair.wire",
    "Unauthorized": "onair.errors",
    "User": "onair.accounts.credits",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'onair' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

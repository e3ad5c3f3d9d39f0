"""The `test` operation: echoes its input, like the reference's, and can be told to take its time
or fail, so that long, cancellable and failing runs can be exercised through the API."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from onair.engine.admission import ANYONE, Admission, Hold, Role
from onair.engine.policies import Policy
from onair.engine.registry import JSON, RunContext
from onair.errors import OperationError


class TestParameters(BaseModel):
    """Any object; `sleep` and `fail` are the only fields that change what happens."""

    model_config = ConfigDict(extra="allow")

    sleep: float = Field(0, ge=0, le=86_400, description="Seconds to run before answering.")
    fail: str | None = Field(None, description="Fail with this message after sleeping.")


class Test:
    name: ClassVar[str] = "test"
    Parameters: ClassVar[type[BaseModel]] = TestParameters
    policy: ClassVar[Policy] = Policy()
    roles: ClassVar[frozenset[Role]] = ANYONE

    async def admit(self, parameters: Any, admission: Admission) -> Hold | None:
        return None

    async def run(
        self, parameters: Any, dependencies: Mapping[str, JSON], context: RunContext
    ) -> JSON:
        assert isinstance(parameters, TestParameters)
        if parameters.sleep:
            await asyncio.sleep(parameters.sleep)
        if parameters.fail is not None:
            raise OperationError(parameters.fail)
        return {
            "parameters": parameters.model_dump(exclude_unset=True),
            "dependencies": dict(dependencies),
        }

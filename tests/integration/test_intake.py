"""Adding tasks many to a transaction: concurrent `add` calls share commits yet each gets its
own answer; `add_many` stores all of its tasks or none. On both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from onair.engine.core import Engine
from onair.engine.models import NewTask, Spec, Status
from onair.errors import TaskExists, UnknownDependency
from onair.store.database import Store


def later(seconds: float = 3600) -> Spec:
    return Spec("at", {"datetime": (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()})


async def test_concurrent_adds_share_commits_and_each_gets_its_answer(
    engine: Engine, store: Store
) -> None:
    taken = uuid.uuid4()
    await engine.add(NewTask(Spec("test"), later(), id=taken))
    commits: list[object] = []

    def count(*_: Any) -> None:
        commits.append(None)

    news = [NewTask(Spec("test"), later(), name=f"n{i}") for i in range(200)]
    news[50] = NewTask(Spec("test"), later(), id=taken)  # id already taken
    news[120] = NewTask(Spec("test"), later(), dependencies={"x": uuid.uuid4()})  # no such task
    event.listen(store.sync_engine, "commit", count)
    try:
        answers = await asyncio.gather(*(engine.add(n) for n in news), return_exceptions=True)
    finally:
        event.remove(store.sync_engine, "commit", count)

    assert isinstance(answers[50], TaskExists)
    assert isinstance(answers[120], UnknownDependency)
    for i, answer in enumerate(answers):
        if i in (50, 120):
            continue
        assert not isinstance(answer, BaseException)
        task = await engine.get(answer.id)
        assert (task.name, task.status) == (f"n{i}", Status.PENDING)
    assert len(commits) <= 20, f"{len(commits)} commits for 200 concurrent adds"


async def test_add_many_stores_all_or_nothing(engine: Engine) -> None:
    before = sum(len(ids) for ids in (await engine.index()).values())
    news = [NewTask(Spec("test"), later()) for _ in range(5)]
    news.append(NewTask(Spec("test"), later(), dependencies={"x": uuid.uuid4()}))
    with pytest.raises(UnknownDependency):
        await engine.add_many(news)
    assert sum(len(ids) for ids in (await engine.index()).values()) == before

    added = await engine.add_many(news[:5])
    assert [task.status for task in added] == [Status.PENDING] * 5
    for task in added:
        assert (await engine.get(task.id)).id == task.id


async def test_add_many_runs_a_task_after_one_it_depends_on_in_the_same_batch(
    engine: Engine,
) -> None:
    first = uuid.uuid4()
    tasks = await engine.add_many(
        [
            NewTask(Spec("test", {"result": 7}), later(0.3), id=first),
            NewTask(Spec("test"), later(0.3), dependencies={"first": first}),
        ]
    )
    async with asyncio.timeout(10):
        while not (await engine.get(tasks[1].id)).status.finished:
            await asyncio.sleep(0.02)
    assert (await engine.get(tasks[0].id)).status is Status.COMPLETED
    second = await engine.get(tasks[1].id)
    assert second.status is Status.COMPLETED
    assert second.result["dependencies"]["first"]["parameters"] == {"result": 7}

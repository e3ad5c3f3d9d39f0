"""The Python API in-process on SQLite and PostgreSQL: the docs' example run as written, the
seed's calls, and errors raised as domain errors naming the argument."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from onair import (
    InvalidParameters,
    NewTask,
    Principal,
    RecurrenceType,
    Role,
    ScheduledTask,
    Scheduler,
    Spec,
    TaskStatus,
    TaskType,
)
from onair.config import Settings
from onair.operations.credit_recharge import DAILY_RECHARGE_ID
from tests.integration.tones import tone

DOCS = Path(__file__).parents[2] / "docs" / "python-api.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOCS.read_text(), re.S | re.M)


async def test_the_documented_example_runs_as_documented(tmp_path: Path) -> None:
    [example] = _blocks("python")
    [expected] = _blocks("text")
    script = tmp_path / "example.py"
    script.write_text(example)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        str(script),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode() == expected
    assert (tmp_path / "data" / "example.db").exists()


SEED = Path("/work/shared/seeds/004_0bf9f0c84ecd7651.txt")
SEED_BODY = re.compile(r"# Create a one-shot task.*?limit=20\s*\)", re.S)
PLACEHOLDERS = {"str(sound.id)": '"sound-uuid-here"', "str(playlist.id)": '"playlist-uuid"'}


def _code(text: str) -> str:
    """Code without its layout (whitespace, trailing commas): the seed is stored flattened,
    and `ruff format` lays the docs' copy out."""
    return re.sub(r",([)}\]])", r"\1", "".join(text.split()))


async def test_the_seeds_example_runs_with_only_its_imports_and_set_up_changed(
    tmp_path: Path,
) -> None:
    """Seed 004's `SchedulerService` example, as docs/python-api.md adapts it: between its set-up
    and its closing prints, the code is the seed's word for word (placeholder ids aside); it
    runs, and its answers are aware instants that show the naive-time rule."""
    [example] = _blocks("py")
    body = SEED_BODY.search(example)
    assert body is not None
    ours = body.group(0)
    for replacement, placeholder in PLACEHOLDERS.items():
        ours = ours.replace(replacement, placeholder)
    seed_text = await asyncio.to_thread(lambda: SEED.read_text() if SEED.exists() else None)
    if seed_text is not None:  # the seeds sit beside the repository (stored flattened)
        seed = SEED_BODY.search(seed_text)
        assert seed is not None
        assert _code(ours) == _code(seed.group(0))

    tone(tmp_path / "alarm.wav", 0.5)
    script = tmp_path / "seed.py"
    script.write_text(example)
    began = datetime.now(UTC)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    lines = dict(line.split(": ", 1) for line in out.decode().splitlines())
    assert lines["cancelled"] == "True"
    assert lines["pending"] == "['Weekly Playlist']"
    # utcnow() + 2 h, read as New York wall time: 2 h plus New York's offset from UTC.
    one_shot = datetime.fromisoformat(lines["one-shot at"])
    assert one_shot.utcoffset() == timedelta(0)
    ahead = began.astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert ahead is not None
    meant = began + timedelta(hours=2) - ahead
    assert abs(one_shot - meant) < timedelta(seconds=30), (one_shot, meant)
    weekly = datetime.fromisoformat(lines["weekly at"])
    assert abs(weekly - (began + timedelta(days=1))) < timedelta(seconds=30)


@pytest.fixture
async def scheduler(database_url: str) -> AsyncIterator[Scheduler]:
    async with Scheduler(database_url=database_url) as scheduler:
        yield scheduler


async def _wait_finished(scheduler: Scheduler, task: ScheduledTask) -> ScheduledTask:
    async with asyncio.timeout(15):
        while True:
            found = await scheduler.get_task(task.id)
            assert found is not None
            if found.status.finished:
                return found
            await asyncio.sleep(0.05)


async def test_the_seeds_calls(scheduler: Scheduler) -> None:
    """The seed's Python example, call for call. The play types wait for the audio
    operations; until then they are refused by name, and the same calls run with recharges."""
    user = await scheduler.accounts.ensure(Principal("seed-user", Role.USER))
    for task_type, parameters in (
        (TaskType.PLAY_SOUND, {"sound_id": "0b6c4e4e-4a55-4d2e-9a53-0b1a9a6c3c11"}),
        (
            TaskType.PLAY_PLAYLIST,
            {
                "playlist_id": "5d1f3b0e-7f43-4a39-9b8e-2f3a8c1d9e77",
                "play_mode": "continuous",
                "shuffle": False,
            },
        ),
    ):
        if task_type.value in scheduler.engine.registry:
            continue
        with pytest.raises(InvalidParameters) as raised:
            await scheduler.create_task(
                name="Test Sound",
                task_type=task_type,
                scheduled_at=datetime.now(UTC) + timedelta(hours=2),
                timezone="America/New_York",
                parameters=parameters,
                user_id=user.id,
            )
        unavailable = f"task type {task_type} is not available on this server"
        assert str(raised.value) == f"task_type: {unavailable}"

    task = await scheduler.create_task(
        name="Test Sound",
        task_type=TaskType.CREDIT_RECHARGE,
        scheduled_at=datetime.now(UTC) + timedelta(hours=2),
        timezone="America/New_York",
        parameters={"user_id": user.id},
        user_id=user.id,
    )
    recurring_task = await scheduler.create_task(
        name="Weekly Playlist",
        task_type=TaskType.CREDIT_RECHARGE,
        scheduled_at=datetime.now(UTC) + timedelta(days=1),
        recurrence_type=RecurrenceType.WEEKLY,
        recurrence_count=10,
        parameters={"user_id": user.id},
        user_id=user.id,
    )
    assert (recurring_task.recurrence_type, recurring_task.recurrence_count) == ("weekly", 10)
    success = await scheduler.cancel_task(task.id)
    assert success is True
    user_tasks = await scheduler.get_user_tasks(
        user_id=user.id, status=TaskStatus.PENDING, limit=20
    )
    assert [t.id for t in user_tasks] == [recurring_task.id]
    assert [t.id for t in await scheduler.get_user_tasks(user.id)] == [
        recurring_task.id,
        task.id,
    ]


async def test_naive_scheduled_at_is_wall_time_in_the_zone(scheduler: Scheduler) -> None:
    task = await scheduler.create_task(
        name="New York morning",
        task_type=TaskType.CREDIT_RECHARGE,
        scheduled_at=datetime(2031, 1, 15, 9, 0),
        timezone="America/New_York",
        parameters={},
    )
    assert task.scheduled_at == datetime(2031, 1, 15, 14, 0, tzinfo=UTC)
    assert task.next_execution_at == datetime(2031, 1, 15, 14, 0, tzinfo=UTC)
    assert task.timezone == "America/New_York"
    assert task.user_id is None


async def test_a_task_runs_in_process(scheduler: Scheduler) -> None:
    await scheduler.accounts.ensure(Principal("runner", Role.USER))
    task = await scheduler.create_task(
        name="now",
        task_type="credit_recharge",
        scheduled_at=datetime.now(UTC) + timedelta(milliseconds=200),
        parameters={"user_id": "runner"},
        user_id="runner",
    )
    done = await _wait_finished(scheduler, task)
    assert (done.status, done.executions_count, done.error_message) == (
        TaskStatus.COMPLETED,
        1,
        None,
    )
    assert done.last_executed_at is not None
    assert abs(done.last_executed_at - task.scheduled_at) < timedelta(seconds=1)
    runner = await scheduler.accounts.get("runner")
    assert runner is not None
    assert runner.credits == 200


async def test_the_scheduler_keeps_the_daily_recharge(scheduler: Scheduler) -> None:
    daily = await scheduler.get_task(DAILY_RECHARGE_ID)
    assert daily is not None
    assert (daily.name, daily.recurrence_type, daily.status) == (
        "Daily Credit Recharge",
        "daily",
        TaskStatus.PENDING,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {"timezone": "Mars/Olympus_Mons"},
            "timezone: unknown time zone 'Mars/Olympus_Mons': use an IANA name such as "
            "'Europe/Warsaw'",
            id="unknown_zone",
        ),
        pytest.param(
            {"recurrence_type": "cron"},
            "cron_expression: cron_expression is required with cron",
            id="cron_without_expression",
        ),
        pytest.param(
            {"recurrence_type": "cron", "cron_expression": "61 * * * *"},
            "cron_expression: invalid cron expression '61 * * * *': [61 * * * *] is not "
            "acceptable, out of range",
            id="bad_cron",
        ),
        pytest.param(
            {"task_type": "play_sound", "parameters": {}},
            "parameters.sound_id: Field required",
            id="missing_sound_id",
        ),
        pytest.param(
            {"task_type": "rocket_launch"},
            "task_type: Input should be 'credit_recharge', 'play_sound' or 'play_playlist'",
            id="unknown_type",
        ),
    ],
)
async def test_errors_name_the_argument(
    scheduler: Scheduler, arguments: dict[str, object], message: str
) -> None:
    call: dict[str, object] = {
        "name": "wrong",
        "task_type": TaskType.CREDIT_RECHARGE,
        "scheduled_at": datetime(2031, 1, 1),
        "parameters": {},
    } | arguments
    with pytest.raises(InvalidParameters) as raised:
        await scheduler.create_task(**call)  # type: ignore[arg-type]
    assert str(raised.value) == message


async def test_unknown_ids(scheduler: Scheduler) -> None:
    missing = "85478e12-fd0d-4de3-a26b-cd1ec7f94f2b"
    assert await scheduler.get_task(missing) is None
    assert await scheduler.cancel_task(missing) is False
    assert await scheduler.get_task_runs(missing) == []


async def test_a_tasks_runs_and_its_retry_policy(scheduler: Scheduler) -> None:
    user = await scheduler.accounts.ensure(Principal("carol", Role.USER))
    task = await scheduler.create_task(
        name="Top up Carol",
        task_type=TaskType.CREDIT_RECHARGE,
        scheduled_at=datetime.now(UTC),
        parameters={"user_id": user.id},
        user_id=user.id,
        policy={"retry": {"attempts": 3, "backoff": "PT1S"}},  # trusted: below the user bound
    )
    assert task.policy == {
        "retry": {"attempts": 3, "backoff": "PT1S", "factor": 2.0, "cap": "PT10M"}
    }
    async with asyncio.timeout(15):
        while not (runs := await scheduler.get_task_runs(task.id)) or runs[0].outcome is None:
            await asyncio.sleep(0.05)
    (run,) = runs
    assert run.outcome == "completed"
    assert run.attempt == 1
    assert run.started_at is not None
    assert run.lateness is not None
    assert run.started_at - run.due_at == timedelta(seconds=run.lateness)
    assert run.result is not None


async def test_settings_and_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'other.db'}"
    settings = Settings(credits={"daily_recharge": False})  # type: ignore[arg-type]
    async with Scheduler(settings, database_url=url) as scheduler:
        assert scheduler.node.settings.store.url == url
        assert await scheduler.get_task(DAILY_RECHARGE_ID) is None
    assert (tmp_path / "other.db").exists()


async def test_the_engine_underneath_adds_many_tasks_at_once(scheduler: Scheduler) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    news = [NewTask(Spec("test", {"n": i}), Spec("at", {"datetime": soon})) for i in range(20)]
    tasks = await scheduler.engine.add_many(news)
    assert [task.operation.parameters for task in tasks] == [{"n": i} for i in range(20)]
    async with asyncio.timeout(15):
        for task in tasks:
            while not (found := await scheduler.engine.get(task.id)).status.finished:
                await asyncio.sleep(0.05)
            assert found.result == {
                "parameters": {"n": task.operation.parameters["n"]},
                "dependencies": {},
            }


async def test_pause_and_resume_from_python(scheduler: Scheduler) -> None:
    task = await scheduler.create_task(
        name="weekly",
        task_type=TaskType.CREDIT_RECHARGE,
        scheduled_at=datetime.now(UTC) + timedelta(days=1),
        recurrence_type=RecurrenceType.WEEKLY,
    )
    paused = await scheduler.pause_task(task.id, note="budget review", by="Ola")
    assert paused is not None
    assert (paused.paused_by, paused.pause_note) == ("Ola", "budget review")
    again = await scheduler.get_task(task.id)
    assert again is not None
    assert again.paused_at == paused.paused_at
    resumed = await scheduler.resume_task(task.id)
    assert resumed is not None
    assert resumed.paused_at is None
    assert await scheduler.pause_task("01234567-89ab-cdef-0123-456789abcdef") is None
    assert await scheduler.cancel_task(task.id)

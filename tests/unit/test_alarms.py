"""Waiting for instants: sleeps that never end late by the kernel's slack, and one timer per
instant however many runs wait for it."""

from __future__ import annotations

import asyncio
import gc
import time
from datetime import UTC, datetime, timedelta

import pytest

from onair.timeutil import (
    PAUSE_COLLECTION_PAST,
    SLACK,
    Alarms,
    CompressedClock,
    SystemClock,
    sleep_until,
    trusted,
)


def test_short_sleeps_are_trusted_whole_and_long_ones_end_early_by_the_slack() -> None:
    assert trusted(0.004) == 0.004
    assert trusted(3.0) == pytest.approx(3.0 - 3.0 * SLACK)
    # Linux may add 0.1% to a sleep: what is trusted of a long one still ends before it.
    for delay in (0.02, 1.0, 30.0, 3600.0):
        assert trusted(delay) * 1.001 < delay


async def test_sleep_until_never_returns_before_the_instant() -> None:
    clock = SystemClock()
    for offset in (0.0, 0.003, 0.03, 0.3):
        instant = clock.now() + timedelta(seconds=offset)
        await sleep_until(clock, instant)
        assert clock.now() >= instant


async def test_a_compressed_clock_runs_factor_times_faster_and_so_do_its_sleeps() -> None:
    start = datetime(2027, 3, 27, 22, tzinfo=UTC)
    clock = CompressedClock(start, 3600)  # an hour a second
    assert clock.real(7200) == 2.0
    assert SystemClock().real(7200) == 7200
    assert start <= clock.now() < start + timedelta(minutes=5)
    alarms = Alarms(clock)
    began = time.monotonic()
    instant = clock.now() + timedelta(minutes=30)  # half a real second
    await sleep_until(clock, instant)
    assert clock.now() >= instant
    await alarms.wait(instant + timedelta(minutes=15))
    assert clock.now() >= instant + timedelta(minutes=15)
    assert 0.75 <= time.monotonic() - began < 3  # not 45 minutes
    with pytest.raises(ValueError, match="factor"):
        CompressedClock(start, 0)


async def test_waiters_on_one_instant_share_a_timer_and_wake_together() -> None:
    alarms = Alarms(SystemClock())
    instant = datetime.now(UTC) + timedelta(seconds=0.2)
    woken: list[datetime] = []

    async def waiter() -> None:
        await alarms.wait(instant)
        woken.append(datetime.now(UTC))

    waiters = [asyncio.create_task(waiter()) for _ in range(50)]
    await asyncio.sleep(0.05)
    assert len(alarms._timers) == 1  # one timer for the 50 of them
    await asyncio.gather(*waiters)
    assert min(woken) >= instant
    assert max(woken) - instant < timedelta(seconds=0.1)
    assert not alarms._timers


async def test_a_cancelled_waiter_leaves_the_others_waiting() -> None:
    alarms = Alarms(SystemClock())
    instant = datetime.now(UTC) + timedelta(seconds=0.2)
    first = asyncio.create_task(alarms.wait(instant))
    second = asyncio.create_task(alarms.wait(instant))
    await asyncio.sleep(0.02)
    first.cancel()
    await second
    assert datetime.now(UTC) >= instant
    assert first.cancelled()


async def test_close_cancels_whoever_still_waits() -> None:
    alarms = Alarms(SystemClock())
    waiter = asyncio.create_task(alarms.wait(datetime.now(UTC) + timedelta(hours=1)))
    await asyncio.sleep(0.02)
    alarms.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


async def test_clear_of_waits_past_an_instant_due_within_the_span_only() -> None:
    clock = SystemClock()
    alarms = Alarms(clock)
    soon = clock.now() + timedelta(seconds=0.1)
    waiter = asyncio.create_task(alarms.wait(soon))
    await asyncio.sleep(0)
    began = clock.now()
    await alarms.clear_of(0.01)  # 0.1 s away: clear of a 10 ms span already
    assert clock.now() - began < timedelta(seconds=0.05)
    await alarms.clear_of(0.5)  # within a 0.5 s span: waits past it, and the waiter first
    assert clock.now() >= soon
    assert waiter.done()


async def test_clear_of_returns_when_the_alarms_close_and_raises_when_cancelled_itself() -> None:
    """A node that shuts down closes its alarms while its recorder waits in `clear_of`: the
    recorder must go on to write the last ends, not die of the closed alarm's cancellation
    (it did, and the engine's exit raised CancelledError)."""
    clock = SystemClock()
    alarms = Alarms(clock)
    asyncio.create_task(alarms.wait(clock.now() + timedelta(seconds=0.3)))
    await asyncio.sleep(0)
    clearing = asyncio.create_task(alarms.clear_of(1.0, patience=1.0))
    await asyncio.sleep(0.02)
    alarms.close()
    await asyncio.wait_for(clearing, 1)  # returns, without raising

    asyncio.create_task(alarms.wait(clock.now() + timedelta(seconds=0.3)))
    await asyncio.sleep(0)
    clearing = asyncio.create_task(alarms.clear_of(1.0, patience=1.0))
    await asyncio.sleep(0.02)
    clearing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await clearing
    alarms.close()


async def test_a_crowded_instant_starts_its_waiters_without_a_collection_then_collects_again() -> (
    None
):
    """Thousands of runs due at one instant start in one pass of the loop; a garbage
    collection in the middle of it (milliseconds with that many runs held) would delay every
    run after it. The collector is back on once they have all started."""
    clock = SystemClock()
    alarms = Alarms(clock)
    instant = clock.now() + timedelta(milliseconds=20)
    seen: list[bool] = []

    async def run() -> None:
        await alarms.wait(instant)
        seen.append(gc.isenabled())

    crowd = [asyncio.create_task(run()) for _ in range(PAUSE_COLLECTION_PAST + 1)]
    await asyncio.gather(*crowd)
    assert seen == [False] * len(crowd)
    assert gc.isenabled()

    seen.clear()
    instant = clock.now() + timedelta(milliseconds=20)
    await asyncio.gather(*(asyncio.create_task(run()) for _ in range(3)))
    assert seen == [True] * 3

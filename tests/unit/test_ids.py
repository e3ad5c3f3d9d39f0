"""Row ids: UUIDs version 7, so that ids made one after another sort together."""

from __future__ import annotations

import time
import uuid

from onair.store.schema import new_id


def test_new_ids_are_version_7_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after  # the first 48 bits: milliseconds since the epoch


def test_ids_made_in_later_milliseconds_sort_later_and_never_repeat() -> None:
    ids = []
    for _ in range(5):
        ids.append(new_id())
        time.sleep(0.002)
    assert ids == sorted(ids)
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]  # as stored: hex text
    assert len({new_id() for _ in range(10_000)}) == 10_000

"""Payloads for other nodes packed into notifications: as few as hold them, none over
PostgreSQL's limit, and split back into exactly what was sent."""

from __future__ import annotations

from onair.store.database import NOTIFICATION_BYTES, packed


def test_payloads_pack_into_few_notifications_under_the_limit_and_split_back() -> None:
    payloads = [f"event {i:04d} " + "é" * (i % 300) for i in range(2_000)]  # é: two bytes
    notifications = packed(payloads)
    assert all(len(n.encode()) <= NOTIFICATION_BYTES for n in notifications)
    assert [p for n in notifications for p in n.split("\n")] == payloads
    total = sum(len(p.encode()) + 1 for p in payloads)
    assert len(notifications) <= total // (NOTIFICATION_BYTES - 700) + 1  # each nearly full


def test_a_lone_payload_travels_as_it_is_and_nothing_makes_no_notification() -> None:
    assert packed(["due 2026-12-04T00:00:00+00:00"]) == ["due 2026-12-04T00:00:00+00:00"]
    assert packed([]) == []

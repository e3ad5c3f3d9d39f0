"""What the recorder writes when the store refused a run's end: its text made storable."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from onair.engine.models import Outcome
from onair.engine.transitions import Ended, storable, storable_text


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        pytest.param("plain é ✓ 🎵", "plain é ✓ 🎵", id="storable_text_unchanged"),
        pytest.param("a\x00b\x00", "a\ufffdb\ufffd", id="nul_replaced"),
        pytest.param("lone \ud800 and \udfff", "lone \ufffd and \ufffd", id="lone_surrogates"),
        pytest.param("\ud83c\udfb5", "\ufffd\ufffd", id="surrogate_pair_as_code_points"),
    ],
)
def test_storable_text(text: str, stored: str) -> None:
    assert storable_text(text) == stored
    storable_text(text).encode("utf-8")  # strict: what the drivers do


def test_an_end_is_made_storable_in_its_error_and_its_result() -> None:
    now = datetime.now(UTC)
    end = Ended(
        uuid4(),
        uuid4(),
        Outcome.FAILED,
        now,
        now,
        result={"k\x00": ["v\ud800", 1, 2.5, True, None, ("t",)], "other": object},
        error="Operation x failed: \x00.",
    )
    clean = storable(end)
    assert clean.error == "Operation x failed: \ufffd."
    assert clean.result == {
        "k\ufffd": ["v\ufffd", 1, 2.5, True, None, ["t"]],
        "other": "<class 'object'>",
    }
    assert (clean.run_id, clean.task_id, clean.outcome, clean.attempt) == (
        end.run_id,
        end.task_id,
        end.outcome,
        end.attempt,
    )
    assert storable(Ended(uuid4(), uuid4(), Outcome.COMPLETED, now, now)).error is None

"""The dashboard's zone is a setting, checked when the settings are read."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from onair.config import Settings


def test_the_dashboard_zone_is_an_iana_name() -> None:
    assert Settings().ui.timezone == "UTC"
    assert Settings(ui={"timezone": "Europe/Warsaw"}).ui.timezone == "Europe/Warsaw"  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        Settings(ui={"timezone": "Mars/Base"})  # type: ignore[arg-type]

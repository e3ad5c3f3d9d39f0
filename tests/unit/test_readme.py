"""The README's settings table is exactly what `onair settings` prints."""

from __future__ import annotations

import re
from pathlib import Path

from onair.config import settings_table

README = Path(__file__).parents[2] / "README.md"


def test_readme_lists_every_setting() -> None:
    text = README.read_text()
    match = re.search(r"<!-- settings:begin.*?-->\n(.*?)<!-- settings:end -->", text, re.S)
    assert match is not None, "the README lost its settings markers"
    assert match.group(1).strip() == settings_table(), (
        "README settings are out of date: run `make readme`"
    )


def test_readme_opens_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:8]
    assert any(line.startswith("make run") for line in head)
    assert any(line.startswith("make test") for line in head)

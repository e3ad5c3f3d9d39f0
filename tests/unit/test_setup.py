"""A newcomer's set-up: `make run` installs what serving needs and nothing else, and the README
says how to get `onair` on the PATH right under the two commands."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _installs(target: str, tmp_path: Path) -> list[str]:
    """What pip installs for `make target`, read from make's dry run (`-B`: as on a fresh
    clone, `VENV` in `tmp_path`: nothing of the worktree's own is looked at)."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    dry = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return re.findall(r"pip install --quiet -e '([^']*)'", dry)


def test_make_run_installs_only_the_serving_dependencies(tmp_path: Path) -> None:
    assert _installs("run", tmp_path) == ["."]


def test_make_test_and_bench_bring_their_tools(tmp_path: Path) -> None:
    assert ".[dev]" in _installs("test", tmp_path)
    assert ".[dev]" in _installs("lint", tmp_path)
    assert ".[dev,bench]" in _installs("bench", tmp_path)


def test_the_readme_says_how_onair_gets_on_the_path() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:16])
    assert "source .venv/bin/activate" in head
    assert "/api/v1/docs" in head
    assert "/docs" in head

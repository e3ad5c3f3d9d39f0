"""The layers as `import-linter` contracts (pyproject.toml): kept by the code as it is, and
broken, with the contract named, by an import that runs back up a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(source: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's contracts, over the `onair` package under `source`."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_code_keeps_its_layers() -> None:
    result = _lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        pytest.param(
            "engine/core.py",
            "import onair.audio.player",
            "Layers: each part imports only the parts below it",
            id="engine_imports_audio",
        ),
        pytest.param(
            "tasks.py",
            "import onair.app",
            "Layers: each part imports only the parts below it",
            id="service_imports_composition_root",
        ),
        pytest.param(
            "broadcast/synchronizer.py",
            "import onair.operations.stream",
            "Layers: each part imports only the parts below it",
            id="broadcast_imports_operations",
        ),
        pytest.param(
            "audio/library.py",
            "import sqlalchemy",
            "SQL lives in the store",
            id="media_library_writes_sql",
        ),
        pytest.param(
            "tasks.py",
            "import fastapi",
            "Only the API and the command line know HTTP",
            id="service_imports_fastapi",
        ),
    ],
)
def test_an_import_back_up_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(ROOT / "src" / "onair", tmp_path / "onair")
    path = tmp_path / "onair" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout

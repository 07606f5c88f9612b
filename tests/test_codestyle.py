"""ruff and mypy over the packages: the code must stay clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["edge_agent", "central", "drivers", "firmware_sim", "demo"]

pytestmark = pytest.mark.lint


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_is_clean() -> None:
    folders = [name for name in (*PACKAGES, "tests", "bench") if (ROOT / name).is_dir()]
    result = _run("ruff", "check", *folders)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr

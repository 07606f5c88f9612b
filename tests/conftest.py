"""Shared test configuration.

Tests are marked by the folder they live in, so `pytest -m unit` runs the fast pure suite alone:
``tests/unit`` → ``unit``, ``tests/hil`` → ``hil``, ``tests/integration`` → ``integration``,
``tests/browser`` → ``browser``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_FOLDER_MARKERS = {"unit": "unit", "hil": "hil", "integration": "integration", "browser": "browser"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        marker = _FOLDER_MARKERS.get(rel.parts[0]) if len(rel.parts) > 1 else None
        if marker and not any(m.name == "lint" for m in item.iter_markers()):
            item.add_marker(getattr(pytest.mark, marker))


VECTORS = ROOT / "tests" / "vectors" / "icao9303.json"


@pytest.fixture(scope="session")
def icao_vectors() -> dict[str, Any]:
    """ICAO Doc 9303-11 worked examples (Appendix D and G.1), hex upper case."""
    with VECTORS.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data

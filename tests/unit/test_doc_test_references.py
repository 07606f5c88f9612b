"""Tests named in the documents exist: every ``<folder>/test_x.py::test_name`` reference in
``docs/*.md`` (the threat model's table of attacks and the tests that refuse them,
docs/privacy.md §2) names a test function defined in that file under ``tests/``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_REFERENCE = re.compile(r"`(?:tests/)?((?:unit|integration|hil|browser)/test_\w+\.py)::(\w+)`")


def references(text: str) -> list[tuple[str, str]]:
    return _REFERENCE.findall(text)


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")}


def test_reference_parser() -> None:
    assert references("`integration/test_a.py::test_b`, `tests/unit/test_c.py::test_d` "
                      "`x.py::test_e`") == [("integration/test_a.py", "test_b"),
                                            ("unit/test_c.py", "test_d")]


def test_every_test_a_document_names_exists() -> None:
    found = [(doc.name, file, name) for doc in sorted((ROOT / "docs").glob("*.md"))
             for file, name in references(doc.read_text(encoding="utf-8"))]
    assert any(doc == "privacy.md" for doc, _, _ in found)
    missing = [(doc, f"{file}::{name}") for doc, file, name in found
               if not (ROOT / "tests" / file).is_file()
               or name not in defined_tests(ROOT / "tests" / file)]
    assert missing == []

"""Citations of the project's documents resolve: ``docs/<name>.md §N`` names a section that exists,
and no file cites a design or domain document that lives outside the repository.

docs/design.md and docs/cccd.md keep fixed section numbers so that the citations in code, tests
and documents stay valid; this test fails when a citation names a missing document or section.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED_FOLDERS = ("edge_agent", "central", "drivers", "firmware_sim", "tests", "bench", "deploy",
                   "docs")
SCANNED_SUFFIXES = {".py", ".md", ".json", ".toml", ".sh", ".acl", ".conf", ".service", ".timer",
                    ".txt", ".html", ".mako"}

_CITATION = re.compile(r"docs/([a-z0-9-]+)\.md((?:[`\s,;]*(?:and\s+|…\s*)?§\d+(?:\.\d+)*"
                       r"(?:-\d+)?)+)")
_SECTION = re.compile(r"§(\d+(?:\.\d+)*)(?:-(\d+))?")
# Upper-case names of design and domain notes kept outside the repository, and parent-folder
# paths to them; written split so that this file does not match itself.
_OUTSIDE = re.compile("(?:DESIGN|CCCD)" + r"\.md|\.\./" + "shared")
_HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SCANNED_FOLDERS:
        files += [p for p in sorted((ROOT / folder).rglob("*"))
                  if p.is_file() and p.suffix in SCANNED_SUFFIXES and "__pycache__" not in p.parts]
    return files


def sections_of(document: Path) -> set[str]:
    return set(_HEADING.findall(document.read_text(encoding="utf-8")))


def cited_sections(text: str) -> list[tuple[str, str]]:
    """``(document name, section)`` for every section a citation names (ranges expanded)."""
    found: list[tuple[str, str]] = []
    for match in _CITATION.finditer(text):
        for section in _SECTION.finditer(match.group(2)):
            first, last = section.group(1), section.group(2)
            if last is None:
                found.append((match.group(1), first))
            else:
                found += [(match.group(1), str(n)) for n in range(int(first), int(last) + 1)]
    return found


def test_citation_parser_reads_lists_and_ranges() -> None:
    text = ("(docs/cccd.md §2, §6) docs/design.md §2.1 \"Flows\" docs/cccd.md §2-4. "
            "(`docs/cccd.md §8`, §10) docs/protocol.md §4.7; not §9")
    assert cited_sections(text) == [
        ("cccd", "2"), ("cccd", "6"), ("design", "2.1"), ("cccd", "2"), ("cccd", "3"),
        ("cccd", "4"), ("cccd", "8"), ("cccd", "10"), ("protocol", "4.7")]


def test_design_and_domain_documents_keep_their_section_numbers() -> None:
    assert {"1", "2", "2.1", "2.2", "2.3", "2.4", "2.5", "3", "4", "5"} <= sections_of(
        ROOT / "docs" / "design.md")
    assert {str(n) for n in range(1, 11)} <= sections_of(ROOT / "docs" / "cccd.md")


def test_every_cited_section_exists() -> None:
    known: dict[str, set[str]] = {}
    broken: list[str] = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for name, section in cited_sections(text):
            document = ROOT / "docs" / f"{name}.md"
            if name not in known:
                known[name] = sections_of(document) if document.is_file() else set()
            if section not in known[name]:
                broken.append(f"{path.relative_to(ROOT)}: docs/{name}.md §{section}")
    assert broken == []


def test_no_citation_points_outside_the_repository() -> None:
    outside = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
               for path in scanned_files()
               for number, line in enumerate(
                   path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
               if _OUTSIDE.search(line)]
    assert outside == []

"""requirements.lock against pyproject.toml, and the running environment against the lock.

The lock (pip-compile with hashes, re-resolved by ``bash deploy/lock.sh``) is what
``deploy/setup.sh`` installs with ``pip install --require-hashes``. These tests fail when someone
edits a dependency in ``pyproject.toml`` without re-locking, edits the lock by hand, or runs the
suite in an environment that is not the lock (so no test passes against an unlocked library).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
LOCK_IN = ROOT / "deploy" / "lock.in"
PROJECT_SOURCE = "cccd-checkin (pyproject.toml)"
LOCK_IN_SOURCE = "-r deploy/lock.in"
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class LockFormatError(ValueError):
    """A line of the lock that is not what pip-compile writes."""


@dataclass
class Pin:
    """One entry of the lock: ``name[extras]==version ; marker``, its hashes and its sources."""

    requirement: Requirement
    hashes: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> Version:
        (spec,) = self.requirement.specifier
        return Version(spec.version)

    def applies(self) -> bool:
        """Whether the entry's marker (if any) holds on this interpreter and platform."""
        marker = self.requirement.marker
        return marker is None or marker.evaluate()


def parse_lock(text: str) -> dict[str, Pin]:
    """The entries of a pip-compile lock written with ``--generate-hashes`` and annotations."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via_list = False
    logical = text.replace("\\\n", " ")
    for number, line in enumerate(logical.splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            current, in_via_list = None, False
            continue
        if line[0] not in " \t#":
            spec, _, rest = line.partition("--hash=")
            try:
                requirement = Requirement(spec.strip())
            except InvalidRequirement as exc:
                raise LockFormatError(f"line {number}: {exc}") from exc
            specs = list(requirement.specifier)
            if len(specs) != 1 or specs[0].operator != "==":
                raise LockFormatError(f"line {number}: {requirement.name} is not pinned with ==")
            current = Pin(requirement, _HASH.findall("--hash=" + rest) if rest else [])
            if current.name in pins:
                raise LockFormatError(f"line {number}: {current.name} pinned twice")
            pins[current.name] = current
            in_via_list = False
        elif current is not None and stripped.startswith("# via"):
            source = stripped.removeprefix("# via").strip()
            in_via_list = not source
            if source:
                current.via.append(source)
        elif current is not None and in_via_list and stripped.startswith("#   "):
            current.via.append(stripped.removeprefix("#").strip())
    return pins


@cache
def lock() -> dict[str, Pin]:
    return parse_lock(LOCK.read_text(encoding="utf-8"))


def _project_requirements() -> dict[str, list[Requirement]]:
    """Direct requirements by where they are declared."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lock_in = [
        line.split("#", 1)[0].strip()
        for line in LOCK_IN.read_text(encoding="utf-8").splitlines()
    ]
    return {
        "[project].dependencies": [Requirement(r) for r in pyproject["project"]["dependencies"]],
        "[project.optional-dependencies].test": [
            Requirement(r) for r in pyproject["project"]["optional-dependencies"]["test"]
        ],
        "[build-system].requires": [Requirement(r) for r in pyproject["build-system"]["requires"]],
        "deploy/lock.in": [Requirement(r) for r in lock_in if r],
    }


def _direct() -> list[tuple[str, Requirement]]:
    return [(where, r) for where, reqs in _project_requirements().items() for r in reqs]


# ------------------------------------------------------------------------ the lock's own format


def test_parser_reads_a_pip_compile_entry() -> None:
    text = (
        'evdev[x]==2.0.0 ; sys_platform == "linux" \\\n'
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via\n"
        "    #   cccd-checkin (pyproject.toml)\n"
        "    #   nfcpy\n"
        "pyserial==3.5 \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n"
        "    # via nfcpy\n"
    )
    pins = parse_lock(text)
    assert list(pins) == ["evdev", "pyserial"]
    assert pins["evdev"].version == Version("2.0.0")
    assert pins["evdev"].requirement.extras == {"x"}
    assert pins["evdev"].requirement.marker == Marker('sys_platform == "linux"')
    assert pins["evdev"].hashes == ["a" * 64, "b" * 64]
    assert pins["evdev"].via == ["cccd-checkin (pyproject.toml)", "nfcpy"]
    assert pins["pyserial"].via == ["nfcpy"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("flask>=3.0 \\\n    --hash=sha256:" + "a" * 64 + "\n", "not pinned with =="),
        ("flask==3.0 ; ; \n", "line 1"),
        ("flask==3.0\nFlask==3.1\n", "pinned twice"),
    ],
)
def test_parser_rejects_what_pip_compile_does_not_write(text: str, reason: str) -> None:
    with pytest.raises(LockFormatError, match=reason):
        parse_lock(text)


# ------------------------------------------------------------------------ lock vs pyproject.toml


def test_lock_header_names_the_upgrade_command_and_python() -> None:
    head = LOCK.read_text(encoding="utf-8")[:400]
    assert "bash deploy/lock.sh" in head
    assert re.search(r"pip-compile with Python 3\.11\b", head), head


@pytest.mark.parametrize(
    ("where", "requirement"), [pytest.param(w, r, id=f"{w}:{r.name}") for w, r in _direct()]
)
def test_every_direct_dependency_is_pinned_as_declared(
    where: str, requirement: Requirement
) -> None:
    pin = lock().get(canonicalize_name(requirement.name))
    assert pin is not None, f"{requirement} ({where}) is not in requirements.lock: bash deploy/lock.sh"
    assert requirement.specifier.contains(pin.version, prereleases=True), (
        f"{where} asks {requirement}, the lock pins {pin.version}: bash deploy/lock.sh"
    )
    assert requirement.extras <= pin.requirement.extras, (
        f"{where} asks {requirement.name}{sorted(requirement.extras)}, the lock pins "
        f"{pin.requirement}"
    )
    assert str(pin.requirement.marker) == str(requirement.marker), (
        f"{where} declares {requirement.name} with marker {requirement.marker}, the lock with "
        f"{pin.requirement.marker}"
    )


def test_every_pin_has_sha256_hashes() -> None:
    unhashed = [pin.name for pin in lock().values() if not pin.hashes]
    assert not unhashed, f"pinned without hashes: {unhashed}"


def test_every_pin_comes_from_a_declared_dependency() -> None:
    """No stale entry: each pin is asked for by pyproject.toml, deploy/lock.in or another pin."""
    direct = {
        source: {canonicalize_name(r.name) for r in reqs}
        for source, reqs in (
            (PROJECT_SOURCE, [r for where, r in _direct() if where != "deploy/lock.in"]),
            (LOCK_IN_SOURCE, _project_requirements()["deploy/lock.in"]),
        )
    }
    pins = lock()
    for pin in pins.values():
        assert pin.via, f"{pin.name}: no '# via' annotation (hand-edited lock?)"
        for source in pin.via:
            if source in direct:
                assert pin.name in direct[source], (
                    f"{pin.name} is pinned as asked by {source}, which no longer names it: "
                    "bash deploy/lock.sh --no-upgrade"
                )
            else:
                assert canonicalize_name(source) in pins, f"{pin.name} via unknown {source}"


# ------------------------------------------------------------------------ environment vs lock


def _installed() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        found.setdefault(canonicalize_name(dist.metadata["Name"]), dist)
    return found


def test_interpreter_is_the_one_the_lock_was_resolved_for() -> None:
    head = LOCK.read_text(encoding="utf-8")[:400]
    match = re.search(r"with Python (\d+)\.(\d+)", head)
    assert match is not None
    assert sys.version_info[:2] == (int(match[1]), int(match[2]))


def test_installed_versions_are_the_pinned_ones() -> None:
    installed = _installed()
    wrong = {
        pin.name: (str(pin.version), installed[pin.name].version if pin.name in installed else None)
        for pin in lock().values()
        if pin.applies()
        and (pin.name not in installed or Version(installed[pin.name].version) != pin.version)
    }
    assert not wrong, f"pinned vs installed (re-run deploy/setup.sh): {wrong}"


def test_nothing_unlocked_is_installed() -> None:
    project = canonicalize_name("cccd-checkin")
    extra = sorted(set(_installed()) - set(lock()) - {project})
    assert not extra, f"installed but not in requirements.lock: {extra}"


def test_installed_dependencies_are_satisfied_within_the_lock() -> None:
    """Each locked distribution's own requirements are locked too, at versions it accepts."""
    installed = _installed()
    pins = lock()
    problems: list[str] = []
    for pin in pins.values():
        if not pin.applies() or pin.name not in installed:
            continue  # a missing pin is test_installed_versions_are_the_pinned_ones' failure
        extras = sorted(pin.requirement.extras)
        for text in installed[pin.name].requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in ["", *extras]
            ):
                continue
            needed = pins.get(canonicalize_name(requirement.name))
            if needed is None:
                problems.append(f"{pin.name} needs {requirement}, not in the lock")
            elif not requirement.specifier.contains(needed.version, prereleases=True):
                problems.append(f"{pin.name} needs {requirement}, the lock pins {needed.version}")
    assert not problems, problems


# ------------------------------------------------------------------------ Debian packages


def test_every_debian_package_has_a_recorded_tested_version() -> None:
    """deploy/apt/tested-versions.txt (deploy/apt/record-versions.sh) covers every list."""
    apt = ROOT / "deploy" / "apt"
    recorded = {
        (fields[0], fields[1]): fields[2]
        for line in (apt / "tested-versions.txt").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
        for fields in [line.split("\t")]
    }
    wanted = {
        (path.stem, line.strip())
        for path in apt.glob("*.txt")
        if path.name != "tested-versions.txt"
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    assert wanted, "no Debian package lists"
    assert wanted == set(recorded), (
        f"missing: {sorted(wanted - set(recorded))}, stale: {sorted(set(recorded) - wanted)}; "
        "bash deploy/apt/record-versions.sh"
    )
    assert all(recorded.values())

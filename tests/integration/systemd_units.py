"""Run the shipped systemd units without systemd: a unit-file parser, a test-made root, and a
runner that starts a unit's ``ExecStart`` the way systemd would for the keys the units use.

* :func:`parse_unit`: systemd.syntax(7) — sections, ``Key=Value`` assignments, comments
  (``#``/``;``), backslash line continuation, repeated keys kept in order. Anything else is a
  :class:`UnitFileError` naming the line and the reason.
* :class:`TestRoot`: absolute paths of a deployment (``/etc/cccd-checkin``, ``/var/lib/…``,
  ``/var/backups/…``, ``/root``, mosquitto's and systemd's folders) rewritten into a temporary folder; ``/opt/cccd-checkin/.venv/bin``
  mapped to the virtual environment running the tests, ``/opt/cccd-checkin`` to this checkout;
  the service users (``cccd-central``, ``cccd-agent``) to the user running the tests.
* :func:`start_unit`: ``LoadCredential=`` copied into a private credentials folder
  (``$CREDENTIALS_DIRECTORY``, ``%d``), ``Environment=`` and ``%i``/``%d``/``%%`` specifiers
  expanded (systemd.unit(5) "Specifiers"), ``StateDirectory=`` created, then the command line
  split like systemd.service(5) "Command lines" (quotes, no shell) and started.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = Path(sys.executable).parent
_SECTION = re.compile(r"^\[([A-Za-z][A-Za-z0-9 -]*)\]$")
_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$")
_TIMESPAN = re.compile(r"^(\d+)\s*(ms|s|sec|min|m|h)?$")


class UnitFileError(ValueError):
    """A unit file this parser refuses; the message names the line and the reason."""


@dataclass
class UnitFile:
    """One parsed unit file: ``{section: [(key, value), …]}`` in file order."""

    name: str
    sections: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def all(self, key: str, section: str = "Service") -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def get(self, key: str, section: str = "Service", default: str | None = None) -> str | None:
        values = self.all(key, section)
        return values[-1] if values else default

    def timespan(self, key: str, default_s: float) -> float:
        """``TimeoutStopSec=20``, ``=90s``, ``=2min``, ``=1h`` in seconds."""
        value = self.get(key)
        if value is None:
            return default_s
        match = _TIMESPAN.match(value.strip())
        if match is None:
            raise UnitFileError(f"{self.name}: {key}={value}: not a time span this parser knows")
        number, unit = int(match.group(1)), match.group(2) or "s"
        return number * {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}[unit]

    def environment(self, specifiers: dict[str, str]) -> dict[str, str]:
        """``Environment=`` assignments (each value split into quoted ``K=V`` words)."""
        env: dict[str, str] = {}
        for value in self.all("Environment"):
            for word in shlex.split(expand(value, specifiers)):
                key, sep, val = word.partition("=")
                if not sep or not key:
                    raise UnitFileError(f"{self.name}: Environment word {word!r} is not K=V")
                env[key] = val
        return env

    def credentials(self) -> list[tuple[str, str]]:
        """``LoadCredential=ID:PATH`` pairs."""
        out = []
        for value in self.all("LoadCredential"):
            ident, sep, path = value.partition(":")
            if not sep or not ident or not path.startswith("/"):
                raise UnitFileError(f"{self.name}: LoadCredential={value}: expected ID:/PATH")
            out.append((ident, path))
        return out

    def exec_start(self, specifiers: dict[str, str]) -> list[str]:
        values = self.all("ExecStart")
        if len(values) != 1:
            raise UnitFileError(f"{self.name}: expected exactly one ExecStart, found "
                                f"{len(values)}")
        words = shlex.split(expand(values[0], specifiers))
        if not words or not words[0].startswith("/"):
            raise UnitFileError(f"{self.name}: ExecStart must start with an absolute path")
        return words


def expand(value: str, specifiers: dict[str, str]) -> str:
    """Replace ``%i``, ``%d``, ``%%`` …; an unknown specifier is an error."""
    def one(match: re.Match[str]) -> str:
        letter = match.group(1)
        if letter == "%":
            return "%"
        if letter not in specifiers:
            raise UnitFileError(f"specifier %{letter} not supported here (in {value!r})")
        return specifiers[letter]
    return re.sub(r"%(.)", one, value)


def parse_unit(text: str, name: str = "unit") -> UnitFile:
    """Parse a unit file (systemd.syntax(7)); refuse what it does not understand."""
    unit = UnitFile(name)
    section: str | None = None
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip() if not pending else raw.rstrip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if pending and line.lstrip()[:1] in ("#", ";"):
            continue  # a comment inside a continued value is ignored (systemd.syntax(7))
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = (pending + line.strip()) if pending else line, ""
        header = _SECTION.match(line)
        if header:
            section = header.group(1)
            unit.sections.setdefault(section, [])
            continue
        if line.startswith("["):
            raise UnitFileError(f"{name}:{number}: malformed section header {line!r}")
        match = _KEY.match(line)
        if match is None:
            raise UnitFileError(f"{name}:{number}: not a Key=Value assignment: {line!r}")
        if section is None:
            raise UnitFileError(f"{name}:{number}: assignment before any [Section]")
        unit.sections[section].append((match.group(1), match.group(2).strip()))
    if pending:
        raise UnitFileError(f"{name}: the file ends inside a continued line")
    if not unit.sections:
        raise UnitFileError(f"{name}: no section")
    return unit


def load_unit(file_name: str) -> UnitFile:
    return parse_unit((UNITS / file_name).read_text(encoding="utf-8"), file_name)


class TestRoot:
    """A deployment's absolute paths rewritten into ``base``."""

    __test__ = False  # not a pytest class
    USERS = ("cccd-central", "cccd-agent", "cccd-kiosk")

    def __init__(self, base: Path) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        user = shutil.which("id") and subprocess.run(["id", "-un"], capture_output=True,
                                                     text=True, check=True).stdout.strip()
        self.user = user or "root"
        self.prefixes: list[tuple[str, str]] = [
            ("/opt/cccd-checkin/.venv/bin/", f"{VENV_BIN}/"),
            ("/opt/cccd-checkin/", f"{ROOT}/"),
            ("/etc/cccd-checkin", f"{base}/etc/cccd-checkin"),
            ("/var/lib/cccd-checkin", f"{base}/var/lib/cccd-checkin"),
            ("/var/lib/cccd-central", f"{base}/var/lib/cccd-central"),
            ("/var/backups/cccd-checkin", f"{base}/var/backups/cccd-checkin"),
            ("/var/lib/cccd-broker", f"{base}/var/lib/cccd-broker"),
            ("/var/lib/mosquitto", f"{base}/var/lib/mosquitto"),
            ("/var/log/mosquitto", f"{base}/var/log/mosquitto"),
            ("/run/mosquitto", f"{base}/run/mosquitto"),
            ("/etc/mosquitto", f"{base}/etc/mosquitto"),
            ("/etc/systemd/system", f"{base}/etc/systemd/system"),
            ("/root/", f"{base}/root/"),
        ]
        (base / "root").mkdir(exist_ok=True)

    def path(self, absolute: str) -> Path:
        return Path(self.rewrite(absolute))

    def rewrite(self, text: str) -> str:
        """Every deployment path in ``text`` moved under the root; service users → this user."""
        for old, new in self.prefixes:  # only where a path starts, never inside one
            pattern = r"(?<![\w/.-])" + re.escape(old)
            if not old.endswith("/"):
                pattern += r"(?=[/\s\"'`:)]|$)"
            text = re.sub(pattern, new.replace("\\", "\\\\"), text)
        for user in self.USERS:
            text = re.sub(rf"(?<![\w/.-]){re.escape(user)}(?![\w.-])", self.user, text)
        return text


@dataclass
class Started:
    unit: UnitFile
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> tuple[int, float]:
        """SIGTERM as systemd sends it; the exit status and the seconds it took. Waits at most
        the unit's ``TimeoutStopSec`` (systemd's default 90 s), then kills and fails."""
        limit = self.unit.timespan("TimeoutStopSec", 90.0)
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"{self.unit.name} did not stop within TimeoutStopSec="
                                 f"{limit:g} s\n{self.output()[-3000:]}") from None
        return code, time.monotonic() - began


def start_unit(unit: UnitFile, root: TestRoot, *, instance: str | None = None,
               extra_env: dict[str, str] | None = None, log_name: str | None = None,
               argv_replace: dict[str, str] | None = None) -> Started:
    """Start the unit's ``ExecStart`` under ``root`` (see the module docstring)."""
    run_dir = root.base / "run" / (log_name or unit.name)
    creds = run_dir / "credentials"
    creds.mkdir(parents=True, exist_ok=True)
    for ident, source in unit.credentials():
        target = creds / ident
        shutil.copyfile(root.path(source), target)
        target.chmod(0o400)
    specifiers = {"d": str(creds), "n": unit.name}
    if instance is not None:
        specifiers["i"] = instance
    for state in unit.all("StateDirectory"):
        for name in state.split():
            root.path(f"/var/lib/{name}").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")}
    env["PYTHONPATH"] = str(ROOT)
    if unit.credentials():
        env["CREDENTIALS_DIRECTORY"] = str(creds)
    env.update({k: root.rewrite(v) for k, v in unit.environment(specifiers).items()})
    env.update(extra_env or {})
    argv = [root.rewrite(word) for word in unit.exec_start(specifiers)]
    for old, new in (argv_replace or {}).items():
        if old not in argv:
            raise AssertionError(f"{unit.name}: {old!r} is not a word of ExecStart")
        argv[argv.index(old)] = new
    if not Path(argv[0]).exists():
        raise AssertionError(f"{unit.name}: {argv[0]} (mapped from ExecStart) does not exist")
    cwd = unit.get("WorkingDirectory")
    log = run_dir / "output.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=root.rewrite(cwd) if cwd else str(root.base),
                                stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    return Started(unit, proc, log)


def run_oneshot(unit: UnitFile, root: TestRoot, **kwargs: object) -> tuple[int, str]:
    """A ``Type=oneshot`` unit run to completion (bounded by ``TimeoutStartSec``)."""
    started = start_unit(unit, root, **kwargs)  # type: ignore[arg-type]
    limit = unit.timespan("TimeoutStartSec", 90.0)
    try:
        code = started.proc.wait(min(limit, 300.0))
    except subprocess.TimeoutExpired:
        started.proc.kill()
        started.proc.wait(10)
        raise AssertionError(f"{unit.name} did not finish\n{started.output()}") from None
    return code, started.output()


def doc_block(text: str, marker: str) -> str:
    """The fenced block after ``<!-- shipped: MARKER -->`` in a document, de-indented."""
    tag = f"<!-- shipped: {marker} -->"
    if text.count(tag) != 1:
        raise AssertionError(f"expected the marker {tag!r} exactly once")
    after = text.split(tag, 1)[1]
    match = re.match(r"\s*\n([ \t]*)```[a-z]*\n(.*?)\n[ \t]*```", after, re.S)
    if match is None:
        raise AssertionError(f"no fenced block after {tag!r}")
    indent = match.group(1)
    lines = match.group(2).splitlines()
    return "\n".join(line[len(indent):] if line.startswith(indent) else line
                     for line in lines) + "\n"

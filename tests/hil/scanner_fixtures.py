"""Fixtures for the scanner HIL tests: pseudo-terminal scanners, frame corpora, the CLI.

Import the fixtures into a test module (``from tests.hil.scanner_fixtures import ...``). Nothing
is skipped: a missing pyserial, zbar, zxing-cpp or OpenCV makes the tests fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.frames import Manifest, generate_corpus, synthetic_payloads

ROOT = Path(__file__).resolve().parents[2]
EDGE_AGENT = [sys.executable, "-c", "import sys; from edge_agent.cli import main; "
              "sys.exit(main())"]

# zbar's default character-set guess turns this one into Shift-JIS mojibake ("Lﾃｽ Cﾃｴng").
MANGLED_BY_DEFAULT = ("038098387926|162803281|Lý Công Anh|03031998|Nam|"
                      "155 Lê Lợi, Phường 14, Quảng Ninh|09102022").encode()


@pytest.fixture(scope="session")
def viet_payloads() -> list[bytes]:
    """Synthetic card QR payloads, UTF-8 with Vietnamese diacritics."""
    payloads = synthetic_payloads(6, seed=2024)
    assert all(any(b >= 0x80 for b in p) for p in payloads)
    return payloads


@pytest.fixture
def pty_scanner(tmp_path: Path) -> Iterator[Callable[..., PtySerialScanner]]:
    """A factory of pseudo-terminal scanners at ``tmp_path/ttyQR*``; all closed afterwards."""
    made: list[PtySerialScanner] = []

    def make(**kwargs: Any) -> PtySerialScanner:
        kwargs.setdefault("link", tmp_path / f"ttyQR{len(made)}")
        sim = PtySerialScanner(**kwargs)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        sim.close()


@pytest.fixture(scope="session")
def frame_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """A small generated corpus (mixed sizes, rotations, blur, noise, JPEG; 0-2 codes)."""
    out = tmp_path_factory.mktemp("frames")
    return out, generate_corpus(out, 30, seed=7)


def slave_opened_by(pid: int, tty: str) -> bool:
    """Whether process ``pid`` has the terminal ``tty`` open (via /proc)."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd_dir / fd) == tty for fd in os.listdir(fd_dir))
    except OSError:
        return False


def wait_until_open(proc: subprocess.Popen[str], tty: str, timeout: float = 10.0) -> None:
    """Block until the CLI process opened the scanner's tty (pyserial flushes input on open)."""
    deadline = time.monotonic() + timeout
    while not slave_opened_by(proc.pid, tty):
        if proc.poll() is not None:
            raise AssertionError(f"edge-agent exited early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"edge-agent did not open {tty}")
        time.sleep(0.02)


def start_cli(*args: str) -> subprocess.Popen[str]:
    """``edge-agent ARGS`` as a child process, text pipes."""
    return subprocess.Popen([*EDGE_AGENT, *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines output."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]

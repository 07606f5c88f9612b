"""``edge-agent scan`` as a process, on the pseudo-terminal scanner and on a frames folder."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.frames import write_sequence
from tests.hil.scanner_fixtures import (
    json_lines,
    pty_scanner,
    start_cli,
    viet_payloads,
    wait_until_open,
)

__all__ = ["pty_scanner", "viet_payloads"]


def test_scan_serial_pty(pty_scanner: Callable[..., PtySerialScanner],
                         viet_payloads: list[bytes]) -> None:
    sim = pty_scanner(terminator=b"\r\n", prefix=b"]Q1")
    proc = start_cli("scan", "--scanner", f"serial:{sim.path}?terminator=crlf&prefix=%5DQ1",
                     "--count", "3", "--timeout", "15")
    try:
        wait_until_open(proc, os.path.realpath(sim.path))
        sim.scan(viet_payloads[0], split=3)
        sim.scan(b"\xff\xfe not utf-8")
        sim.scan(viet_payloads[1])
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = json_lines(out)
    assert [bytes.fromhex(line["payload_hex"]) for line in lines] == [
        viet_payloads[0], b"\xff\xfe not utf-8", viet_payloads[1]]
    assert lines[0]["text"] == viet_payloads[0].decode("utf-8")
    assert lines[1]["text"] is None
    assert lines[0]["source"] == f"serial:{sim.path}"
    assert datetime.fromisoformat(lines[0]["at"]).tzinfo is not None
    assert set(lines[0]) == {"payload_hex", "text", "source", "at"}


def test_scan_frames_folder(tmp_path: Path, viet_payloads: list[bytes]) -> None:
    a, b = viet_payloads[2:4]
    write_sequence(tmp_path, [[a], [a], [], [a, b], [], [], [], [b]])
    result = subprocess.run(
        [*start_cli_args(), "scan", "--scanner", f"frames:{tmp_path}", "--health"],
        capture_output=True, text=True, encoding="utf-8", timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout)
    assert [line["text"] for line in lines] == [a.decode(), b.decode(), b.decode()]
    health = json_lines(result.stderr)[-1]
    assert health["frames"] == 8 and health["decoder"] == "zxing"


def test_scan_bad_uri_exits_2() -> None:
    result = subprocess.run([*start_cli_args(), "scan", "--scanner", "serial:/dev/x?parity=Q"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "bad scanner URI" in result.stderr and "parity" in result.stderr


def start_cli_args() -> list[str]:
    from tests.hil.scanner_fixtures import EDGE_AGENT

    return list(EDGE_AGENT)

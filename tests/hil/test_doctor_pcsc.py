"""``edge-agent doctor`` against the real PC/SC stack: OK while pcscd answers and the configured
reader is attached; exit 1 when pcscd is stopped or the configured reader is not there.

Opening a PC/SC reader does not talk to pcscd, so before this check the doctor printed ``OK``
for ``pcsc`` with the daemon down; the reader's health report is what it now judges.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.hil.pcsc_fixtures import *  # noqa: F403 - the fixtures, used by name
from tests.hil.pcsc_fixtures import READER_NAME, Bridge, PcscStack
from tests.integration.test_doctor import write


def _doctor(config: Path) -> tuple[int, dict[str, dict[str, object]]]:
    script = Path(sys.executable).with_name("edge-agent")
    done = subprocess.run([str(script), "doctor", "--config", str(config), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, {str(r["check"]): r for r in json.loads(done.stdout)}


def _config(tmp_path: Path, reader: str, scanner: str | None = None) -> Path:
    """The doctor test's configuration (loopback plain MQTT to a port nobody listens on is
    replaced by the reader under test: only the reader and scanner lines are judged here)."""
    config = write(tmp_path, "mqtt://127.0.0.1:1", None)
    text = config.read_text(encoding="utf-8")
    start = text.index("[readers]")
    end = text.index("[chip]")
    tables = f'[readers]\nuris = ["{reader}"]\n'
    if scanner is not None:
        tables += f'\n[scanners]\nuris = ["{scanner}"]\n'
    config.write_text(text[:start] + tables + "\n" + text[end:], encoding="utf-8")
    return config


def test_doctor_fails_when_pcscd_is_stopped(tmp_path: Path, pcsc_stack: PcscStack,
                                            vpcd_bridge: Bridge) -> None:
    config = _config(tmp_path, f"pcsc:{READER_NAME}")
    _, checks = _doctor(config)
    line = checks[f"reader pcsc:{READER_NAME}"]
    assert line["ok"] is True, line
    assert "'service': True" in str(line["detail"])
    pcsc_stack.stop_pcscd()
    try:
        code, checks = _doctor(config)
    finally:
        pcsc_stack.start_pcscd()
    line = checks[f"reader pcsc:{READER_NAME}"]
    assert code == 1
    assert line["ok"] is False
    assert "pcscd" in str(line["detail"]), line


def test_doctor_fails_for_a_configured_reader_that_is_not_attached(
        tmp_path: Path, pcsc_stack: PcscStack, vpcd_bridge: Bridge) -> None:
    code, checks = _doctor(_config(tmp_path, "pcsc:ACS ACR122U 00 00"))
    line = checks["reader pcsc:ACS ACR122U 00 00"]
    assert code == 1
    assert line["ok"] is False and "no such PC/SC reader" in str(line["detail"]), line


def test_doctor_fails_for_a_missing_scanner(tmp_path: Path, pcsc_stack: PcscStack,
                                            vpcd_bridge: Bridge) -> None:
    scanner = f"serial:{tmp_path / 'ttyACM9'}?baud=9600"
    code, checks = _doctor(_config(tmp_path, f"pcsc:{READER_NAME}", scanner))
    assert checks[f"reader pcsc:{READER_NAME}"]["ok"] is True
    assert code == 1
    assert checks[f"scanner {scanner}"]["ok"] is False

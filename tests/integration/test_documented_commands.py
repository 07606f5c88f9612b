"""The commands README.md shows, cut from its text and run (as tests/unit/test_protocol.py and
tests/integration/test_ingest_mqtt.py run the mosquitto_pub example of docs/protocol.md).

``.venv/bin/`` is the virtual environment running the tests; ``/tmp/cards`` a temporary
folder; ``dg13.bin`` the DG13 of a card the README's own ``firmware-sim issue`` made;
``/dev/ttyACM0`` a pseudo-terminal scanner. Everything else is run as written. The collector's
commands in docs/operations.md are run by tests/integration/test_shipped_units.py (every
``<!-- shipped: commands … -->`` block, checked below).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.hil.scanner_fixtures import wait_until_open

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent


def command_line_blocks() -> list[str]:
    """The fenced blocks of the README's "Command line" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```\n(.*?)```", section, re.S)


def run(line: str, cwd: Path, cards: Path) -> subprocess.CompletedProcess[str]:
    line = line.replace(".venv/bin/", f"{VENV_BIN}/").replace("/tmp/cards", str(cards))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", "set -euo pipefail\n" + line], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _identity_platform_answers(line: str, cwd: Path, cards: Path) -> None:
    """The simulated VNeID platform line: started as written (on a free port instead of the
    default), it prints its URL and one token per synthetic identity, then serves until
    stopped; the token of its first line resolves over HTTP."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = shlex.split(line.split("#", 1)[0].replace(".venv/bin/", f"{VENV_BIN}/")
                       .replace("--port 8766", f"--port {port}"))
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        hello = json.loads(proc.stdout.readline())
        assert hello["url"].endswith(f":{port}") and hello["tokens"]
        with urllib.request.urlopen(hello["url"] + "/", timeout=10) as answer:
            assert answer.status in (200, 404)
    except urllib.error.HTTPError as exc:
        assert exc.code in (400, 404, 405), exc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_readme_command_line_blocks_run(tmp_path: Path) -> None:
    inspect_block, device_block = command_line_blocks()
    cards = tmp_path / "cards"
    lines = [line for line in device_block.splitlines() if line.strip()]
    assert [shlex.split(line, comments=True)[1] for line in lines] == [
        "issue", "issue", "-m", "read", "scan"]

    issue, issue_variant, platform, read, scan = lines
    done = run(issue, tmp_path, cards)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["count"] == 3
    card = json.loads((cards / "cards" / "0001" / "card.json").read_text(encoding="utf-8"))
    variant_cards = tmp_path / "variant"
    done = run(issue_variant, tmp_path, variant_cards)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["count"] == 3
    _identity_platform_answers(platform, tmp_path, cards)

    done = run(read, tmp_path, cards)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK chip-anchored"), done.stdout
    id_number = card["person"]["id_number"]
    assert id_number[-4:] in done.stdout and id_number not in done.stdout  # masked

    # The inspect block: dg13.bin is the issued card's DG13; bhyt.txt a synthetic BHYT card QR.
    from datetime import date

    from edge_agent.cccd.bhyt import format_bhyt
    from edge_agent.cccd.id_number import Sex

    shutil.copyfile(cards / "cards" / "0001" / "ef" / "DG13.bin", tmp_path / "dg13.bin")
    (tmp_path / "bhyt.txt").write_text(format_bhyt(
        "DN4797930012345", "Nguyễn Thị Mai", date(2003, 5, 15), Sex.FEMALE,
        "1 Đường C, Phường A", "46 - 001", date(2026, 1, 1), date(2026, 12, 31),
        date(2025, 12, 20)), encoding="utf-8")
    inspect_lines = [line for line in inspect_block.splitlines() if line.strip()]
    assert [shlex.split(line, comments=True)[1:3] for line in inspect_lines] == [
        ["inspect", "qr"], ["inspect", "mrz"], ["inspect", "qr"], ["inspect", "qr"],
        ["inspect", "dg13"]]
    outputs = []
    for line in inspect_lines:
        done = run(line, tmp_path, cards)
        assert done.returncode == 0, (line, done.stderr)
        outputs.append(json.loads(done.stdout))
    qr, mrz, token, bhyt, dg13 = outputs
    assert qr["format"] == "cccd" and "Nguyễn Thị Mai" in json.dumps(qr, ensure_ascii=False)
    assert "MAI" in json.dumps(mrz)
    assert token["format"] == "vneid-token"
    assert bhyt["format"] == "bhyt" and "Nguyễn Thị Mai" in json.dumps(bhyt, ensure_ascii=False)
    assert card["person"]["full_name"] in json.dumps(dg13, ensure_ascii=False)
    # the alternative in the dg13 line's comment gives the same object
    alternative = inspect_lines[4].split("# or:", 1)[1].strip()
    done = run(alternative, tmp_path, cards)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == dg13

    # scan: the serial scanner is a pseudo-terminal in place of /dev/ttyACM0
    pty = PtySerialScanner(terminator=b"\r", link=tmp_path / "ttyACM0")
    argv = shlex.split(scan.replace(".venv/bin/", f"{VENV_BIN}/")
                       .replace("/dev/ttyACM0", str(tmp_path / "ttyACM0")))
    proc = subprocess.Popen([*argv, "--count", "1", "--timeout", "30"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_open(proc, os.path.realpath(pty.path))
        pty.scan(card["qr"].encode("utf-8"))
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        pty.close()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[0])["text"] == card["qr"]


def test_every_operations_command_block_is_run_by_a_test() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    marked = set(re.findall(r"<!-- shipped: (commands [\w-]+|file [^ ]+) -->", guide))
    tests = (ROOT / "tests" / "integration" / "test_shipped_units.py").read_text("utf-8")
    used = set(re.findall(r'"(commands [\w-]+|file /[^"]+)"', tests))
    assert marked and marked == used, (marked, used)

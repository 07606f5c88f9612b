"""``edge-agent inspect``: JSON on success (exit 0), one line on stderr for bad input (exit 2)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from edge_agent.cccd import Sex
from edge_agent.cli import main
from tests.synthetic import Person, dg13_for

QR = "079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh|20082021"
MRZ = ["IDVNM3030012342079303001234<<2", "0305152F2805151VNM<<<<<<<<<<<0",
       "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<"]
PERSON = Person("079303001234", "Nguyễn", "Thị", "Mai", Sex.FEMALE, date(2003, 5, 15),
                date(2021, 8, 20), "Hà Nội")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_qr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", "qr", QR)
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert obj["format"] == "cccd"
    assert obj["can"] == "001234"
    assert obj["bac_candidates"][0]["date_of_expiry"] == "280515"
    assert out.count("\n") == 1


def test_qr_from_stdin_bytes(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbf" + QR.encode() + b"\r\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = run(capsys, "inspect", "qr", "-")
    assert code == 0 and json.loads(out)["full_name"] == "Nguyễn Thị Mai"


def test_qr_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", "qr", "not a qr")
    assert code == 2 and out == ""
    assert err == ("edge-agent: QR payload: no '|' separators and not a UUID: not a card QR, "
                   "a BHYT card QR or a VNeID identity token\n")


@pytest.mark.parametrize(("payload", "fmt", "member", "value"), [
    ("f47ac10b-58cc-4372-a567-0e02b2c3d479", "vneid-token", "token",
     "f47ac10b-58cc-4372-a567-0e02b2c3d479"),
    ("DN4797930012345|4e677579e1bb856e|15/05/2003|2|3120c490|79 - 001|01/01/2025|31/12/2025|"
     "20/12/2024|4|-||01/01/2020|a1b2-c3d4|$", "bhyt", "full_name", "Nguyễn"),
    ("001055012345||Trần Văn An|1955|Nam|1 Đường C|20082021", "cccd", "date_of_birth", "1955"),
    ("079303001234|Nguyễn Thị Mai|15/05/2003|Nữ|1 Đường C|20082021", "cccd-6", "sex", "F"),
    ("************|NGUYEN THI MAI|2003-05-15|1|Q|E", "personal-qr", "can", None),
])
def test_qr_prints_the_recognised_format(capsys: pytest.CaptureFixture[str], payload: str,
                                         fmt: str, member: str, value: object) -> None:
    code, out, _ = run(capsys, "inspect", "qr", payload)
    obj = json.loads(out)
    assert code == 0 and obj["format"] == fmt and obj[member] == value


def test_qr_bhyt_refused_with_one_line_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inspect", "qr", "7930012345|zz|1955|1||||||||||x-y|$")
    assert code == 2 and out == ""
    assert err == "edge-agent: QR full_name: is not the hexadecimal of UTF-8 text\n"


def test_mrz(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", "mrz", *MRZ)
    assert code == 0
    assert json.loads(out)["date_of_expiry"] == "2028-05-15"


def test_mrz_invalid_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [MRZ[0], MRZ[1][:29] + "9", MRZ[2]]
    code, _, err = run(capsys, "inspect", "mrz", *bad)
    assert code == 2 and "composite_check" in err and err.count("\n") == 1


def test_dg13_binary_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "dg13.bin"
    path.write_bytes(dg13_for(PERSON))
    code, out, _ = run(capsys, "inspect", "dg13", str(path))
    assert code == 0
    obj = json.loads(out)
    assert obj["full_name"] == "Nguyễn Thị Mai" and obj["date_of_birth"] == "2003-05-15"


def test_dg13_hex_stdin(capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(dg13_for(PERSON).hex(" ") + "\n"))
    code, out, _ = run(capsys, "inspect", "dg13", "-")
    assert code == 0 and json.loads(out)["mother_name"] == "Trần Thị Mẹ"


@pytest.mark.parametrize(
    ("stdin", "reason"),
    [("zz", "input is not hexadecimal (pairs of 0-9, A-F)"),
     ("6e00", "DG13 tag: starts with tag 6E, expected 6D")],
)
def test_dg13_invalid(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                      stdin: str, reason: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run(capsys, "inspect", "dg13", "-")
    assert (code, out, err) == (2, "", f"edge-agent: {reason}\n")


def test_dg13_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "inspect", "dg13", str(tmp_path / "nope"))
    assert code == 2 and "cannot read" in err


def test_console_script_end_to_end() -> None:
    script = Path(sys.executable).with_name("edge-agent")
    ok = subprocess.run([str(script), "inspect", "qr", QR], capture_output=True, check=False)
    assert ok.returncode == 0 and json.loads(ok.stdout)["id_number"] == "079303001234"
    bad = subprocess.run([str(script), "inspect", "mrz", "a", "b", "c"], capture_output=True,
                         check=False)
    assert bad.returncode == 2
    assert bad.stderr.decode() == "edge-agent: MRZ line1: has 1 characters, expected 30\n"

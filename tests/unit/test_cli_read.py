"""``edge-agent read`` and ``edge-agent inspect sod`` on simulated cards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main
from firmware_sim.card import issue_cards


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-cards")
    issue_cards(out, 1, seed=11)
    return out


def info(issued: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (issued / "cards" / "0001" / "card.json").read_text(encoding="utf-8"))
    return data


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("how", ["can", "mrz", "qr"])
def test_read_json(capsys: pytest.CaptureFixture[str], issued: Path, how: str) -> None:
    card = info(issued)
    keys = {"can": ["--can", card["can"]], "mrz": ["--mrz", *card["mrz"]],
            "qr": ["--qr", card["qr"]]}[how]
    code, out, _ = run(capsys, "read", "--reader", f"sim:{issued / 'cards' / '0001'}", *keys,
                       "--trust", str(issued / "trust"), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["ok"] and result["assurance"] == "chip-anchored"
    assert result["identity"]["id_number"] == "********" + card["person"]["id_number"][-4:]
    assert set(result["checks"]) == {"dg_hashes", "ds_signature", "csca_chain",
                                     "chip_authentication", "active_authentication"}
    assert result["apdu_count"] > 0 and result["bytes_read"] > 0


def test_read_failure_exits_1_with_reason(capsys: pytest.CaptureFixture[str],
                                          issued: Path) -> None:
    code, out, _ = run(capsys, "read", "--reader", f"sim:{issued / 'cards' / '0001'}",
                       "--can", "000000")
    assert code == 1 and out.startswith("FAILED access-denied:")


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--reader", "bogus:x", "--can", "123456"], "unknown reader URI"),
     (["--reader", "sim:/nonexistent", "--can", "12345"], "a CAN is 6 digits"),
     (["--reader", "sim:/x", "--qr", "nonsense"], "no '|' separators")],
)
def test_read_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str],
                                   message: str) -> None:
    code, _, err = run(capsys, "read", *argv)
    assert code == 2 and message in err


def test_inspect_sod(capsys: pytest.CaptureFixture[str], issued: Path) -> None:
    ef = issued / "cards" / "0001" / "ef"
    code, out, _ = run(capsys, "inspect", "sod", "--sod", str(ef / "SOD.bin"),
                       "--dg", f"1={ef / 'DG1.bin'}", "--dg", f"13={ef / 'DG13.bin'}",
                       "--trust", str(issued / "trust"))
    assert code == 0
    summary = json.loads(out)
    assert summary["hash_algorithm"] == "sha256"
    assert summary["dg_hashes"]["1"] is True and summary["dg_hashes"]["13"] is True
    assert summary["signature_valid"] is True and summary["csca_chain"] is True
    assert "Document Signer" in summary["signer"]


def test_inspect_sod_without_trust_and_with_wrong_dg(capsys: pytest.CaptureFixture[str],
                                                     issued: Path) -> None:
    ef = issued / "cards" / "0001" / "ef"
    code, out, _ = run(capsys, "inspect", "sod", "--sod", str(ef / "SOD.bin"),
                       "--dg", f"1={ef / 'DG13.bin'}")
    summary = json.loads(out)
    assert code == 0 and summary["dg_hashes"]["1"] is False and summary["csca_chain"] is None


def test_inspect_sod_rejects_non_sod(capsys: pytest.CaptureFixture[str], issued: Path) -> None:
    ef = issued / "cards" / "0001" / "ef"
    code, _, err = run(capsys, "inspect", "sod", "--sod", str(ef / "DG1.bin"))
    assert code == 2 and err == "edge-agent: EF.SOD: EF.SOD must start with tag 77, found 61\n"

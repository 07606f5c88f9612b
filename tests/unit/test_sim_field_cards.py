"""Cards as they are in the field, issued by the simulator and read back (docs/cccd.md §4, §5):
partial dates of birth in the QR, DG13 and MRZ; both DG13 value layouts; married and single
people, with and without an old CMND."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from drivers.sim import SimCardReader
from edge_agent.cccd import parse_dg13, parse_qr
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import Assurance, KeyMaterial, read_chip
from firmware_sim.card import issue_cards


@pytest.fixture(scope="module", params=["nested", "flat"])
def issued(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"field-{request.param}")
    issue_cards(out, 8, seed=11, dg13_values=request.param, partial_dob=0.6)
    return out


def _cards(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    folders = sorted((out / "cards").iterdir())
    return [(f, json.loads((f / "card.json").read_text(encoding="utf-8"))) for f in folders]


def test_the_batch_covers_the_field_shapes(issued: Path) -> None:
    people = [info["person"] for _, info in _cards(issued)]
    known = {p["dob_known"] for p in people}
    assert "day" in known and known - {"day"}
    assert any(p["spouse"] for p in people) and any(not p["spouse"] for p in people)
    assert any(p["old_id"] for p in people) and any(not p["old_id"] for p in people)


def test_qr_dg13_and_mrz_agree_on_what_is_known(issued: Path) -> None:
    for folder, info in _cards(issued):
        person = info["person"]
        qr = parse_qr(info["qr"])
        assert qr.birth_date.precision.value == person["dob_known"]
        dg13 = parse_dg13((folder / "ef" / "DG13.bin").read_bytes(), strict=True)
        assert dg13.birth_date() == qr.birth_date
        assert dg13.spouse_name == person["spouse"]
        assert dg13.old_id_number == person["old_id"]
        assert (dg13.field_16 is not None) == (info["options"]["dg13_values"] == "nested")


def test_every_card_reads_with_pace_and_with_bac_keys_from_its_qr(issued: Path) -> None:
    trust = TrustStore.from_folder(issued / "trust")
    for folder, info in _cards(issued):
        qr = parse_qr(info["qr"])
        for keys in (KeyMaterial.from_can(info["can"]),
                     KeyMaterial(bac_keys=tuple(qr.bac_candidates), qr=qr)):
            result = read_chip(SimCardReader(folder, realtime=False), keys, trust=trust)
            assert result.ok, (folder.name, result.reason)
            assert result.assurance is Assurance.CHIP_ANCHORED
            assert result.identity is not None
            assert result.identity.mrz.birth_date == qr.birth_date
            assert result.qr_mismatch == []

"""Cards as they are in the field, issued by the simulator and read back (docs/cccd.md §4, §5):
partial dates of birth in the QR, DG13 and MRZ; both DG13 value layouts; married and single
people, with and without an old CMND."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cccd import parse_dg13, parse_qr
from edge_agent.reading import Assurance, KeyMaterial, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.card import issue_cards
from firmware_sim.sim_reader import SimCardReader


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
    trust = load_trust_folder(issued / "trust")
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


# -- a DG13 in shapes this reader has never seen: signed, so read, with the problems named ------

def _reissue_with_dg13(out: Path, fields: list[tuple[int, list[bytes]]]) -> Path:
    """A card whose DG13 is ``fields`` (plus the person's field 1), correctly signed."""
    from firmware_sim.card import lds, pki
    from firmware_sim.card.people import make_people
    from firmware_sim.card.personalise import personalise, sod_for, write_card

    issue_cards(out, 1, seed=3)
    test_pki = pki.TestPKI.load(out / "pki")
    person = make_people(1, seed=3)[0]
    card = personalise(person, test_pki.signer("ds"))
    card.files["DG13"] = lds.dg13(fields)
    card.files["SOD"] = sod_for(card.files, test_pki.signer("ds"))
    return write_card(out / "cards" / "0002", card)


def test_unexpected_dg13_shapes_do_not_fail_the_read(tmp_path: Path) -> None:
    from firmware_sim.card import lds
    from firmware_sim.card.people import make_people

    person = make_people(1, seed=3)[0]
    year = str(person.date_of_birth.year)
    octet = bytes.fromhex("0401FF")
    fields = [(1, [lds.printable(person.id_number)]),
              (2, [lds.der_seq(lds.der_seq(lds.utf8("Tên")))]), (10, [lds.der_int(7)]),
              (14, [lds.der_seq(lds.utf8("Vợ"))]), (42, [octet]), (3, [lds.utf8(year)]),
              (3, [lds.utf8("1900")])]
    folder = _reissue_with_dg13(tmp_path / "odd", fields)
    info = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    result = read_chip(SimCardReader(folder, realtime=False),
                       KeyMaterial.from_can(info["can"]),
                       trust=load_trust_folder(tmp_path / "odd" / "trust"))
    assert result.ok, result.reason
    dg13 = result.identity.dg13 if result.identity else None
    assert dg13 is not None and dg13.full_name == "Tên" and dg13.spouse_name == "Vợ"
    assert dg13.problems == ("field 10: tag 02 is not a string type",
                             "field 42: tag 04 is not a string type", "field 3: appears twice")


def test_a_wrong_field_1_still_fails_the_read(tmp_path: Path) -> None:
    from firmware_sim.card import lds

    folder = _reissue_with_dg13(tmp_path / "bad", [(1, [lds.printable("001099000000")])])
    info = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    result = read_chip(SimCardReader(folder, realtime=False),
                       KeyMaterial.from_can(info["can"]))
    assert not result.ok and result.failure is not None
    assert result.failure.value == "inconsistent-data"


def test_a_year_only_qr_agrees_with_a_chip_that_knows_the_whole_date(issued: Path) -> None:
    folder, info = next((f, i) for f, i in _cards(issued) if i["person"]["dob_known"] == "day")
    fields = info["qr"].split("|")
    fields[3] = fields[3][-4:]  # ddmmyyyy → yyyy
    qr = parse_qr("|".join(fields))
    result = read_chip(SimCardReader(folder, realtime=False), KeyMaterial.from_qr(qr))
    assert result.ok and result.qr_mismatch == []
    month = int(info["qr"].split("|")[3][2:4])
    fields[3] = f"{month % 12 + 1:02d}" + fields[3]  # mmyyyy with another month: disagrees
    other = parse_qr("|".join(fields))
    result = read_chip(SimCardReader(folder, realtime=False), KeyMaterial.from_qr(other))
    assert result.ok and result.qr_mismatch == ["date_of_birth"]


def test_a_chip_read_prints_the_birth_date_as_precise_as_the_card_states_it(issued: Path) -> None:
    """A year-only birth date is printed ``YYYY`` with its precision, not as 1 January."""
    trust = load_trust_folder(issued / "trust")
    seen = set()
    for folder, info in _cards(issued):
        person = info["person"]
        result = read_chip(SimCardReader(folder, realtime=False),
                           KeyMaterial.from_can(info["can"]), trust=trust)
        assert result.identity is not None
        printed = result.to_json()["identity"]
        qr = parse_qr(info["qr"])
        assert printed["date_of_birth"] == qr.birth_date.isoformat()
        assert printed["date_of_birth_known"] == person["dob_known"]
        seen.add(person["dob_known"])
    assert "day" in seen and seen - {"day"}

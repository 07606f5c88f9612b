"""Personalisation, PKI and the ``firmware-sim issue`` CLI of the simulated chip."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest
from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from PIL import Image

from firmware_sim.card import Faults, issue_cards, load_card
from firmware_sim.card.mrz import check_digit, td1
from firmware_sim.card.people import century_sex_digit, expiry_for, make_people
from firmware_sim.card.pki import LDSSecurityObject
from firmware_sim.card.tlv import parse_all, read_tlv
from firmware_sim.cli import main

DG_FILES = {1: "DG1", 2: "DG2", 3: "DG3", 13: "DG13", 14: "DG14", 15: "DG15"}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cards")
    issue_cards(folder, 6, seed=3, dg13_layout="mixed")
    return folder


def test_cccd_md_mrz_example() -> None:
    lines = td1("079303001234", dt.date(2003, 5, 15), "Nữ", "280515", "Nguyễn Thị Mai")
    assert lines == [
        "IDVNM3030012342079303001234<<2",
        "0305152F2805151VNM<<<<<<<<<<<0",
        "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<",
    ]


def test_people_are_reproducible_and_consistent() -> None:
    people = make_people(50, seed=11)
    assert people == make_people(50, seed=11)
    for p in people:
        assert len(p.id_number) == 12 and p.id_number.isdigit()
        assert p.id_number[3] == century_sex_digit(p.date_of_birth, p.sex)
        assert p.id_number[4:6] == f"{p.date_of_birth.year % 100:02d}"
        assert p.expiry == expiry_for(p.date_of_birth, p.issue_date)
        assert p.old_id is None or len(p.old_id) == 9
        assert p.expiry is None or p.expiry >= dt.date(2030, 1, 1)
        assert p.issue_date <= dt.date(2026, 1, 1)


def test_expiry_rule() -> None:
    dob = dt.date(1990, 3, 10)
    assert expiry_for(dob, dt.date(2021, 1, 5)) == dt.date(2030, 3, 10)  # age 30 → valid to 40
    assert expiry_for(dob, dt.date(2028, 6, 1)) == dt.date(2050, 3, 10)  # within 2 y of 40 → 60
    assert expiry_for(dt.date(1960, 1, 1), dt.date(2019, 1, 1)) is None  # issued at 59
    assert expiry_for(dt.date(2016, 2, 29), dt.date(2024, 8, 1)) == dt.date(2030, 2, 28)  # at 14
    assert expiry_for(dt.date(2012, 2, 29), dt.date(2024, 8, 1)) == dt.date(2037, 2, 28)


def _card(out: Path, n: int) -> tuple[dict[str, object], dict[str, bytes]]:
    folder = out / "cards" / f"{n:04d}"
    doc = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    files = {p.stem: p.read_bytes() for p in (folder / "ef").glob("*.bin")}
    return doc, files


def test_dg1_mrz_check_digits(out: Path) -> None:
    for n in range(1, 7):
        doc, files = _card(out, n)
        tag, value, _ = read_tlv(files["DG1"])
        assert tag == 0x61
        inner = dict(parse_all(value))
        text = inner[0x5F1F].decode("ascii")
        l1, l2, l3 = text[:30], text[30:60], text[60:]
        person = doc["person"]
        assert isinstance(person, dict)
        assert l1[5:14] == person["id_number"][-9:] and l1[15:27] == person["id_number"]
        assert l1[14] == check_digit(l1[5:14]) and l1[29] == check_digit(l1[15:27])
        assert l2[6] == check_digit(l2[0:6]) and l2[14] == check_digit(l2[8:14])
        assert l2[29] == check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
        assert doc["mrz"] == [l1, l2, l3]
        assert doc["can"] == person["id_number"][-6:]
        assert str(doc["qr"]).split("|")[0] == person["id_number"]


def test_ef_com_card_access_and_dg2(out: Path) -> None:
    _, files = _card(out, 1)
    assert files["COM"] == bytes.fromhex("60185F0104303130375F36063034303030305C066175636D6E6F")
    assert files["CardAccess"].hex().startswith("3134300d0608")
    tag, _value, _ = read_tlv(files["DG2"])
    assert tag == 0x75
    record = files["DG2"][files["DG2"].index(b"FAC\x00") :]
    assert record[4:8] == b"010\x00"
    jpeg = record[14 + 32 :]
    assert 2000 <= len(jpeg) <= 6000
    assert Image.open(io.BytesIO(jpeg)).format == "JPEG"


def test_dg13_layouts(out: Path) -> None:
    layouts = set()
    for n in range(1, 7):
        doc, files = _card(out, n)
        _, seq, _ = read_tlv(files["DG13"])
        items = parse_all(read_tlv(seq)[1])
        assert items[0] == (0x02, b"\x01") and items[1] == (0x06, bytes.fromhex("28D316010008"))
        entries = [parse_all(v) for _, v in parse_all(items[2][1])]
        numbers = [int.from_bytes(e[0][1], "big") for e in entries]
        field13 = [e for e in entries if e[0][1] == b"\x0d"]
        layout = "nested" if len(field13) == 1 else "siblings"
        layouts.add(layout)
        assert layout == doc["options"]["dg13_parents_layout"]  # type: ignore[index]
        if layout == "nested":
            assert field13[0][1][0] == 0x30
        person = doc["person"]
        assert isinstance(person, dict)
        # As real chips write it (docs/cccd.md §4): the spouse nested in a SEQUENCE, fields 14 and
        # 15 absent when single or without an old CMND, field 16 a 16-character string.
        spouse = [e for e in entries if e[0][1] == b"\x0e"]
        if person["spouse"] is None:
            assert spouse == []
        else:
            assert spouse[0][1][0] == 0x30
            assert parse_all(spouse[0][1][1]) == [(0x0C, person["spouse"].encode("utf-8"))]
        assert (15 in numbers) == (person["old_id"] is not None)
        assert set(numbers) >= set(range(1, 14)) | {16}
        field16 = next(e for e in entries if e[0][1] == b"\x10")[1]
        assert field16[0] == 0x13 and len(field16[1]) == 16
        name = next(e for e in entries if e[0][1] == b"\x02")[1]
        assert name == (0x0C, person["full_name"].encode("utf-8"))
    assert layouts == {"nested", "siblings"}


def _sod(files: dict[str, bytes]) -> cms.SignedData:
    _, value, _ = read_tlv(files["SOD"])
    info = cms.ContentInfo.load(value)
    assert info["content_type"].native == "signed_data"
    return info["content"]


def test_sod_hashes_and_signatures(out: Path) -> None:
    _, files = _card(out, 2)
    sd = _sod(files)
    assert sd["encap_content_info"]["content_type"].dotted == "2.23.136.1.1.1"
    econtent = sd["encap_content_info"]["content"].native
    lds = LDSSecurityObject.load(econtent)
    hashes_ = {
        int(h["dataGroupNumber"].native): h["dataGroupHashValue"].native
        for h in lds["dataGroupHashValues"]
    }
    assert set(hashes_) == set(DG_FILES)
    for n, name in DG_FILES.items():
        assert hashes_[n] == hashlib.sha256(files[name]).digest()
    si = sd["signer_infos"][0]
    attrs = {a["type"].native: a["values"][0] for a in si["signed_attrs"]}
    assert attrs["message_digest"].native == hashlib.sha256(econtent).digest()
    ds = x509.load_der_x509_certificate(sd["certificates"][0].dump())
    pub = ds.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(si["signature"].native, si["signed_attrs"].untag().dump(), ec.ECDSA(hashes.SHA256()))
    csca = x509.load_pem_x509_certificate((out / "trust" / "csca.pem").read_bytes())
    ds.verify_directly_issued_by(csca)
    assert ds.not_valid_after_utc > dt.datetime.now(dt.UTC)


def test_master_list(out: Path) -> None:
    info = cms.ContentInfo.load((out / "trust" / "masterlist.ml").read_bytes())
    sd = info["content"]
    assert sd["encap_content_info"]["content_type"].dotted == "2.23.136.1.1.2"
    ml = core.Sequence.load(sd["encap_content_info"]["content"].native)
    certs = ml[1].parsed if hasattr(ml[1], "parsed") else ml[1]
    csca = (out / "trust" / "csca.pem").read_bytes()
    trusted = x509.load_pem_x509_certificate(csca)
    der = certs.contents
    assert (
        trusted.public_bytes(
            __import__("cryptography").hazmat.primitives.serialization.Encoding.DER
        )
        in der
    )
    signer = x509.load_der_x509_certificate(sd["certificates"][0].dump())
    signer.verify_directly_issued_by(trusted)


@pytest.mark.parametrize("scheme", ["rsa", "rsa-pss"])
def test_rsa_document_signers(tmp_path: Path, scheme: str) -> None:
    card = issue_cards(tmp_path, 1, seed=1, ds_algorithm=scheme)[0]
    files = {p.stem: p.read_bytes() for p in (card / "ef").glob("*.bin")}
    sd = _sod(files)
    si = sd["signer_infos"][0]
    pub = x509.load_der_x509_certificate(sd["certificates"][0].dump()).public_key()
    assert isinstance(pub, rsa.RSAPublicKey)
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if scheme == "rsa"
        else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    )
    pub.verify(si["signature"].native, si["signed_attrs"].untag().dump(), pad, hashes.SHA256())


def _signer_cert(chip_files: dict[str, bytes]) -> x509.Certificate:
    return x509.load_der_x509_certificate(_sod(chip_files)["certificates"][0].dump())


def test_unknown_csca_and_expired_signer_faults(out: Path) -> None:
    trusted = x509.load_pem_x509_certificate((out / "trust" / "csca.pem").read_bytes())
    card = out / "cards" / "0001"
    rogue = load_card(card, faults=Faults(unknown_csca=True)).fs.contents
    with pytest.raises((ValueError, TypeError)):
        _signer_cert(rogue).verify_directly_issued_by(trusted)
    expired = _signer_cert(load_card(card, faults=Faults(expired_signer=True)).fs.contents)
    expired.verify_directly_issued_by(trusted)
    assert expired.not_valid_after_utc < dt.datetime.now(dt.UTC)
    # the DG hashes still match: only the certificate path is wrong
    files = load_card(card, faults=Faults(expired_signer=True)).fs.contents
    lds = LDSSecurityObject.load(_sod(files)["encap_content_info"]["content"].native)
    assert (
        lds["dataGroupHashValues"][0]["dataGroupHashValue"].native
        == hashlib.sha256(files["DG1"]).digest()
    )


def test_cli_issue_layout_and_baked_faults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "issue",
            "--out",
            str(tmp_path),
            "--count",
            "2",
            "--seed",
            "5",
            "--aa",
            "rsa",
            "--fault",
            "unknown-csca",
            "--fault",
            "tag-loss=500",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip())
    assert summary["ok"] and summary["count"] == 2
    for name in (
        "csca.pem",
        "csca.key.pem",
        "ds.pem",
        "ds.key.pem",
        "masterlist.ml",
        "rogue-csca.pem",
    ):
        assert (tmp_path / "pki" / name).is_file()
    assert sorted(p.name for p in (tmp_path / "trust").iterdir()) == ["csca.pem", "masterlist.ml"]
    card = tmp_path / "cards" / "0002"
    assert sorted(p.stem for p in (card / "ef").iterdir()) == sorted(
        ["COM", "CardAccess", "DG1", "DG2", "DG3", "DG13", "DG14", "DG15", "SOD"]
    )
    assert (card / "keys" / "aa.key.pem").is_file() and (card / "keys" / "ca.key.pem").is_file()
    doc = json.loads((card / "card.json").read_text(encoding="utf-8"))
    assert doc["faults"]["unknown_csca"] and doc["faults"]["tag_loss_after_bytes"] == 500
    assert doc["sod_signer"] == "rogue" and len(doc["can"]) == 6 and len(doc["mrz"]) == 3
    trusted = x509.load_pem_x509_certificate((tmp_path / "trust" / "csca.pem").read_bytes())
    files = {p.stem: p.read_bytes() for p in (card / "ef").glob("*.bin")}
    with pytest.raises((ValueError, TypeError)):
        _signer_cert(files).verify_directly_issued_by(trusted)
    chip = load_card(card)
    assert chip.faults.tag_loss_after_bytes == 500
    # issuing again into the same folder reuses the PKI and continues the numbering
    before = (tmp_path / "pki" / "csca.pem").read_bytes()
    assert main(["issue", "--out", str(tmp_path), "--count", "1"]) == 0
    assert (tmp_path / "pki" / "csca.pem").read_bytes() == before
    assert (tmp_path / "cards" / "0003" / "card.json").is_file()


def test_cli_rejects_unknown_fault(tmp_path: Path) -> None:
    assert main(["issue", "--out", str(tmp_path), "--fault", "melted"]) == 2


def test_forged_signer_names_the_trusted_csca_but_does_not_verify(out: Path) -> None:
    trusted = x509.load_pem_x509_certificate((out / "trust" / "csca.pem").read_bytes())
    card = out / "cards" / "0001"
    forged = _signer_cert(load_card(card, faults=Faults(forged_signer=True)).fs.contents)
    assert forged.issuer == trusted.subject
    with pytest.raises((ValueError, TypeError, InvalidSignature)):
        forged.verify_directly_issued_by(trusted)
    expired = _signer_cert(load_card(card, faults=Faults(expired_signer=True)).fs.contents)
    issued = dt.date.fromisoformat(json.loads((card / "card.json").read_text())["person"][
        "issue_date"])
    assert expired.not_valid_after_utc.date() < issued  # expired before the card was issued


def test_cli_issue_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["issue", "--out", str(tmp_path), "--profile", "bac-only"]) == 0
    capsys.readouterr()
    doc = json.loads((tmp_path / "cards" / "0001" / "card.json").read_text(encoding="utf-8"))
    assert doc["options"]["profile"] == "bac-only"
    chip = load_card(tmp_path / "cards" / "0001")
    assert chip.profile.name == "bac-only" and "CardAccess" not in chip.fs.contents
    assert load_card(tmp_path / "cards" / "0001", profile="lenient").profile.name == "lenient"
    with pytest.raises(SystemExit):
        main(["issue", "--out", str(tmp_path), "--profile", "forgiving"])

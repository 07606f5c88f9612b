"""CSCA trust store and ICAO master lists (ICAO 9303-12 §5, §9)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge_agent.icao.passive_auth import verify
from edge_agent.icao.sod import parse_sod
from edge_agent.icao.trust import MasterListError, TrustError, TrustStore
from edge_agent.trust_folder import load_trust_folder
from tests.unit.test_pa_pki import (
    NOW,
    OID_SOD,
    cms_master_list_content,
    ec_key,
    make_cert,
    make_sod,
    master_list,
    pki,
    rsa_key,
    sample_dgs,
    signed_data,
)


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def _good_ml() -> bytes:
    return master_list([pki().csca_bp512.der, pki().csca_rsa.der], pki().ml_signer)


def test_add_certificate_and_kinds() -> None:
    store = TrustStore()
    anchor = store.add_certificate(pki().csca_bp512.der)
    assert anchor.kind == "self-signed"
    assert anchor.subject == "CN=CSCA Test Vietnam,O=Test Ministry of Public Security,C=VN"
    assert store.add_certificate(x509.load_der_x509_certificate(pki().csca_bp512.der)) is anchor
    assert len(store) == 1
    assert pki().csca_bp512.der in store
    assert pki().csca_rsa.der not in store
    assert isinstance(anchor.certificate, x509.Certificate)


def test_non_ca_rejected() -> None:
    store = TrustStore()
    with pytest.raises(TrustError, match=r"not a CA certificate \(basicConstraints cA"):
        store.add_certificate(pki().ds_bp256.der)
    no_kcs = make_cert("CA without keyCertSign", ec_key("secp256r1", 20), ca=True,
                       key_cert_sign=False)
    with pytest.raises(TrustError, match="without keyUsage keyCertSign"):
        store.add_certificate(no_kcs.der)
    with pytest.raises(TrustError, match="malformed certificate"):
        store.add_certificate(b"\x30\x03\x02\x01\x00")
    assert len(store) == 0


def test_find_issuers_by_name_and_key_id() -> None:
    store = TrustStore()
    store.add_certificate(pki().csca_bp512.der)
    store.add_certificate(pki().csca_rsa.der)
    issuers = store.find_issuers(pki().ds_bp256.der)
    assert [a.der for a in issuers] == [pki().csca_bp512.der]
    assert [a.der for a in store.find_issuers(pki().ds_rsa.cert)] == [pki().csca_rsa.der]
    stranger = make_cert("DS stranger", ec_key("secp256r1", 21),
                         make_cert("CSCA elsewhere", ec_key("secp256r1", 22), ca=True,
                                   country="XX"))
    assert store.find_issuers(stranger.der) == []


def test_link_certificate() -> None:
    old = pki().csca_rsa
    new_key = rsa_key(30)
    link = make_cert("CSCA Test RSA", new_key, old, ca=True)  # new key certified by the old one
    new_self = make_cert("CSCA Test RSA", new_key, ca=True)
    ds_new = make_cert("DS under new CSCA key", ec_key("secp256r1", 31), new_self)
    store = TrustStore()
    store.add_certificate(old.der)
    anchor = store.add_certificate(link.der)
    assert anchor.kind == "link"
    result = verify(parse_sod(make_sod(signer=ds_new)), sample_dgs(), store, NOW)
    assert result.chip_anchored, result.reasons
    only_old = TrustStore()
    only_old.add_certificate(old.der)
    result = verify(parse_sod(make_sod(signer=ds_new)), sample_dgs(), only_old, NOW)
    assert result.csca_chain is False
    assert any("signature does not verify" in r for r in result.reasons)


def test_master_list_loads() -> None:
    store = TrustStore()
    store.add_certificate(pki().csca_rsa.der)  # ML signer issued by a CSCA already trusted
    added = store.add_master_list(_good_ml(), source="ml")
    assert [a.der for a in added] == [pki().csca_bp512.der]  # the other one was already there
    assert len(store) == 2


def test_master_list_signer_issued_by_listed_csca() -> None:
    store = TrustStore()
    store.add_master_list(_good_ml())
    assert len(store) == 2
    result = verify(parse_sod(make_sod()), sample_dgs(), store, NOW)
    assert result.chip_anchored


def test_master_list_signed_by_listed_csca_itself() -> None:
    store = TrustStore()
    store.add_master_list(master_list([pki().csca_rsa.der], pki().csca_rsa))
    assert len(store) == 1


def test_master_list_bad_signature() -> None:
    ml = master_list([pki().csca_bp512.der, pki().csca_rsa.der], pki().ml_signer,
                     signature_override=bytes(72))
    with pytest.raises(MasterListError, match="master list signature"):
        TrustStore().add_master_list(ml)


def test_master_list_wrong_digest() -> None:
    ml = master_list([pki().csca_rsa.der], pki().ml_signer, message_digest=bytes(32))
    with pytest.raises(MasterListError, match="message digest does not match"):
        TrustStore().add_master_list(ml)


def test_master_list_wrong_content_type() -> None:
    content = cms_master_list_content([pki().csca_rsa.der])
    with pytest.raises(MasterListError, match=r"eContentType is 2\.23\.136\.1\.1\.1"):
        TrustStore().add_master_list(signed_data(content, pki().ml_signer, econtent_type=OID_SOD))


def test_master_list_bad_version() -> None:
    content = cms_master_list_content([pki().csca_rsa.der], version=1)
    ml = signed_data(content, pki().ml_signer, econtent_type="2.23.136.1.1.2")
    with pytest.raises(MasterListError, match="version 1 is not v0"):
        TrustStore().add_master_list(ml)


def test_master_list_unchained_signer() -> None:
    rogue_ca = make_cert("Rogue CA", ec_key("secp256r1", 40), ca=True, country="XX")
    rogue_signer = make_cert("Rogue ML signer", ec_key("secp256r1", 41), rogue_ca, country="XX")
    ml = master_list([pki().csca_rsa.der], rogue_signer)
    with pytest.raises(MasterListError, match="neither in the list nor issued by a listed CSCA"):
        TrustStore().add_master_list(ml)
    lenient = TrustStore()
    lenient.add_master_list(ml, require_signer_chain=False)
    assert len(lenient) == 1


def test_master_list_skips_non_ca_entries() -> None:
    store = TrustStore()
    ml = master_list([pki().csca_rsa.der, pki().ds_rsa.der], pki().ml_signer)
    store.add_master_list(ml, source="ml")
    assert len(store) == 1
    assert any("not a CA certificate" in s.reason for s in store.report.skipped)


def test_from_folder(tmp_path: Path) -> None:
    p = pki()
    (tmp_path / "csca_vn.pem").write_bytes(_pem(p.csca_bp512.der))
    (tmp_path / "csca_rsa.cer").write_bytes(p.csca_rsa.der)
    (tmp_path / "dup.der").write_bytes(p.csca_rsa.der)
    (tmp_path / "ds.crt").write_bytes(p.ds_bp256.der)  # not a CA
    (tmp_path / "garbage.der").write_bytes(b"\x13\x37 not a certificate")
    (tmp_path / "garbage.ml").write_bytes(b"\x00\x01\x02")
    (tmp_path / "README.txt").write_text("hello")
    other = make_cert("CSCA Test Other", ec_key("brainpoolP384r1", 50), ca=True,
                      hash_name="sha384", country="LA")
    third = make_cert("CSCA Test Third", rsa_key(51), ca=True, country="KH")
    (tmp_path / "bundle.pem").write_bytes(_pem(other.der) + b"junk\n" + _pem(third.der))
    sub = tmp_path / "lists"
    sub.mkdir()
    fourth = make_cert("CSCA Test Fourth", ec_key("secp384r1", 52), ca=True, hash_name="sha384",
                       country="TH")
    (sub / "good.ml").write_bytes(master_list([p.csca_rsa.der, fourth.der], p.ml_signer))
    (sub / "bad_signature.ml").write_bytes(
        master_list([p.csca_rsa.der], p.ml_signer, signature_override=bytes(70)))

    store = load_trust_folder(tmp_path)
    subjects = {a.subject.split(",")[0] for a in store}
    assert subjects == {"CN=CSCA Test Vietnam", "CN=CSCA Test RSA", "CN=CSCA Test Other",
                        "CN=CSCA Test Third", "CN=CSCA Test Fourth"}
    assert len(store) == 5
    skipped = {Path(s.source.split("[")[0]).name: s.reason for s in store.report.skipped}
    assert skipped["dup.der"] == "duplicate certificate"
    assert skipped["ds.crt"].startswith("not a CA certificate")
    assert skipped["garbage.der"].startswith("malformed certificate")
    assert skipped["garbage.ml"].startswith("master list:")
    assert skipped["README.txt"] == "unsupported file type '.txt'"
    assert skipped["bad_signature.ml"].startswith("master list signature:")
    loaded = {Path(e.source.split("[")[0]).name for e in store.report.loaded}
    assert loaded == {"csca_vn.pem", "csca_rsa.cer", "bundle.pem", "good.ml"}
    report = store.report.to_dict()
    assert len(report["loaded"]) == 5 and len(report["skipped"]) == 7  # + duplicate in good.ml

    result = verify(parse_sod(make_sod()), sample_dgs(), store, NOW)
    assert result.chip_anchored


def test_from_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(TrustError, match="does not exist"):
        load_trust_folder(tmp_path / "nope")


def test_pem_without_certificate_block(tmp_path: Path) -> None:
    key_pem = ec_key("secp256r1").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (tmp_path / "key.pem").write_bytes(key_pem)
    store = load_trust_folder(tmp_path)
    assert len(store) == 0
    assert store.report.skipped[0].reason == "no PEM CERTIFICATE block"

"""Passive authentication (ICAO 9303-11 §5.1) against the in-test PKI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
from datetime import timedelta
from typing import Any

import pytest
from asn1crypto import algos, keys
from asn1crypto import x509 as ax
from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.icao import ecparams
from edge_agent.icao.passive_auth import PassiveAuthResult, inspect_sod, verify
from edge_agent.icao.sod import SignatureAlgorithm, SodError, parse_sod
from edge_agent.icao.trust import TrustStore
from tests.unit.test_pa_pki import (
    NOW,
    Issued,
    ec_key,
    ecdsa_sign_digest,
    explicit_spki,
    make_cert,
    make_sod,
    pki,
    resign,
    rsa_key,
    sample_dgs,
    specified_domain,
)


@pytest.fixture(scope="module")
def trust() -> TrustStore:
    store = TrustStore()
    store.add_certificate(pki().csca_bp512.der)
    store.add_certificate(pki().csca_rsa.der)
    return store


def _verify(sod_bytes: bytes, trust: TrustStore | None, dgs: dict[int, bytes] | None = None,
            **kw: Any) -> PassiveAuthResult:
    return verify(parse_sod(sod_bytes), sample_dgs() if dgs is None else dgs, trust,
                  kw.get("at", NOW), issued_on=kw.get("issued_on"))


SIGNERS = [
    ("ds_bp256", "default", "sha256"),
    ("ds_bp256", "default", "sha512"),
    ("ds_p256", "default", "sha256"),
    ("ds_p256", "plain", "sha384"),
    ("ds_rsa", "default", "sha256"),
    ("ds_rsa", "default", "sha1"),
    ("ds_pss", "pss", "sha256"),
    ("ds_pss", "pss", "sha512"),
    ("ds_explicit", "default", "sha256"),
]


@pytest.mark.parametrize(("ds", "scheme", "hash_name"), SIGNERS)
def test_all_good_is_chip_anchored(trust: TrustStore, ds: str, scheme: str, hash_name: str) -> None:
    result = _verify(make_sod(signer=getattr(pki(), ds), scheme=scheme, hash_name=hash_name), trust)
    assert result.reasons == []
    assert result.dg_hashes == dict.fromkeys(sample_dgs(), True)
    assert result.signed_attrs_digest and result.ds_signature and result.validity
    assert result.csca_chain is True
    assert result.chip_anchored and result.chip_signed
    assert result.assurance == "chip-anchored"


def test_chain_to_explicit_brainpool512_csca(trust: TrustStore) -> None:
    result = _verify(make_sod(signer=pki().ds_bp256), trust)
    assert result.csca == "CN=CSCA Test Vietnam,O=Test Ministry of Public Security,C=VN"


def test_subset_of_dgs_read(trust: TrustStore) -> None:
    dgs = sample_dgs()
    result = _verify(make_sod(dgs), trust, {1: dgs[1], 2: dgs[2]})
    assert result.dg_hashes == {1: True, 2: True}
    assert result.chip_anchored


def test_without_trust_store_is_chip_signed() -> None:
    result = _verify(make_sod(), None)
    assert result.csca_chain is None
    assert result.chip_signed and not result.chip_anchored
    assert result.assurance == "chip-signed"


def test_unknown_csca_is_chip_signed() -> None:
    store = TrustStore()
    store.add_certificate(pki().csca_rsa.der)
    result = _verify(make_sod(signer=pki().ds_bp256), store)
    assert result.csca_chain is False
    assert result.chip_signed and not result.chip_anchored
    assert any(r.startswith("csca_chain: no trusted CSCA for issuer") for r in result.reasons)


def test_impostor_csca_with_same_name() -> None:
    """A DS signed by a key that merely claims the trusted CSCA's name does not chain."""
    fake_csca = make_cert("CSCA Test Vietnam", ec_key("brainpoolP512r1", 9), ca=True,
                          hash_name="sha512", aki=False)
    ds = make_cert("DS forged", ec_key("brainpoolP256r1", 9), fake_csca, aki=False)
    store = TrustStore()
    store.add_certificate(pki().csca_bp512.der)
    result = _verify(make_sod(signer=ds), store)
    assert result.csca_chain is False
    assert any("signature does not verify" in r for r in result.reasons)
    assert result.chip_signed and not result.chip_anchored


def test_forged_dg(trust: TrustStore) -> None:
    dgs = sample_dgs()
    sod = make_sod(dgs)
    forged = dict(dgs)
    forged[2] = dgs[2][:-1] + b"\x00"
    result = _verify(sod, trust, forged)
    assert result.dg_hashes[2] is False and result.dg_hashes[1] is True
    assert "dg_hashes: DG2 hash does not match the SOD" in result.reasons
    assert not result.chip_signed and not result.chip_anchored
    assert result.assurance is None


def test_dg_read_but_not_in_sod(trust: TrustStore) -> None:
    dgs = sample_dgs()
    sod = make_sod({1: dgs[1], 2: dgs[2]})
    result = _verify(sod, trust, {1: dgs[1], 2: dgs[2], 3: b"\x63\x00"})
    assert result.dg_hashes == {1: True, 2: True, 3: False}
    assert "dg_hashes: DG3 is not listed in the SOD" in result.reasons
    assert not result.chip_signed


def test_no_dg_read_never_passes(trust: TrustStore) -> None:
    result = _verify(make_sod(), trust, {})
    assert not result.chip_signed and not result.chip_anchored
    assert "dg_hashes: no data group to check" in result.reasons


def test_tampered_signed_attributes(trust: TrustStore) -> None:
    result = _verify(make_sod(tamper_after_signing=True), trust)
    assert result.signed_attrs_digest is True
    assert result.ds_signature is False
    assert any(r.startswith("ds_signature:") for r in result.reasons)
    assert not result.chip_signed


def test_wrong_message_digest(trust: TrustStore) -> None:
    result = _verify(make_sod(message_digest=bytes(32)), trust)
    assert result.signed_attrs_digest is False
    assert result.ds_signature is True  # the attributes themselves are signed correctly
    assert ("signed_attrs_digest: message-digest attribute does not match the eContent"
            in result.reasons)
    assert not result.chip_signed


@pytest.mark.parametrize("ds", ["ds_bp256", "ds_rsa", "ds_explicit"])
def test_wrong_signature(trust: TrustStore, ds: str) -> None:
    good = parse_sod(make_sod(signer=getattr(pki(), ds)))
    sig = bytearray(good.signed_data.signature)
    sig[-3] ^= 0x01
    result = _verify(make_sod(signer=getattr(pki(), ds), signature_override=bytes(sig)), trust)
    assert result.ds_signature is False
    assert not result.chip_signed


def test_signature_by_another_key(trust: TrustStore) -> None:
    other = Issued(ec_key("brainpoolP256r1", 5), pki().ds_bp256.der, pki().ds_bp256.name)
    result = _verify(make_sod(signer=other), trust)
    assert result.ds_signature is False
    assert "ds_signature: ecdsa-with-sha256 signature does not verify" in result.reasons


def test_pss_signature_checked_against_pkcs1_algorithm(trust: TrustStore) -> None:
    """Algorithm identifier says PKCS#1 v1.5 but the signature is PSS: must fail."""
    sod = parse_sod(make_sod(signer=pki().ds_pss, scheme="pss"))
    alg = SignatureAlgorithm("1.2.840.113549.1.1.11", "rsa-pkcs1v15", "sha256")
    swapped = dataclasses.replace(sod, signed_data=dataclasses.replace(
        sod.signed_data, signature_algorithm=alg))
    result = verify(swapped, sample_dgs(), trust, NOW)
    assert result.ds_signature is False


def test_algorithm_key_mismatch(trust: TrustStore) -> None:
    sod = parse_sod(make_sod(signer=pki().ds_bp256))
    alg = SignatureAlgorithm("1.2.840.113549.1.1.11", "rsa-pkcs1v15", "sha256")
    swapped = dataclasses.replace(sod, signed_data=dataclasses.replace(
        sod.signed_data, signature_algorithm=alg))
    result = verify(swapped, sample_dgs(), trust, NOW)
    assert result.ds_signature is False
    assert "ds_signature: rsa-pkcs1v15-with-sha256 needs an RSA key" in result.reasons


def test_ds_expired_after_issue_is_valid_under_the_chain_model(trust: TrustStore) -> None:
    ds = make_cert("DS expired", ec_key("brainpoolP256r1", 3), pki().csca_bp512,
                   not_before=NOW - timedelta(days=300), not_after=NOW - timedelta(days=1))
    issued = (NOW - timedelta(days=200)).date()
    result = _verify(make_sod(signer=ds), trust, issued_on=issued)
    assert result.validity is True, result.reasons
    assert result.chip_anchored and result.assurance == "chip-anchored"
    assert result.validity_reference == f"date of issue {issued.isoformat()}"
    # no date of issue and no signing time: the DS expiry alone proves nothing either way
    unknown = _verify(make_sod(signer=ds), trust)
    assert unknown.validity is True and unknown.validity_reference.startswith("unknown")


def test_ds_expired_before_issue_fails(trust: TrustStore) -> None:
    ds = make_cert("DS expired", ec_key("brainpoolP256r1", 3), pki().csca_bp512,
                   not_before=NOW - timedelta(days=300), not_after=NOW - timedelta(days=100))
    result = _verify(make_sod(signer=ds), trust, issued_on=(NOW - timedelta(days=50)).date())
    assert result.validity is False
    assert result.csca_chain is True
    assert result.chip_signed and not result.chip_anchored
    assert any(r.startswith("validity: document signer certificate expired") and
               "before the document was issued" in r for r in result.reasons)
    early = _verify(make_sod(signer=ds), trust, issued_on=(NOW - timedelta(days=310)).date())
    assert early.validity is False
    assert any("not valid before" in r for r in early.reasons)


def test_ds_not_yet_valid(trust: TrustStore) -> None:
    result = _verify(make_sod(), trust, at=NOW - timedelta(days=400))
    assert result.validity is False
    assert any("not valid before" in r for r in result.reasons)


def test_signing_time_is_the_reference_when_present(trust: TrustStore) -> None:
    from asn1crypto import core

    ds = make_cert("DS expired", ec_key("brainpoolP256r1", 3), pki().csca_bp512,
                   not_before=NOW - timedelta(days=300), not_after=NOW - timedelta(days=100))
    signed_in = NOW - timedelta(days=150)
    sod = make_sod(signer=ds, extra_attrs=[
        {"type": "signing_time", "values": [core.UTCTime(signed_in)]}])
    assert parse_sod(sod).signed_data.signing_time == signed_in
    # the signing time wins over a date of issue the DS did not cover
    result = _verify(sod, trust, issued_on=(NOW - timedelta(days=50)).date())
    assert result.validity is True, result.reasons
    assert result.validity_reference == f"signing time {signed_in.isoformat()}"
    late = make_sod(signer=ds, extra_attrs=[
        {"type": "signing_time", "values": [core.UTCTime(NOW - timedelta(days=20))]}])
    failed = _verify(late, trust)
    assert failed.validity is False
    assert any("before EF.SOD was signed" in r for r in failed.reasons)


def test_malformed_signing_time_is_refused() -> None:
    from asn1crypto import core

    sod = make_sod(extra_attrs=[{"type": "signing_time", "values": [core.UTCTime(NOW)] * 2}])
    with pytest.raises(SodError, match="signing-time attribute must have exactly one value"):
        parse_sod(sod)


def test_csca_valid_when_it_issued_the_ds_may_expire_later() -> None:
    csca = make_cert("CSCA old", ec_key("secp256r1", 7), ca=True,
                     not_before=NOW - timedelta(days=5000), not_after=NOW - timedelta(days=10))
    ds = make_cert("DS under old CSCA", ec_key("secp256r1", 8), csca,
                   not_before=NOW - timedelta(days=100), not_after=NOW + timedelta(days=100))
    store = TrustStore()
    store.add_certificate(csca.der)
    result = _verify(make_sod(signer=ds), store)
    assert result.csca_chain is True and result.validity is True, result.reasons
    assert result.chip_anchored


def test_csca_expired_before_it_issued_the_ds() -> None:
    csca = make_cert("CSCA old", ec_key("secp256r1", 7), ca=True,
                     not_before=NOW - timedelta(days=5000), not_after=NOW - timedelta(days=200))
    ds = make_cert("DS under old CSCA", ec_key("secp256r1", 8), csca,
                   not_before=NOW - timedelta(days=100), not_after=NOW + timedelta(days=100))
    store = TrustStore()
    store.add_certificate(csca.der)
    result = _verify(make_sod(signer=ds), store)
    assert result.csca_chain is True and result.validity is False
    assert any(r.startswith("validity: CSCA") and "expired" in r and
               "before it issued the document signer certificate" in r for r in result.reasons)
    assert not result.chip_anchored


def test_ds_claiming_a_trusted_csca_with_a_foreign_key_is_forged(trust: TrustStore) -> None:
    forger = make_cert("CSCA forger", ec_key("brainpoolP256r1", 9), ca=True)
    unknown_ds = make_cert("DS forged", ec_key("brainpoolP256r1", 10), forger)
    # the forger issues a DS under the trusted CSCA's name, signed with its own key
    posing = dataclasses.replace(forger, name=pki().csca_bp512.name)
    forged = make_cert("DS forged", ec_key("brainpoolP256r1", 10), posing)
    result = _verify(make_sod(signer=forged), trust)
    assert result.ds_signature and result.hashes_ok
    assert result.issuer_status == "forged-signer" and result.forged_signer
    assert result.assurance is None and result.csca_chain is False
    assert any("forged document signer" in r for r in result.reasons)
    unknown = _verify(make_sod(signer=unknown_ds), trust)
    assert unknown.issuer_status == "unknown-csca" and unknown.assurance == "chip-signed"


def test_naive_time_is_utc(trust: TrustStore) -> None:
    result = _verify(make_sod(), trust, at=NOW.replace(tzinfo=None))
    assert result.validity is True


def test_csca_not_a_ca_does_not_anchor() -> None:
    not_ca = make_cert("CSCA not CA", ec_key("secp256r1", 11))  # end-entity certificate
    ds = make_cert("DS under non-CA", ec_key("secp256r1", 12), not_ca)
    store = TrustStore()
    with pytest.raises(ValueError, match="not a CA"):
        store.add_certificate(not_ca.der)
    store.add_certificate(pki().csca_rsa.der)
    result = _verify(make_sod(signer=ds), store)
    assert result.csca_chain is False and result.chip_signed and not result.chip_anchored


def test_own_arithmetic_for_unnamed_explicit_curve(trust: TrustStore) -> None:
    """An explicit curve that matches no named one (brainpoolP256r1 with generator 2G) is
    verified with ecparams' arithmetic: the DS signature and a DS certificate signature."""
    bp = ecparams.CURVES_BY_NAME["brainpoolP256r1"]
    g2 = ecparams.scalar_mult(bp, 2, (bp.gx, bp.gy))
    assert g2 is not None
    curve = ecparams.CurveParams("custom", None, bp.p, bp.a, bp.b, g2[0], g2[1], bp.n)
    d = secrets.randbelow(bp.n - 1) + 1
    q = ecparams.scalar_mult(curve, d, (curve.gx, curve.gy))
    assert q is not None
    size = bp.byte_length
    point = b"\x04" + q[0].to_bytes(size, "big") + q[1].to_bytes(size, "big")
    domain = keys.SpecifiedECDomain({
        "version": "ecdpVer1", "field_id": {"field_type": "prime_field", "parameters": bp.p},
        "curve": {"a": bp.a.to_bytes(size, "big"), "b": bp.b.to_bytes(size, "big")},
        "base": b"\x04" + g2[0].to_bytes(size, "big") + g2[1].to_bytes(size, "big"),
        "order": bp.n, "cofactor": 1,
    })
    template = ax.Certificate.load(pki().ds_bp256.der)
    tbs = template["tbs_certificate"].copy()
    tbs["subject_public_key_info"] = keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec",
                      "parameters": keys.ECDomainParameters(name="specified", value=domain)},
        "public_key": point,
    })
    ds = resign(tbs, template["signature_algorithm"], pki().csca_bp512.key, "sha512",
                pki().ds_bp256)

    class _CustomSigner:
        """Just enough of a private key for the SOD builder (textbook ECDSA over the curve)."""

        def custom_sign(self, data: bytes, hash_name: str) -> bytes:
            k = secrets.randbelow(bp.n - 1) + 1
            r, s = ecdsa_sign_digest(curve, d, hashlib.new(hash_name, data).digest(), k)
            return bytes(algos.DSASignature({"r": r, "s": s}).dump())

    signer = Issued(_CustomSigner(), ds.der, ds.name)  # type: ignore[arg-type]
    sod = make_sod(signer=signer, sig_alg_override={"algorithm": "sha256_ecdsa"})
    result = _verify(sod, trust)
    assert result.reasons == []
    assert result.chip_anchored
    bad = make_sod(signer=signer, sig_alg_override={"algorithm": "sha256_ecdsa"},
                   signature_override=bytes(algos.DSASignature({"r": 5, "s": 7}).dump()))
    assert _verify(bad, trust).ds_signature is False


def test_explicit_params_with_compressed_base_point(trust: TrustStore) -> None:
    from tests.unit.test_pa_pki import with_explicit_params

    named = make_cert("DS compressed base", ec_key("brainpoolP256r1", 13), pki().csca_bp512,
                      hash_name="sha512")
    ds = with_explicit_params(named, pki().csca_bp512.key, "sha512",
                              specified_domain("brainpoolP256r1", compressed=True))
    result = _verify(make_sod(signer=ds), trust)
    assert result.chip_anchored, result.reasons


def test_explicit_spki_helper_round_trip() -> None:
    key = ec_key("brainpoolP384r1")
    from cryptography.hazmat.primitives import serialization

    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    from edge_agent.icao.sod import load_public_key

    loaded = load_public_key(explicit_spki(spki, specified_domain("brainpoolP384r1")).dump())
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.public_numbers() == key.public_key().public_numbers()
    rsa_loaded = load_public_key(
        rsa_key(1).public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo))
    assert not isinstance(rsa_loaded, ec.EllipticCurvePublicKey)


def test_exceptions_become_failed_checks(trust: TrustStore) -> None:
    sod = parse_sod(make_sod())
    broken = dataclasses.replace(
        sod,
        hash_algorithm="md5",
        signed_data=dataclasses.replace(sod.signed_data, digest_algorithm="nope",
                                        signature_algorithm=SignatureAlgorithm("1", "ecdsa", "x")),
        signer_certificate_der=b"\x30\x00",
    )
    result = verify(broken, {1: b"x", 2: None}, trust, NOW)  # type: ignore[dict-item]
    assert result.dg_hashes == {1: False, 2: False}
    assert not result.signed_attrs_digest and not result.ds_signature
    assert result.csca_chain is False and result.validity is False
    assert not result.chip_signed and not result.chip_anchored
    assert len(result.reasons) >= 5


def test_inspect_sod_json(trust: TrustStore) -> None:
    dgs = sample_dgs()
    out = inspect_sod(make_sod(dgs), {1: dgs[1], 2: dgs[2]}, trust, NOW)
    json.dumps(out)
    assert out["hash_algorithm"] == "sha256"
    assert out["dg_hashes"] == {"1": True, "2": True, "13": None, "14": None, "15": None}
    assert out["signature_valid"] is True
    assert out["signer"] == "CN=DS Test BP256,O=Test Ministry of Public Security,C=VN"
    assert out["csca_chain"] is True
    assert out["assurance"] == "chip-anchored"
    assert inspect_sod(make_sod(dgs), {}, None, NOW)["csca_chain"] is None
    with pytest.raises(SodError):
        inspect_sod(b"\x77\x00", {}, trust)


def test_result_to_dict(trust: TrustStore) -> None:
    result = _verify(make_sod(), trust)
    d = result.to_dict()
    json.dumps(d)
    assert d["chip_anchored"] is True and d["dg_hashes"]["1"] is True


def test_ds_certificate_with_unsupported_signature_algorithm(trust: TrustStore) -> None:
    """The SOD still parses and its signature verifies; only the chain cannot be checked."""
    template = ax.Certificate.load(pki().ds_bp256.der)
    tbs = template["tbs_certificate"].copy()
    tbs["signature"] = {"algorithm": "sha3_256_ecdsa"}
    ds = resign(tbs, {"algorithm": "sha3_256_ecdsa"}, pki().csca_bp512.key, "sha256",
                pki().ds_bp256)
    result = _verify(make_sod(signer=ds), trust)
    assert result.ds_signature is True and result.chip_signed
    assert result.csca_chain is False
    assert any("unsupported signature algorithm 2.16.840.1.101.3.4.3.10" in r
               for r in result.reasons)

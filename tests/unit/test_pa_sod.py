"""EF.SOD parsing (ICAO 9303-10 §4.6.2; RFC 5652): good SODs, 30+ malformed ones, fuzzing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from asn1crypto import cms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.icao.sod import LDSSecurityObject, SodError, parse_sod
from tests.unit.test_pa_pki import (
    OID_ML,
    lds_security_object,
    make_sod,
    pki,
    sample_dgs,
    signed_data,
    wrap77,
)


def _lds(values: list[tuple[int, bytes]], version: int = 0, hash_name: str = "sha256",
         info: tuple[str, str] | None = None) -> bytes:
    obj: dict[str, Any] = {
        "version": version,
        "hashAlgorithm": {"algorithm": hash_name},
        "dataGroupHashValues": [
            {"dataGroupNumber": n, "dataGroupHashValue": h} for n, h in values
        ],
    }
    if info:
        obj["ldsVersionInfo"] = {"ldsVersion": info[0], "unicodeVersion": info[1]}
    return bytes(LDSSecurityObject(obj).dump())


H = hashlib.sha256(b"x").digest()


def test_parse_good_sod() -> None:
    dgs = sample_dgs()
    sod = parse_sod(make_sod(dgs))
    assert sod.hash_algorithm == "sha256"
    assert sod.version == 0
    assert sod.dg_hashes == {n: hashlib.sha256(v).digest() for n, v in dgs.items()}
    assert sod.signer_subject == "CN=DS Test BP256,O=Test Ministry of Public Security,C=VN"
    assert sod.signer_certificate_der == pki().ds_bp256.der
    sd = sod.signed_data
    assert sd.content_type == "2.23.136.1.1.1"
    assert sd.signer_id == "issuer_and_serial_number"
    assert sd.signed_attrs is not None and sd.signed_attrs[0] == 0x31
    assert sd.message_digest == hashlib.sha256(sd.content).digest()


@pytest.mark.parametrize("hash_name", ["sha1", "sha224", "sha256", "sha384", "sha512"])
def test_hash_algorithms(hash_name: str) -> None:
    sod = parse_sod(make_sod(hash_name=hash_name))
    assert sod.hash_algorithm == hash_name
    assert all(len(h) == hashlib.new(hash_name).digest_size for h in sod.dg_hashes.values())


def test_v1_with_lds_version_info_and_ski_signer() -> None:
    econtent = lds_security_object(sample_dgs(), version=1, lds_version=("0108", "040000"))
    sod = parse_sod(make_sod(econtent=econtent, sid="subject_key_identifier"))
    assert (sod.version, sod.lds_version, sod.unicode_version) == (1, "0108", "040000")
    assert sod.signed_data.signer_id == "subject_key_identifier"


def test_pss_parameters_are_read() -> None:
    sod = parse_sod(make_sod(signer=pki().ds_pss, scheme="pss", hash_name="sha384"))
    alg = sod.signed_data.signature_algorithm
    assert (alg.family, alg.hash_algorithm, alg.mgf_hash, alg.salt_length) == (
        "rsa-pss", "sha384", "sha384", 48)


def test_bare_cms_only_when_allowed() -> None:
    bare = signed_data(lds_security_object(sample_dgs()), pki().ds_bp256)
    with pytest.raises(SodError, match="must start with tag 77"):
        parse_sod(bare)
    assert parse_sod(bare, allow_bare_cms=True).hash_algorithm == "sha256"


def _other_cert() -> list[bytes]:
    return [pki().ds_rsa.der]


def _sod(**kw: Any) -> Callable[[], bytes]:
    return lambda: make_sod(**kw)


def _sod_econtent(econtent: bytes, **kw: Any) -> Callable[[], bytes]:
    return lambda: make_sod(econtent=econtent, **kw)


MALFORMED: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty", lambda: b"", "empty EF.SOD"),
    ("not 77", lambda: b"\x30\x03\x02\x01\x00", "must start with tag 77, found 30"),
    ("trailing after 77", lambda: make_sod() + b"\x00", "trailing bytes after EF.SOD"),
    ("truncated 77", lambda: make_sod()[:-10], "EF.SOD wrapper: value of tag 77 truncated"),
    ("77 empty", lambda: b"\x77\x00", "EF.SOD wrapper is empty"),
    ("77 around OCTET STRING", lambda: wrap77(b"\x04\x01\x00"), "not a DER SEQUENCE"),
    ("ContentInfo data", lambda: wrap77(signed_data(b"", pki().ds_bp256, outer_type="data")),
     "ContentInfo is not SignedData but 1.2.840.113549.1.7.1"),
    ("trailing inside 77", lambda: wrap77(
        signed_data(lds_security_object(sample_dgs()), pki().ds_bp256) + b"\x05\x00"),
     "trailing"),
    ("wrong eContentType", _sod(econtent_type=OID_ML),
     "eContentType is 2.23.136.1.1.2, expected 2.23.136.1.1.1"),
    ("no signer", _sod(signer_infos=0), "SignedData has no signer info"),
    ("no certificate", _sod(certificates=[]), "SignedData carries no certificate"),
    ("signer certificate absent", _sod(certificates=_other_cert()),
     "no embedded certificate matches the signer identifier"),
    ("SKI signer certificate absent",
     _sod(certificates=_other_cert(), sid="subject_key_identifier"),
     "no embedded certificate matches the signer identifier"),
    ("no content-type attribute", _sod(omit_attrs=("content_type",)),
     "signed attributes lack the content-type attribute"),
    ("no message-digest attribute", _sod(omit_attrs=("message_digest",)),
     "signed attributes lack the message-digest attribute"),
    ("content-type attribute mismatch", _sod(content_type_attr="1.2.840.113549.1.7.1"),
     "content-type attribute 1.2.840.113549.1.7.1 differs from eContentType"),
    ("content-type two values", _sod(omit_attrs=("content_type",), extra_attrs=[
        {"type": "content_type", "values": ["2.23.136.1.1.1", "2.23.136.1.1.1"]}]),
     "content-type attribute must have exactly one value"),
    ("message-digest twice", _sod(extra_attrs=[
        {"type": "message_digest", "values": [H]}]),
     "signed attribute 1.2.840.113549.1.9.4 appears twice"),
    ("no signed attributes", _sod(no_signed_attrs=True),
     "signer info has no signed attributes"),
    ("message-digest wrong length", _sod(message_digest=bytes(20)),
     "message-digest attribute of 20 bytes for sha256"),
    ("unsupported digest algorithm", _sod(digest_alg_override="md5"),
     "unsupported hash algorithm 1.2.840.113549.2.5"),
    ("unsupported signature algorithm", _sod(sig_alg_override={"algorithm": "sha256_dsa"}),
     "unsupported signature algorithm 2.16.840.1.101.3.4.3.2"),
    ("PSS without parameters", _sod(sig_alg_override={"algorithm": "rsassa_pss"}),
     "RSASSA-PSS without parameters"),
    ("empty signature", _sod(signature_override=b""), "empty signature"),
    ("detached content", _sod(detached=True), "SignedData has no encapsulated content"),
    ("LDS garbage", _sod_econtent(b"\x01\x02\x03"), "malformed LDSSecurityObject"),
    ("LDS trailing bytes", _sod_econtent(lds_security_object(sample_dgs()) + b"\x00"),
     "malformed LDSSecurityObject"),
    ("LDS hash length", _sod_econtent(_lds([(1, H), (2, H[:20])])),
     "hash of DG2 is 20 bytes, sha256 gives 32"),
    ("LDS duplicate DG", _sod_econtent(_lds([(1, H), (2, H), (1, H)])),
     "duplicate data group number 1"),
    ("LDS DG 0", _sod_econtent(_lds([(0, H), (1, H)])), "data group number 0 out of range"),
    ("LDS DG 17", _sod_econtent(_lds([(1, H), (17, H)])), "data group number 17 out of range"),
    ("LDS negative DG", _sod_econtent(_lds([(-1, H)])), "data group number -1 out of range"),
    ("LDS no DG", _sod_econtent(_lds([])), "LDSSecurityObject lists no data group hash"),
    ("LDS version 2", _sod_econtent(_lds([(1, H)], version=2)),
     "LDSSecurityObject version 2 is neither v0 nor v1"),
    ("LDS v1 without info", _sod_econtent(_lds([(1, H)], version=1)),
     "LDSSecurityObject v1 without ldsVersionInfo"),
    ("LDS v0 with info", _sod_econtent(_lds([(1, H)], info=("0108", "040000"))),
     "LDSSecurityObject v0 with ldsVersionInfo"),
    ("LDS md5", _sod_econtent(_lds([(1, hashlib.md5(b"x").digest())], hash_name="md5")),
     "unsupported hash algorithm 1.2.840.113549.2.5"),
]


@pytest.mark.parametrize(("label", "build", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_sod_reason(label: str, build: Callable[[], bytes], reason: str) -> None:
    data = build()
    with pytest.raises(SodError) as info:
        parse_sod(data)
    assert reason in info.value.reason, (label, info.value.reason)
    assert isinstance(info.value, ValueError)


def test_malformed_list_is_large_enough() -> None:
    assert len(MALFORMED) >= 25


def test_certificate_choice_other_than_x509_is_ignored() -> None:
    # the only certificate is the signer's; an SOD with an extra (unrelated) one still parses
    data = make_sod(certificates=[pki().ds_rsa.der, pki().ds_bp256.der])
    assert parse_sod(data).signer_certificate_der == pki().ds_bp256.der


def test_sid_issuer_serial_mismatch() -> None:
    # same issuer, different serial: a certificate of the same CA that did not sign
    sod = parse_sod(make_sod(certificates=[pki().ds_explicit.der, pki().ds_bp256.der]))
    assert sod.signer_certificate_der == pki().ds_bp256.der
    assert len(sod.signed_data.certificates) == 2


def test_multiple_signers_uses_first() -> None:
    sod = parse_sod(make_sod(signer_infos=2))
    assert sod.signed_data.signer_count == 2


# ------------------------------------------------------------------------------------ fuzzing

_GOOD = make_sod()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_sod_error(data: bytes) -> None:
    try:
        parse_sod(data)
    except SodError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_in_77_only_raise_sod_error(data: bytes) -> None:
    try:
        parse_sod(wrap77(b"\x30" + bytes([min(len(data), 0x7F)]) + data))
    except SodError:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(_GOOD) - 1), st.integers(0, 255)),
        min_size=1, max_size=6,
    ),
    st.integers(min_value=0, max_value=len(_GOOD)),
)
def test_mutated_sod_only_raises_sod_error(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_GOOD)
    for pos, value in edits:
        data[pos] = value
    for candidate in (bytes(data), bytes(data[:cut]), bytes(data[:cut]) + b"\x00" + bytes(data[cut:])):
        try:
            parse_sod(candidate)
        except SodError:
            pass


def test_signed_attrs_bytes_are_exactly_what_was_signed() -> None:
    data = make_sod()
    sod = parse_sod(data)
    ci = cms.ContentInfo.load(data[4:] if data[1] == 0x82 else data[3:])
    attrs = ci["content"]["signer_infos"][0]["signed_attrs"].dump()
    assert sod.signed_data.signed_attrs == b"\x31" + attrs[1:]

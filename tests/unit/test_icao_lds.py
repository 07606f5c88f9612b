"""LDS parsers (ICAO 9303-10 §4.6-4.7): EF.COM, DG1, DG2, DG14, DG15, fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.icao import der, ec, lds
from edge_agent.icao.errors import LdsError
from edge_agent.icao.public_keys import EcPublicKey, RsaPublicKey, parse_subject_public_key_info
from edge_agent.icao.security_infos import (
    ActiveAuthenticationInfo,
    ChipAuthenticationInfo,
    parse_card_access,
)
from edge_agent.icao.tlv import encode_tlv

JPEG = b"\xff\xd8\xff\xe0" + bytes(40) + b"\xff\xd9"
J2K = b"\xff\x4f\xff\x51" + bytes(30)
JP2 = b"\x00\x00\x00\x0c\x6a\x50\x20\x20\x0d\x0a\x87\x0a" + bytes(20)
TD1 = ("IDVNM3030012342079303001234<<2", "0305152F2805151VNM<<<<<<<<<<<0",
       "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<")


def _seq(*parts: bytes) -> bytes:
    return encode_tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return encode_tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def facial_record(image: bytes, width: int = 240, height: int = 320, points: int = 0) -> bytes:
    facial_info = (20 + 8 * points + 12 + len(image)).to_bytes(4, "big") + points.to_bytes(
        2, "big") + bytes(14)
    image_info = bytes([1, 0]) + width.to_bytes(2, "big") + height.to_bytes(2, "big") + bytes(6)
    body = facial_info + bytes(8 * points) + image_info + image
    header = b"FAC\x00010\x00" + (14 + len(body)).to_bytes(4, "big") + b"\x00\x01"
    return header + body


def dg2(block: bytes, tag: int = 0x5F2E) -> bytes:
    template = encode_tlv(0x7F60, encode_tlv(0xA1, encode_tlv(0x80, b"\x01\x01"))
                          + encode_tlv(tag, block))
    return encode_tlv(0x75, encode_tlv(0x7F61, encode_tlv(0x02, b"\x01") + template))


def test_ef_com_vector(icao_vectors: dict[str, Any]) -> None:
    cases = icao_vectors["secure_messaging_3des"]["cases"]
    data = bytes.fromhex(cases[1]["response_data"] + cases[2]["response_data"])
    com = lds.parse_ef_com(data)
    assert (com.lds_version, com.unicode_version, com.data_groups) == ("0106", "040000", (1, 2))


def test_ef_com_cccd() -> None:
    data = encode_tlv(0x60, encode_tlv(0x5F01, b"0107") + encode_tlv(0x5F36, b"040000")
                      + encode_tlv(0x5C, bytes.fromhex("617563 6D6E6F".replace(" ", ""))))
    assert lds.parse_ef_com(data).data_groups == (1, 2, 3, 13, 14, 15)


@pytest.mark.parametrize(("data", "reason"), [
    ("6003 5F0100", "EF.COM lacks the tag list 5C"),
    ("6003 5C0199", "unknown data-group tag 99"),
    ("6103 5C0161", "EF.COM: expected tag 60, found 61"),
    ("6005 5C0161", "truncated"),
    ("6003 5C0161 00", "1 trailing bytes"),
])
def test_ef_com_malformed(data: str, reason: str) -> None:
    with pytest.raises(LdsError, match=reason):
        lds.parse_ef_com(bytes.fromhex(data.replace(" ", "")))


def test_dg1_td1() -> None:
    data = encode_tlv(0x61, encode_tlv(0x5F1F, "".join(TD1).encode()))
    dg1 = lds.parse_dg1(data)
    assert dg1.lines == TD1 and dg1.is_td1 and dg1.mrz == "".join(TD1)


@pytest.mark.parametrize(("value", "reason"), [
    (encode_tlv(0x61, encode_tlv(0x5F1F, b"ABC")), "MRZ of 3 characters matches no"),
    (encode_tlv(0x61, encode_tlv(0x5F1F, b"a" * 90)), "outside A-Z"),
    (encode_tlv(0x61, encode_tlv(0x5F1F, b"\xc3" * 90)), "MRZ is not ASCII"),
    (encode_tlv(0x61, encode_tlv(0x5F20, b"X")), "lacks the MRZ data element 5F1F"),
])
def test_dg1_malformed(value: bytes, reason: str) -> None:
    with pytest.raises(LdsError, match=reason):
        lds.parse_dg1(value)


@pytest.mark.parametrize(("image", "mime"), [(JPEG, "image/jpeg"), (J2K, "image/j2k"),
                                             (JP2, "image/jp2")])
def test_dg2_images(image: bytes, mime: str) -> None:
    parsed = lds.parse_dg2(dg2(facial_record(image, points=2)))
    assert parsed.image.image == image and parsed.image.mime_type == mime
    assert (parsed.image.width, parsed.image.height) == (240, 320)
    assert lds.parse_dg2(dg2(facial_record(image), tag=0x7F2E)).image.image == image


def test_dg2_other_versions_and_bare() -> None:
    record = bytearray(facial_record(JPEG))
    record[4:8] = b"030\x00"
    assert lds.parse_dg2(dg2(bytes(record))).image.image.startswith(JPEG)
    assert lds.parse_dg2(dg2(JPEG)).image.image == JPEG


@pytest.mark.parametrize(("data", "reason"), [
    (encode_tlv(0x75, encode_tlv(0x02, b"\x01")), "lacks the biometric information group"),
    (encode_tlv(0x75, encode_tlv(0x7F61, encode_tlv(0x02, b"\x00"))), "holds no biometric"),
    (dg2(b"FAC\x00010\x00" + bytes(30)), "no JPEG or JPEG 2000 image"),
    (dg2(b"GIF89a"), "neither ISO 19794-5"),
    (dg2(b"FAC\x00"), "general header truncated"),
])
def test_dg2_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(LdsError, match=reason):
        lds.parse_dg2(data)


def _ec_spki(curve: cec.EllipticCurve) -> tuple[bytes, cec.EllipticCurvePrivateKey]:
    key = cec.generate_private_key(curve)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki, key


def explicit_spki(point: bytes, curve: ec.Curve = ec.BRAINPOOL_P256R1,
                  algorithm: str = "1.2.840.10045.2.1") -> bytes:
    size = curve.coordinate_size
    params = _seq(_int(1), _seq(der.oid_tlv("1.2.840.10045.1.1"), _int(curve.p)),
                  _seq(encode_tlv(0x04, curve.a.to_bytes(size, "big")),
                       encode_tlv(0x04, curve.b.to_bytes(size, "big"))),
                  encode_tlv(0x04, ec.encode_point(curve, curve.g)), _int(curve.n), _int(1))
    return _seq(_seq(der.oid_tlv(algorithm), params), encode_tlv(0x03, b"\x00" + point))


def cccd_dg14(spki: bytes, *, ca_oid: str = "0.4.0.127.0.7.2.2.3.2.2", key_id: int | None = None,
              aa_oid: str | None = "1.2.840.10045.4.3.2") -> bytes:
    ca_info = _seq(der.oid_tlv(ca_oid), _int(1), *([_int(key_id)] if key_id is not None else []))
    pk_info = _seq(der.oid_tlv("0.4.0.127.0.7.2.2.1.2"), spki,
                   *([_int(key_id)] if key_id is not None else []))
    infos = [ca_info, pk_info]
    if aa_oid:
        infos.append(_seq(der.oid_tlv("2.23.136.1.1.5"), _int(1), der.oid_tlv(aa_oid)))
    return encode_tlv(0x6E, encode_tlv(0x31, b"".join(infos)))


def test_dg14_named_and_explicit() -> None:
    spki, key = _ec_spki(cec.BrainpoolP256R1())
    numbers = key.public_key().public_numbers()
    parsed = lds.parse_dg14(cccd_dg14(spki, key_id=7))
    assert parsed.chip_authentication_infos == [ChipAuthenticationInfo(
        "0.4.0.127.0.7.2.2.3.2.2", 1, 7)]
    pk = parsed.chip_authentication_public_keys[0]
    assert pk.key_id == 7 and isinstance(pk.public_key, EcPublicKey)
    assert pk.public_key.curve is ec.BRAINPOOL_P256R1
    assert pk.public_key.point == (numbers.x, numbers.y)
    assert parsed.active_authentication_info == ActiveAuthenticationInfo(
        "2.23.136.1.1.5", 1, "1.2.840.10045.4.3.2")
    point = ec.encode_point(ec.BRAINPOOL_P256R1, ec.Point(numbers.x, numbers.y))
    explicit = lds.parse_dg14(cccd_dg14(explicit_spki(point, algorithm="0.4.0.127.0.7.2.2.1.2")))
    key_info = explicit.chip_authentication_public_keys[0].public_key
    assert isinstance(key_info, EcPublicKey) and key_info.curve is ec.BRAINPOOL_P256R1


def test_dg14_malformed_reasons() -> None:
    spki, _key = _ec_spki(cec.BrainpoolP256R1())
    bad_point = spki[:-1] + bytes([spki[-1] ^ 1])
    with pytest.raises(LdsError, match="EC public key: point is not on the curve"):
        lds.parse_dg14(cccd_dg14(bad_point))
    with pytest.raises(LdsError, match="DG14 holds 0 elements"):
        lds.parse_dg14(b"\x6e\x00")
    with pytest.raises(LdsError, match="SecurityInfos: expected tag 31"):
        lds.parse_dg14(encode_tlv(0x6E, _seq()))
    with pytest.raises(LdsError, match="SecurityInfo with 1 fields"):
        lds.parse_dg14(encode_tlv(0x6E, encode_tlv(0x31, _seq(der.oid_tlv("1.2.3")))))
    unknown_curve = _seq(_seq(der.oid_tlv("1.2.840.10045.2.1"), der.oid_tlv("1.2.3.4")),
                         encode_tlv(0x03, b"\x00\x04"))
    with pytest.raises(LdsError, match=r"unsupported named curve 1\.2\.3\.4"):
        lds.parse_dg14(cccd_dg14(unknown_curve))


def test_dg15_rsa_and_ec() -> None:
    rsa_key = rsa.generate_private_key(65537, 1024)
    spki = rsa_key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    dg15 = lds.parse_dg15(encode_tlv(0x6F, spki))
    assert isinstance(dg15.public_key, RsaPublicKey)
    assert dg15.public_key.n == rsa_key.public_key().public_numbers().n
    assert dg15.spki == spki
    ec_spki, _ = _ec_spki(cec.SECP256R1())
    assert isinstance(lds.parse_dg15(encode_tlv(0x6F, ec_spki)).public_key, EcPublicKey)
    with pytest.raises(LdsError, match="DG15 holds 2 elements"):
        lds.parse_dg15(encode_tlv(0x6F, spki + spki))
    with pytest.raises(LdsError, match="BIT STRING with 3 unused bits"):
        parse_subject_public_key_info(_seq(_seq(der.oid_tlv("1.2.840.113549.1.1.1")),
                                           encode_tlv(0x03, b"\x03\x00")))


def test_oid_roundtrip() -> None:
    for oid in ("0.4.0.127.0.7.2.2.4.2.2", "1.2.840.113549.1.1.1", "2.23.136.1.1.5", "2.999.1"):
        assert der.decode_oid(der.encode_oid(oid)) == oid
    with pytest.raises(LdsError, match="ends inside a sub-identifier"):
        der.decode_oid(b"\x2a\x86")
    with pytest.raises(LdsError, match="leading 80"):
        der.decode_oid(b"\x2a\x80\x01")


PARSERS = [lds.parse_ef_com, lds.parse_dg1, lds.parse_dg2, lds.parse_dg14, lds.parse_dg15,
           parse_card_access, lds.parse_card_access_file, parse_subject_public_key_info]


def _structured() -> st.SearchStrategy[bytes]:
    leaf = st.builds(encode_tlv,
                     st.sampled_from([0x02, 0x03, 0x04, 0x06, 0x5F1F, 0x5F2E, 0x80, 0x86]),
                     st.binary(max_size=40))
    return st.recursive(leaf, lambda inner: st.builds(
        lambda t, parts: encode_tlv(t, b"".join(parts)),
        st.sampled_from([0x30, 0x31, 0x60, 0x61, 0x6E, 0x6F, 0x75, 0x7F61, 0x7F60, 0xA1]),
        st.lists(inner, max_size=4)), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=200), _structured()))
def test_random_bytes_only_domain_errors(data: bytes) -> None:
    for parse in PARSERS:
        try:
            parse(data)
        except LdsError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=1, max_size=3))
def test_mutated_dg14_only_domain_errors(position: int, patch: bytes) -> None:
    spki = explicit_spki(ec.encode_point(ec.BRAINPOOL_P256R1, ec.BRAINPOOL_P256R1.g))
    data = bytearray(cccd_dg14(spki, key_id=1))
    position %= len(data)
    data[position:position + len(patch)] = patch
    try:
        lds.parse_dg14(bytes(data))
    except LdsError:
        pass

"""Encoders of the LDS1 files the chip holds (ICAO 9303-10 §4.6-4.7; docs/cccd.md §2-4).

Every encoder returns the exact bytes stored on the chip; EF.SOD hashes these bytes as they are
(no re-encoding). DG13's SET keeps the field order of real cards (BER, not DER-sorted).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import oids
from .tlv import tlv

CARD_ACCESS_CCCD = bytes.fromhex(
    "3134300d060804007f0007020202020101300f060a04007f000702020302020201013012060a04007f0007020204"
    "020202010202010d"
)
LDS_VERSION = b"0107"
UNICODE_VERSION = b"040000"
COM_TAGS = bytes([0x61, 0x75, 0x63, 0x6D, 0x6E, 0x6F])


def der_int(n: int) -> bytes:
    """DER INTEGER (non-negative)."""
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def der_oid(content: bytes) -> bytes:
    """DER OBJECT IDENTIFIER from its content octets."""
    return tlv(0x06, content)


def der_seq(*items: bytes) -> bytes:
    """DER SEQUENCE of already-encoded items."""
    return tlv(0x30, b"".join(items))


def der_set(*items: bytes, sort: bool = True) -> bytes:
    """SET OF; DER-sorted unless ``sort`` is False (card order kept)."""
    return tlv(0x31, b"".join(sorted(items) if sort else items))


def utf8(text: str) -> bytes:
    """UTF8String."""
    return tlv(0x0C, text.encode("utf-8"))


def printable(text: str) -> bytes:
    """PrintableString."""
    return tlv(0x13, text.encode("ascii"))


def ef_com() -> bytes:
    """EF.COM: LDS version 1.7, Unicode 4.0.0, tag list DG1 DG2 DG3 DG13 DG14 DG15."""
    return tlv(0x60, tlv(0x5F01, LDS_VERSION) + tlv(0x5F36, UNICODE_VERSION) + tlv(0x5C, COM_TAGS))


def dg1(mrz: list[str]) -> bytes:
    """DG1: ``61 L 5F1F 5A <TD1 MRZ, 3 × 30 characters>``."""
    text = "".join(mrz)
    if len(text) != 90:
        raise ValueError("a TD1 MRZ has 90 characters")
    return tlv(0x61, tlv(0x5F1F, text.encode("ascii")))


def iso19794_5(jpeg: bytes, width: int, height: int, female: bool) -> bytes:
    """ISO/IEC 19794-5:2005 face record (``FAC\\0``, version ``010\\0``) with one JPEG image."""
    facial_info = (
        (0).to_bytes(2, "big")  # feature points
        + bytes([2 if female else 1, 0, 0])  # gender, eye colour, hair colour
        + bytes(3)  # property mask
        + bytes(2)  # expression unspecified
        + bytes(3)  # pose angle
        + bytes(3)  # pose angle uncertainty
    )
    image_info = (
        bytes([1, 0])  # full frontal, JPEG
        + width.to_bytes(2, "big")
        + height.to_bytes(2, "big")
        + bytes([1, 2])  # RGB24, digital camera
        + bytes(2)  # device type
        + bytes(2)  # quality
    )
    block = facial_info + image_info + jpeg
    block = (len(block) + 4).to_bytes(4, "big") + block
    header = b"FAC\x00010\x00" + (14 + len(block)).to_bytes(4, "big") + (1).to_bytes(2, "big")
    return header + block


def dg2(face_record: bytes) -> bytes:
    """DG2: biometric information group template with one face (ICAO 9303-10 §4.7.2)."""
    bht = tlv(0xA1, bytes.fromhex("8101028201008702010188020008"))
    bit = tlv(0x7F60, bht + tlv(0x5F2E, face_record))
    return tlv(0x75, tlv(0x7F61, tlv(0x02, b"\x01") + bit))


def dg13(fields: list[tuple[int, list[bytes]]]) -> bytes:
    """DG13 per docs/cccd.md §4:
    ``6D {30 {02 01 01, 06 28D316010008, 31 {30 {02 n, v...}...}}}``."""
    entries = [der_seq(der_int(n), *values) for n, values in fields]
    body = der_int(1) + der_oid(oids.DG13_CONTENT) + der_set(*entries, sort=False)
    return tlv(0x6D, der_seq(body))


def spki(key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """SubjectPublicKeyInfo (named curve for EC keys)."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def dg14(ca_public: ec.EllipticCurvePublicKey, aa_is_ecdsa: bool) -> bytes:
    """DG14: SecurityInfos with ChipAuthenticationInfo, ChipAuthenticationPublicKeyInfo and, for
    ECDSA Active Authentication, ActiveAuthenticationInfo (ICAO 9303-11 §9.2.5, §9.2.6, §9.2.11)."""
    infos = [
        der_seq(der_oid(oids.CA_ECDH_AES_128), der_int(1)),
        der_seq(der_oid(oids.PK_ECDH), spki(ca_public)),
    ]
    if aa_is_ecdsa:
        infos.append(
            der_seq(der_oid(oids.AA_PROTOCOL), der_int(1), der_oid(oids.ECDSA_WITH_SHA256))
        )
    return tlv(0x6E, der_set(*infos))


def dg15(aa_public: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> bytes:
    """DG15: ``6F L SubjectPublicKeyInfo`` of the Active Authentication key."""
    return tlv(0x6F, spki(aa_public))


def ef_sod(content_info: bytes) -> bytes:
    """EF.SOD: ``77 L <CMS ContentInfo>``."""
    return tlv(0x77, content_info)

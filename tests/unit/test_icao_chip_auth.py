"""Chip Authentication (ICAO 9303-11 §6.2) against a chip side built with `cryptography`."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec as cec

from edge_agent.icao import crypto, der, lds
from edge_agent.icao.apdu import CardStatusError, CommandApdu
from edge_agent.icao.chip_auth import ChipAuthError, chip_authenticate, plan_chip_authentication
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.tlv import encode_tlv

CHIP_KEY = cec.generate_private_key(cec.BrainpoolP256R1())
SPKI = CHIP_KEY.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)


def _seq(*parts: bytes) -> bytes:
    return encode_tlv(0x30, b"".join(parts))


def dg14(ca_oid: str | None, key_id: int | None = None) -> lds.Dg14:
    kid = [encode_tlv(0x02, bytes([key_id]))] if key_id is not None else []
    infos = [_seq(der.oid_tlv("0.4.0.127.0.7.2.2.1.2"), SPKI, *kid)]
    if ca_oid:
        infos.insert(0, _seq(der.oid_tlv(ca_oid), encode_tlv(0x02, b"\x01"), *kid))
    return lds.parse_dg14(encode_tlv(0x6E, encode_tlv(0x31, b"".join(infos))))


def chip_side_keys(ephemeral: bytes, cipher: CipherKind) -> tuple[bytes, bytes]:
    peer = cec.EllipticCurvePublicKey.from_encoded_point(cec.BrainpoolP256R1(), ephemeral)
    shared = CHIP_KEY.exchange(cec.ECDH(), peer)
    return crypto.kdf(shared, 1, cipher), crypto.kdf(shared, 2, cipher)


@pytest.mark.parametrize(("oid", "cipher"), [
    ("0.4.0.127.0.7.2.2.3.2.2", CipherKind.AES128),
    ("0.4.0.127.0.7.2.2.3.2.4", CipherKind.AES256),
])
def test_aes_plan(oid: str, cipher: CipherKind) -> None:
    plan = plan_chip_authentication(dg14(oid, key_id=3))
    mse, ga = plan.commands
    oid_bytes = der.encode_oid(oid)
    assert mse.to_bytes() == bytes.fromhex("002241A4") + bytes([2 + len(oid_bytes) + 3]) + (
        b"\x80" + bytes([len(oid_bytes)]) + oid_bytes + b"\x84\x01\x03")
    assert ga.to_bytes()[:9] == bytes.fromhex("0086000045 7C43 8041".replace(" ", ""))
    assert plan.session.cipher is cipher and plan.session.ssc == 0
    assert (plan.session.ks_enc, plan.session.ks_mac) == chip_side_keys(
        plan.ephemeral_public, cipher)


def test_3des_without_info_uses_kat() -> None:
    plan = plan_chip_authentication(dg14(None))
    (kat,) = plan.commands
    assert kat.to_bytes()[:7] == bytes.fromhex("002241A6439141")
    assert plan.session.cipher is CipherKind.DES3
    assert (plan.session.ks_enc, plan.session.ks_mac) == chip_side_keys(
        plan.ephemeral_public, CipherKind.DES3)


def test_driver_and_refusal() -> None:
    sent: list[bytes] = []

    class Chip:
        def __init__(self, answer: bytes) -> None:
            self.answer = answer

        def transmit(self, apdu: bytes) -> bytes:
            sent.append(apdu)
            return (b"\x7c\x00" if CommandApdu.parse(apdu).ins == 0x86 else b"") + self.answer

    session = chip_authenticate(Chip(b"\x90\x00"), dg14("0.4.0.127.0.7.2.2.3.2.2"))
    assert session.cipher is CipherKind.AES128 and len(sent) == 2
    with pytest.raises(CardStatusError):
        chip_authenticate(Chip(b"\x6a\x80"), dg14("0.4.0.127.0.7.2.2.3.2.2"))
    with pytest.raises(ChipAuthError, match="no ECDH ChipAuthenticationPublicKeyInfo"):
        chip_authenticate(Chip(b"\x90\x00"), lds.Dg14(()))

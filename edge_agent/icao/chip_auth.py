"""Chip Authentication (ICAO 9303-11 §6.2; BSI TR-03110 v1 §3.4, CA over existing SM).

From DG14 the terminal takes the chip's static ECDH key (ChipAuthenticationPublicKeyInfo) and
the protocol (ChipAuthenticationInfo; without one, id-CA-ECDH-3DES-CBC-CBC is implied), draws an
ephemeral key pair on the chip's curve and sends, inside the current secure messaging:

- 3DES: MSE:Set KAT ``00 22 41 A6`` with ``91 <ephemeral point>`` [``84 key id``];
- AES: MSE:Set AT ``00 22 41 A4`` with ``80 <OID>`` [``84 key id``], then General
  Authenticate ``00 86 00 00 7C{80 <ephemeral point>}``.

Both sides then compute K = x(sk · PK_chip), derive KS_enc and KS_mac with the KDF of the
protocol's cipher and restart secure messaging with SSC = 0. The chip is genuine when a secure
read under the new keys succeeds (the caller does that with the returned session).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.icao import crypto, der, ec
from edge_agent.icao.apdu import ApduError, CommandApdu, ResponseApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.ec import Curve, ecdh_x, encode_point, scalar_mult
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.lds import Dg14
from edge_agent.icao.public_keys import EcPublicKey
from edge_agent.icao.secure_messaging import SecureMessaging
from edge_agent.icao.security_infos import (
    ID_CA_ECDH,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    cipher_of,
)
from edge_agent.icao.tlv import encode_tlv

Rng = Callable[[int], bytes]
ID_CA_ECDH_3DES = ID_CA_ECDH + ".1"


class ChipAuthError(IcaoError):
    """Chip Authentication cannot be run or failed; ``reason`` says why."""


@dataclass(frozen=True, slots=True)
class ChipAuthPlan:
    """The commands to send (in order, inside current SM) and the session that follows."""

    protocol: str
    key_id: int | None
    commands: tuple[CommandApdu, ...]
    ephemeral_public: bytes
    session: SecureMessaging


def select_chip_key(dg14: Dg14) -> tuple[str, ChipAuthenticationPublicKeyInfo]:
    """Pick (protocol OID, ECDH public key info) from DG14, matching key ids when present."""
    keys = [k for k in dg14.chip_authentication_public_keys if isinstance(k.public_key,
                                                                          EcPublicKey)]
    if not keys:
        raise ChipAuthError("DG14 holds no ECDH ChipAuthenticationPublicKeyInfo")
    infos: list[ChipAuthenticationInfo] = [
        i for i in dg14.chip_authentication_infos
        if i.protocol.startswith(ID_CA_ECDH + ".") and i.cipher is not None]
    if not infos:
        return ID_CA_ECDH_3DES, keys[0]
    for info in infos:
        for key in keys:
            if info.key_id is None or key.key_id is None or info.key_id == key.key_id:
                return info.protocol, key
    raise ChipAuthError("no ChipAuthenticationInfo matches a public key's key id")


def _random_scalar(curve: Curve, rng: Rng) -> int:
    try:
        return ec.random_scalar(curve, rng)
    except ec.EcError as exc:
        raise ChipAuthError(str(exc)) from None


def plan_chip_authentication(dg14: Dg14, rng: Rng = os.urandom) -> ChipAuthPlan:
    """Sans-IO: ephemeral key, the commands and the new session (SSC = 0)."""
    protocol, key_info = select_chip_key(dg14)
    chip_key = key_info.public_key
    assert isinstance(chip_key, EcPublicKey)
    cipher = crypto_cipher(protocol)
    curve = chip_key.curve
    sk = _random_scalar(curve, rng)
    pk = scalar_mult(curve, sk)
    if pk is None:
        raise ChipAuthError("ephemeral public key is the point at infinity")
    ephemeral = encode_point(curve, pk)
    shared = ecdh_x(curve, sk, chip_key.point)
    key_ref = b""
    if key_info.key_id is not None:
        kid = key_info.key_id
        key_ref = encode_tlv(0x84, kid.to_bytes(max(1, (kid.bit_length() + 7) // 8), "big"))
    if cipher is CipherKind.DES3:
        commands: tuple[CommandApdu, ...] = (
            CommandApdu(0x00, 0x22, 0x41, 0xA6, encode_tlv(0x91, ephemeral) + key_ref),)
    else:
        commands = (
            CommandApdu(0x00, 0x22, 0x41, 0xA4,
                        encode_tlv(0x80, der.encode_oid(protocol)) + key_ref),
            CommandApdu(0x00, 0x86, 0x00, 0x00, encode_tlv(0x7C, encode_tlv(0x80, ephemeral)),
                        le=256),
        )
    session = SecureMessaging(cipher, crypto.kdf(shared, crypto.KDF_ENC, cipher),
                              crypto.kdf(shared, crypto.KDF_MAC, cipher), 0)
    return ChipAuthPlan(protocol, key_info.key_id, commands, ephemeral, session)


def crypto_cipher(protocol: str) -> CipherKind:
    """The SM cipher named by an id-CA-ECDH-* OID."""
    cipher = cipher_of(protocol)
    if cipher is None:
        raise ChipAuthError(f"unsupported Chip Authentication protocol {protocol}")
    return cipher


def chip_authenticate(channel: CardChannel, dg14: Dg14, rng: Rng = os.urandom) -> SecureMessaging:
    """Run CA over ``channel`` (the current secure channel); return the new session.

    The caller must then use ``SecureChannel(raw_channel, new_session)`` and read a file: only
    a chip holding the DG14 private key can answer under the new keys.
    """
    plan = plan_chip_authentication(dg14, rng)
    for command in plan.commands:
        try:
            ResponseApdu.from_bytes(channel.transmit(command.to_bytes())).check(
                "Chip Authentication")
        except ApduError as exc:
            raise ChipAuthError(f"Chip Authentication: {exc.reason}") from exc
    return plan.session

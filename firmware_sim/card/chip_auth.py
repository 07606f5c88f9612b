"""Card side of Chip Authentication v1, ECDH with AES-128 (ICAO 9303-11 §6.2; TR-03110-3 B.1).

``MSE:Set AT 00 22 41 A4 {80 id-CA-ECDH-AES-CBC-CMAC-128 [84 key id]}`` selects the protocol; then
``General Authenticate 00 86 00 00 {7C {80 PK_IFD}}`` carries the terminal's ephemeral public key.
The chip computes ``K = x(SK_CA · PK_IFD)``, answers ``7C 00`` under the *old* SM keys, then
switches to AES secure messaging with ``KSenc = KDF(K, 1)``, ``KSmac = KDF(K, 2)`` and SSC = 0.
The legacy MSE:Set KAT form (``41 A6``) belongs to the 3DES variant and is not offered (6A86).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import crypto, oids
from .apdu import SW
from .ec import BRAINPOOL_P256R1, Curve, PointError
from .errors import ISOError
from .secure_messaging import SMSession
from .tlv import TLVError, parse_all, read_tlv


@dataclass(slots=True)
class ChipAuthenticator:
    """Holds the static CA key pair (private scalar) of the chip."""

    private_key: int
    key_id: bytes | None = None
    curve: Curve = BRAINPOOL_P256R1
    selected: bool = False

    def set_at(self, oid: bytes, key_ref: bytes | None) -> None:
        """MSE:Set AT for CA: check the OID and optional key reference."""
        if oid != oids.CA_ECDH_AES_128:
            raise ISOError(SW.WRONG_DATA, "CA protocol not supported")
        if key_ref is not None and key_ref.lstrip(b"\x00") != (self.key_id or b"").lstrip(b"\x00"):
            raise ISOError(SW.REFERENCED_DATA_NOT_FOUND, "unknown CA key id")
        self.selected = True

    def general_authenticate(self, data: bytes) -> tuple[bytes, SMSession]:
        """Key agreement with the terminal's ephemeral key; return (``7C 00``, new session)."""
        if not self.selected:
            raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "no MSE:Set AT for CA")
        self.selected = False
        try:
            tag, inner, end = read_tlv(data)
            objects = parse_all(inner)
        except TLVError as exc:
            raise ISOError(SW.WRONG_DATA, "malformed dynamic authentication data") from exc
        if tag != 0x7C or end != len(data) or len(objects) != 1 or objects[0][0] != 0x80:
            raise ISOError(SW.WRONG_DATA, "expected 7C {80 ephemeral public key}")
        try:
            point = self.curve.decode(objects[0][1])
        except PointError as exc:
            raise ISOError(SW.WRONG_DATA, str(exc)) from exc
        return b"\x7c\x00", self.session_for(point)

    def session_for(self, point: tuple[int, int]) -> SMSession:
        """AES session keys from ``x(SK · PK_IFD)``, SSC zero."""
        shared = self.curve.multiply(self.private_key, point)[0].to_bytes(self.curve.size, "big")
        return SMSession(
            "AES",
            crypto.kdf(shared, crypto.KDF_ENC, "AES"),
            crypto.kdf(shared, crypto.KDF_MAC, "AES"),
        )

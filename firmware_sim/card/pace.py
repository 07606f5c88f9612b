"""Card side of PACE v2, ECDH Generic Mapping (ICAO 9303-11 §4.4, worked example Appendix G.1).

Only ``id-PACE-ECDH-GM-AES-CBC-CMAC-128`` with standard domain parameters 13 (brainpoolP256r1)
is offered, as in the CCCD's EF.CardAccess. Passwords: MRZ (reference 01, key seed
``SHA-1(MRZ information)``) and CAN (reference 02, its ASCII digits), §9.7.3.

Exchange (MSE:Set AT ``00 22 C1 A4``, then General Authenticate ``x0 86 00 00`` with command
chaining CLA 10 on steps 1-3 and CLA 00 on the last, §4.4.4):

1. ``7C 00`` → ``7C 12 80 10 z``, ``z = AES-CBC(K_pi, s)``, K_pi = KDF(password, 3).
2. ``7C 43 81 41 PK_map,IFD`` → ``7C 43 82 41 PK_map,ICC``; ``G' = s·G + SK_map,ICC·PK_map,IFD``.
3. ``7C 43 83 41 PK_eph,IFD`` → ``7C 43 84 41 PK_eph,ICC`` (on G'); shared secret = x of
   ``SK_eph,ICC·PK_eph,IFD``; KSenc = KDF(x, 1), KSmac = KDF(x, 2).
4. ``7C 0A 85 08 T_IFD`` → ``7C 0A 86 08 T_ICC``; tokens are CMAC(KSmac, ``7F49`` public key
   data object of the *other* side's ephemeral key, §4.4.3.4), 8 bytes.

Any error aborts the protocol; the chip then wants a new MSE:Set AT.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from . import crypto, oids
from .apdu import SW, Command
from .ec import BRAINPOOL_P256R1, Curve, PointError
from .errors import ISOError
from .secure_messaging import SMSession
from .tlv import TLVError, parse_all, read_tlv, tlv

PASSWORD_MRZ = 0x01
PASSWORD_CAN = 0x02
STANDARD_PARAMETER_BRAINPOOL_P256R1 = 13

Rng = Callable[[int], bytes]


def random_scalar(curve: Curve, rng: Rng) -> int:
    """A private key in [1, n-1] drawn from ``rng`` (rejection sampling)."""
    while True:
        k = int.from_bytes(rng(curve.size), "big")
        if 1 <= k < curve.n:
            return k


def k_pi(password_ref: int, mrz_information: str, can: str) -> bytes:
    """``K_pi = KDF(f(password), 3)`` for AES-128 (ICAO 9303-11 §9.7.3)."""
    if password_ref == PASSWORD_MRZ:
        secret = crypto.mrz_key_seed(mrz_information)
    elif password_ref == PASSWORD_CAN:
        secret = can.encode("ascii")
    else:
        raise ISOError(SW.REFERENCED_DATA_NOT_FOUND, "password reference not supported")
    return crypto.kdf(secret, crypto.KDF_PI, "AES")


def encrypt_nonce(key: bytes, nonce: bytes) -> bytes:
    """``z = E(K_pi, s)``: AES-CBC with zero IV over the 16-byte nonce, no padding."""
    return crypto.aes_encrypt(key, nonce)


def public_key_data(oid: bytes, point: bytes) -> bytes:
    """Public key data object ``7F49 { 06 OID, 86 point }`` hashed into the tokens."""
    return tlv(0x7F49, tlv(0x06, oid) + tlv(0x86, point))


def auth_token(ks_mac: bytes, oid: bytes, point: bytes) -> bytes:
    """PACE authentication token: AES-CMAC over the public key data object, 8 bytes."""
    return crypto.aes_cmac(ks_mac, public_key_data(oid, point))


@dataclass(frozen=True, slots=True)
class MseSetAt:
    """Parsed MSE:Set AT data (ICAO 9303-11 §4.4.4.1; TR-03110-3 B.11.1)."""

    oid: bytes
    password_ref: int | None
    key_ref: bytes | None

    @classmethod
    def parse(cls, data: bytes) -> MseSetAt:
        """Parse the control reference template; raise 6A80 when malformed."""
        try:
            objects = dict(parse_all(data))
        except TLVError as exc:
            raise ISOError(SW.WRONG_DATA, "MSE data not BER-TLV") from exc
        if 0x80 not in objects:
            raise ISOError(SW.WRONG_DATA, "MSE:Set AT without a protocol OID")
        ref = objects.get(0x83)
        if ref is not None and len(ref) != 1:
            raise ISOError(SW.WRONG_DATA, "password reference must be one byte")
        return cls(objects[0x80], ref[0] if ref else None, objects.get(0x84))


@dataclass(slots=True)
class PaceResponder:
    """The PACE state machine of one chip. ``pk_ops`` counts modelled public-key operations."""

    k_pi: bytes
    rng: Rng
    curve: Curve = BRAINPOOL_P256R1
    oid: bytes = oids.PACE_ECDH_GM_AES_128
    step: int = 1
    pk_ops: int = 0
    _nonce: int = 0
    _generator: tuple[int, int] | None = None
    _sk_eph: int = 0
    _pk_eph_icc: bytes = b""
    _pk_map_icc: bytes = b""
    _pk_eph_ifd: bytes = b""
    _session: SMSession | None = field(default=None)

    def general_authenticate(self, cmd: Command) -> tuple[bytes, SMSession | None]:
        """Process one General Authenticate; return (response data, session when finished)."""
        last = self.step == 4
        if cmd.chained == last:
            raise ISOError(SW.LAST_COMMAND_EXPECTED, "command chaining does not match the step")
        try:
            tag, inner, end = read_tlv(cmd.data)
            if tag != 0x7C or end != len(cmd.data):
                raise ISOError(SW.WRONG_DATA, "expected one 7C dynamic authentication data")
            objects = parse_all(inner)
        except TLVError as exc:
            raise ISOError(SW.WRONG_DATA, "malformed dynamic authentication data") from exc
        handler = {1: self._nonce_step, 2: self._map_step, 3: self._key_step, 4: self._token_step}
        response = handler[self.step](objects)
        self.step += 1
        if last:
            return response, self._session
        return response, None

    def _single(self, objects: list[tuple[int, bytes]], tag: int) -> bytes:
        if len(objects) != 1 or objects[0][0] != tag:
            raise ISOError(SW.WRONG_DATA, f"expected data object {tag:02X}")
        return objects[0][1]

    def _point(self, data: bytes) -> tuple[int, int]:
        try:
            return self.curve.decode(data)
        except PointError as exc:
            raise ISOError(SW.WRONG_DATA, str(exc)) from exc

    def _nonce_step(self, objects: list[tuple[int, bytes]]) -> bytes:
        if objects:
            raise ISOError(SW.WRONG_DATA, "step 1 carries no data objects")
        nonce = self.rng(16)
        self._nonce = int.from_bytes(nonce, "big")
        return tlv(0x7C, tlv(0x80, encrypt_nonce(self.k_pi, nonce)))

    def _map_step(self, objects: list[tuple[int, bytes]]) -> bytes:
        pk_ifd = self._point(self._single(objects, 0x81))
        sk = random_scalar(self.curve, self.rng)
        self._pk_map_icc = self.curve.encode(self.curve.multiply(sk, self.curve.g))
        h = self.curve.multiply(sk, pk_ifd)
        self._generator = self.curve.add(self.curve.multiply(self._nonce, self.curve.g), h)
        self.pk_ops += 3
        return tlv(0x7C, tlv(0x82, self._pk_map_icc))

    def _key_step(self, objects: list[tuple[int, bytes]]) -> bytes:
        raw = self._single(objects, 0x83)
        pk_ifd = self._point(raw)
        assert self._generator is not None
        self._sk_eph = random_scalar(self.curve, self.rng)
        self._pk_eph_icc = self.curve.encode(self.curve.multiply(self._sk_eph, self._generator))
        if raw == self._pk_eph_icc:
            raise ISOError(SW.WRONG_DATA, "terminal ephemeral key equals the chip's")
        shared = self.curve.multiply(self._sk_eph, pk_ifd)[0].to_bytes(self.curve.size, "big")
        self.pk_ops += 2
        self._session = SMSession(
            "AES",
            crypto.kdf(shared, crypto.KDF_ENC, "AES"),
            crypto.kdf(shared, crypto.KDF_MAC, "AES"),
        )
        self._pk_eph_ifd = raw
        return tlv(0x7C, tlv(0x84, self._pk_eph_icc))

    def _token_step(self, objects: list[tuple[int, bytes]]) -> bytes:
        token = self._single(objects, 0x85)
        assert self._session is not None
        expected = auth_token(self._session.ks_mac, self.oid, self._pk_eph_icc)
        if not hmac.compare_digest(token, expected):
            raise ISOError(SW.AUTH_FAILED, "terminal authentication token does not verify")
        t_icc = auth_token(self._session.ks_mac, self.oid, self._pk_eph_ifd)
        return tlv(0x7C, tlv(0x86, t_icc))

"""PACE v2 with ECDH Generic Mapping (ICAO 9303-11 §4.4, §9.2.1, §9.5, worked example
Appendix G.1: id-PACE-ECDH-GM-AES-CBC-CMAC-128, standardized parameter 13 = brainpoolP256r1).

Steps (§4.4.3 / §4.4.4):

0. MSE:Set AT ``00 22 C1 A4`` with ``80`` protocol OID, ``83`` password reference (01 MRZ,
   02 CAN) and ``84`` parameter id when EF.CardAccess offers several PACEInfos.
1. General Authenticate ``10 86 00 00 02 7C 00``: the chip returns ``7C 80 <encrypted nonce>``;
   s = D(K_pi, z) with IV zero. K_pi = KDF(password, 3), password = CAN ASCII or SHA-1(MRZ info).
2. Mapping: ``7C 81 <PK_map_IFD>`` → ``7C 82 <PK_map_ICC>``; H = sk_map·PK_map_ICC,
   G' = s·G + H (§4.4.3.3.1).
3. Key agreement on G': ``7C 83 <PK_IFD>`` → ``7C 84 <PK_ICC>``; K = x(sk·PK_ICC),
   KS_enc = KDF(K, 1), KS_mac = KDF(K, 2). PK_ICC must differ from PK_IFD.
4. Tokens (§4.4.3.4): T_IFD = MAC(KS_mac, 7F49 {06 OID, 86 PK_ICC}) in ``00 86 00 00``
   ``7C 85 T_IFD``; the chip answers ``7C 86 T_ICC`` = MAC(KS_mac, 7F49 {06 OID, 86 PK_IFD}).

Steps 1-3 use command chaining (CLA ``10``); the last step CLA ``00``. Secure messaging then
starts with SSC = 0.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from edge_agent.icao import crypto, der, ec
from edge_agent.icao.apdu import ApduError, CommandApdu, ResponseApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.ec import Curve, EcError, Point, decode_point, encode_point, scalar_mult
from edge_agent.icao.ec import mul_add as _mul_add
from edge_agent.icao.errors import IcaoError, LdsError
from edge_agent.icao.secure_messaging import SecureMessaging
from edge_agent.icao.security_infos import PaceInfo, pace_infos, parse_card_access
from edge_agent.icao.tlv import TlvError, encode_tlv, iter_tlvs, parse_single

Rng = Callable[[int], bytes]
PasswordKind = Literal["can", "mrz"]
PASSWORD_REF = {"mrz": 0x01, "can": 0x02}


class PaceError(IcaoError):
    """PACE failed; ``reason`` says at which step and why."""


def derive_k_pi(password: bytes | str, kind: PasswordKind, cipher: CipherKind) -> bytes:
    """K_pi = KDF(f(π), 3) (§9.7.3): f = CAN ASCII bytes, or SHA-1 of the MRZ information."""
    raw = password.encode("ascii") if isinstance(password, str) else bytes(password)
    if kind == "mrz":
        secret = hashlib.sha1(raw).digest()  # noqa: S324
    elif kind == "can":
        secret = raw
    else:
        raise PaceError(f"unknown password kind {kind!r}")
    return crypto.kdf(secret, crypto.KDF_PI, cipher)


def choose_pace_info(infos: list[PaceInfo]) -> PaceInfo:
    """The first PACEInfo this reader can run (ECDH-GM, known standard curve, known cipher)."""
    for info in infos:
        if info.is_ecdh_gm and info.curve is not None and info.cipher is not None:
            return info
    if not infos:
        raise PaceError("EF.CardAccess holds no PACEInfo")
    raise PaceError("no supported PACEInfo (need ECDH Generic Mapping on a standard curve): "
                    + ", ".join(f"{i.protocol}/{i.parameter_id}" for i in infos))


def mse_set_at(info: PaceInfo, kind: PasswordKind, *,
               with_parameter_id: bool = False) -> CommandApdu:
    """MSE:Set AT for PACE (§4.4.4.1): ``00 22 C1 A4 [80 OID] [83 ref] [84 paramId]``."""
    data = encode_tlv(0x80, der.encode_oid(info.protocol))
    data += bytes((0x83, 0x01, PASSWORD_REF[kind]))
    if with_parameter_id and info.parameter_id is not None:
        data += bytes((0x84, 0x01, info.parameter_id))
    return CommandApdu(0x00, 0x22, 0xC1, 0xA4, data)


def general_authenticate(payload: bytes, *, last: bool) -> CommandApdu:
    """General Authenticate ``x0 86 00 00 7C{payload} 00`` (CLA 10 = more to come)."""
    return CommandApdu(0x00 if last else 0x10, 0x86, 0x00, 0x00, encode_tlv(0x7C, payload), le=256)


def dynamic_authentication_data(data: bytes, expected_tag: int, step: str) -> bytes:
    """The value of ``expected_tag`` inside the ``7C`` response template."""
    try:
        outer = parse_single(data, expected_tag=0x7C)
        for element in iter_tlvs(outer.value):
            if element.tag == expected_tag:
                return element.value
    except TlvError as exc:
        raise PaceError(f"{step}: malformed response: {exc}") from exc
    raise PaceError(f"{step}: response lacks tag {expected_tag:02X}")


def public_key_data_object(oid: str, point_encoding: bytes) -> bytes:
    """``7F49 L 06 <OID> 86 <point>`` (the authentication token input, §4.4.3.4 / G.1)."""
    return encode_tlv(0x7F49, der.oid_tlv(oid) + encode_tlv(0x86, point_encoding))


def _mac(cipher: CipherKind, key: bytes, data: bytes) -> bytes:
    if cipher is CipherKind.DES3:
        return crypto.retail_mac(key, crypto.pad(data, 8))
    return crypto.aes_cmac(key, data)


def _random_scalar(curve: Curve, rng: Rng) -> int:
    try:
        return ec.random_scalar(curve, rng)
    except ec.EcError as exc:
        raise PaceError(str(exc)) from None


@dataclass(slots=True)
class PaceTerminal:
    """Sans-IO state of one PACE-ECDH-GM run on the terminal side.

    Call in order: :meth:`mse_set_at`, :meth:`command_1`, :meth:`process_nonce` (returns the
    mapping command), :meth:`process_mapping` (returns the key-agreement command),
    :meth:`process_key_agreement` (returns the token command), :meth:`process_token` (returns
    the secure-messaging session). Intermediate values are kept for inspection.
    """

    info: PaceInfo
    password_kind: PasswordKind
    k_pi: bytes
    rng: Rng
    with_parameter_id: bool = False
    nonce: bytes = b""
    sk_map: int = 0
    pk_map_ifd: Point | None = None
    h: Point | None = None
    mapped_generator: Point | None = None
    sk_eph: int = 0
    pk_ifd: bytes = b""
    pk_icc: bytes = b""
    shared_secret: bytes = b""
    ks_enc: bytes = b""
    ks_mac: bytes = b""
    token_ifd: bytes = b""

    @classmethod
    def create(cls, info: PaceInfo, password: bytes | str, kind: PasswordKind,
               rng: Rng = os.urandom, *, with_parameter_id: bool = False) -> PaceTerminal:
        """Derive K_pi for ``info``'s cipher."""
        if not info.is_ecdh_gm:
            raise PaceError(f"PACE protocol {info.protocol} is not ECDH Generic Mapping")
        cipher = info.cipher
        if cipher is None or info.curve is None:
            raise PaceError(f"unsupported PACE cipher or parameters in {info}")
        return cls(info, kind, derive_k_pi(password, kind, cipher), rng, with_parameter_id)

    @property
    def curve(self) -> Curve:
        """The domain parameters (standard curve of the PACEInfo)."""
        curve = self.info.curve
        assert curve is not None
        return curve

    @property
    def cipher(self) -> CipherKind:
        """The SM cipher of the protocol."""
        cipher = self.info.cipher
        assert cipher is not None
        return cipher

    def mse_set_at(self) -> CommandApdu:
        """Step 0."""
        return mse_set_at(self.info, self.password_kind, with_parameter_id=self.with_parameter_id)

    def command_1(self) -> CommandApdu:
        """Step 1: ask for the encrypted nonce."""
        return general_authenticate(b"", last=False)

    def process_nonce(self, data: bytes) -> CommandApdu:
        """Decrypt the nonce, draw sk_map, return the mapping command (step 2)."""
        z = dynamic_authentication_data(data, 0x80, "encrypted nonce")
        block = self.cipher.block_size
        if not z or len(z) % block:
            raise PaceError(f"encrypted nonce of {len(z)} bytes is not whole blocks")
        if self.cipher is CipherKind.DES3:
            self.nonce = crypto.des3_cbc_decrypt(self.k_pi, z)
        else:
            self.nonce = crypto.aes_cbc_decrypt(self.k_pi, z)
        curve = self.curve
        self.sk_map = _random_scalar(curve, self.rng)
        self.pk_map_ifd = scalar_mult(curve, self.sk_map)
        assert self.pk_map_ifd is not None
        return general_authenticate(encode_tlv(0x81, encode_point(curve, self.pk_map_ifd)),
                                    last=False)

    def _peer_point(self, encoded: bytes, step: str) -> Point:
        try:
            return decode_point(self.curve, encoded)
        except EcError as exc:
            raise PaceError(f"{step}: chip's public key rejected: {exc.reason}") from exc

    def process_mapping(self, data: bytes) -> CommandApdu:
        """Generic Mapping: H = sk_map·PK_map_ICC, G' = s·G + H; return the next command."""
        curve = self.curve
        encoded = dynamic_authentication_data(data, 0x82, "mapping")
        pk_map_icc = self._peer_point(encoded, "mapping")
        if pk_map_icc == self.pk_map_ifd:
            raise PaceError("mapping: chip returned the terminal's own mapping key")
        self.h = scalar_mult(curve, self.sk_map, pk_map_icc)
        if self.h is None:
            raise PaceError("mapping: H is the point at infinity")
        s = int.from_bytes(self.nonce, "big")
        self.mapped_generator = _mul_add(curve, s, 1, self.h)
        if self.mapped_generator is None:
            raise PaceError("mapping: G' is the point at infinity")
        self.sk_eph = _random_scalar(curve, self.rng)
        pk = scalar_mult(curve, self.sk_eph, self.mapped_generator)
        assert pk is not None
        self.pk_ifd = encode_point(curve, pk)
        return general_authenticate(encode_tlv(0x83, self.pk_ifd), last=False)

    def process_key_agreement(self, data: bytes) -> CommandApdu:
        """Shared secret and session keys; return the token command (step 4)."""
        curve = self.curve
        self.pk_icc = dynamic_authentication_data(data, 0x84, "key agreement")
        if self.pk_icc == self.pk_ifd:
            raise PaceError("key agreement: PK_ICC equals PK_IFD")
        peer = self._peer_point(self.pk_icc, "key agreement")
        shared = scalar_mult(curve, self.sk_eph, peer)
        if shared is None:
            raise PaceError("key agreement: shared point is the point at infinity")
        self.shared_secret = shared.x.to_bytes(curve.coordinate_size, "big")
        self.ks_enc = crypto.kdf(self.shared_secret, crypto.KDF_ENC, self.cipher)
        self.ks_mac = crypto.kdf(self.shared_secret, crypto.KDF_MAC, self.cipher)
        self.token_ifd = _mac(self.cipher, self.ks_mac,
                              public_key_data_object(self.info.protocol, self.pk_icc))
        return general_authenticate(encode_tlv(0x85, self.token_ifd), last=True)

    def expected_chip_token(self) -> bytes:
        """T_ICC = MAC(KS_mac, 7F49 {OID, 86 PK_IFD})."""
        return _mac(self.cipher, self.ks_mac, public_key_data_object(self.info.protocol,
                                                                     self.pk_ifd))

    def process_token(self, data: bytes) -> SecureMessaging:
        """Verify the chip's token and open secure messaging (SSC = 0)."""
        token = dynamic_authentication_data(data, 0x86, "mutual authentication")
        if not hmac.compare_digest(token, self.expected_chip_token()):
            raise PaceError("mutual authentication: chip's token T_ICC does not verify")
        return SecureMessaging(self.cipher, self.ks_enc, self.ks_mac, 0)


def _send(channel: CardChannel, command: CommandApdu, step: str) -> bytes:
    try:
        return ResponseApdu.from_bytes(channel.transmit(command.to_bytes())).check(step)
    except ApduError as exc:
        raise PaceError(f"{step}: {exc.reason}") from exc


def open_pace(channel: CardChannel, password: bytes | str, password_kind: PasswordKind,
              card_access: bytes, rng: Rng = os.urandom) -> SecureMessaging:
    """Run PACE over ``channel`` with the PACEInfo chosen from EF.CardAccess.

    Raises :class:`PaceError` (protocol failure, wrong password detected by the token check,
    unsupported parameters) or :class:`~edge_agent.icao.apdu.CardStatusError` (the chip
    refused a step; 63Cx on the last step usually means a wrong password).
    """
    try:
        infos = pace_infos(parse_card_access(card_access))
    except LdsError as exc:
        raise PaceError(f"EF.CardAccess: {exc.reason}") from exc
    info = choose_pace_info(infos)
    terminal = PaceTerminal.create(info, password, password_kind, rng,
                                   with_parameter_id=len(infos) > 1)
    _send(channel, terminal.mse_set_at(), "MSE:Set AT")
    answer = _send(channel, terminal.command_1(), "General Authenticate (nonce)")
    answer = _send(channel, terminal.process_nonce(answer), "General Authenticate (mapping)")
    answer = _send(channel, terminal.process_mapping(answer),
                   "General Authenticate (key agreement)")
    answer = _send(channel, terminal.process_key_agreement(answer),
                   "General Authenticate (mutual authentication)")
    return terminal.process_token(answer)

"""Basic Access Control (ICAO 9303-11 §4.3, key derivation §9.7.2, worked example Appendix D).

Sans-IO core: :func:`derive_bac_keys`, :class:`BacTerminal` (builds EXTERNAL/MUTUAL
AUTHENTICATE from RND.ICC and injectable randomness, verifies the chip's answer and derives the
session), plus the driver :func:`open_bac` which talks to a :class:`CardChannel`.

MRZ information = document number (padded with ``<`` to at least 9) + check digit, date of birth
YYMMDD + check digit, date of expiry YYMMDD + check digit (ICAO 9303-3 §4.9 check digits,
weights 7-3-1).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.icao import crypto
from edge_agent.icao.apdu import ApduError, CommandApdu, ResponseApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.check_digit import check_digit as _check_digit
from edge_agent.icao.check_digit import mrz_information as _mrz_information
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.secure_messaging import SecureMessaging

Rng = Callable[[int], bytes]

GET_CHALLENGE = CommandApdu(0x00, 0x84, 0x00, 0x00, le=8)


class BacError(IcaoError):
    """BAC failed; ``reason`` says at which step and why."""


def check_digit(text: str) -> str:
    """ICAO 9303-3 §4.9 check digit (upper-cased); :class:`BacError` for a bad character."""
    try:
        return _check_digit(text.upper())
    except ValueError as exc:
        raise BacError(str(exc)) from None


def mrz_information(document_number: str, date_of_birth: str, date_of_expiry: str) -> str:
    """Build the BAC/PACE MRZ information from the three fields, computing check digits."""
    doc = document_number.strip().upper()
    if not doc:
        raise BacError("document number is empty")
    doc = doc.ljust(9, "<")
    for name, value in (("date of birth", date_of_birth), ("date of expiry", date_of_expiry)):
        if len(value) != 6 or not value.isascii() or not value.isdigit():
            raise BacError(f"{name} must be 6 digits YYMMDD, got {value!r}")
    check_digit(doc)  # rejects characters outside the MRZ alphabet with a BacError
    return _mrz_information(doc, date_of_birth, date_of_expiry)


@dataclass(frozen=True, slots=True)
class MrzKey:
    """The MRZ information used as the BAC (and PACE-MRZ) password."""

    information: str

    @classmethod
    def from_fields(cls, document_number: str, date_of_birth: str, date_of_expiry: str) -> MrzKey:
        """Compute the check digits from the three MRZ fields."""
        return cls(mrz_information(document_number, date_of_birth, date_of_expiry))

    @classmethod
    def parse(cls, value: str | MrzKey) -> MrzKey:
        """Accept an :class:`MrzKey` or the concatenated string (check digits included)."""
        if isinstance(value, MrzKey):
            return value
        text = value.strip().upper()
        if len(text) < 24 or not text.isascii():
            raise BacError(f"MRZ information of {len(text)} characters, expected at least 24")
        return cls(text)


@dataclass(frozen=True, slots=True)
class BacKeys:
    """Document basic access keys (§9.7.2)."""

    k_seed: bytes
    k_enc: bytes
    k_mac: bytes


def derive_bac_keys(mrz_key: str | MrzKey) -> BacKeys:
    """K_seed = SHA-1(MRZ information)[:16]; K_enc, K_mac by the KDF (3DES, counters 1, 2)."""
    info = MrzKey.parse(mrz_key).information
    seed = crypto.bac_key_seed(info)
    return BacKeys(seed, crypto.kdf(seed, crypto.KDF_ENC, CipherKind.DES3),
                   crypto.kdf(seed, crypto.KDF_MAC, CipherKind.DES3))


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


@dataclass(frozen=True, slots=True)
class BacTerminal:
    """One BAC run after GET CHALLENGE: holds RND.ICC, RND.IFD and K.IFD (§4.3.3)."""

    keys: BacKeys
    rnd_icc: bytes
    rnd_ifd: bytes
    k_ifd: bytes

    @classmethod
    def start(cls, keys: BacKeys, rnd_icc: bytes, rng: Rng = os.urandom) -> BacTerminal:
        """Draw RND.IFD (8 bytes) then K.IFD (16 bytes) from ``rng``."""
        if len(rnd_icc) != 8:
            raise BacError(f"GET CHALLENGE returned {len(rnd_icc)} bytes, expected 8")
        rnd_ifd = rng(8)
        k_ifd = rng(16)
        if len(rnd_ifd) != 8 or len(k_ifd) != 16:
            raise BacError("random source returned the wrong number of bytes")
        return cls(keys, bytes(rnd_icc), rnd_ifd, k_ifd)

    @property
    def s(self) -> bytes:
        """S = RND.IFD || RND.ICC || K.IFD."""
        return self.rnd_ifd + self.rnd_icc + self.k_ifd

    def command_data(self) -> bytes:
        """E_IFD || M_IFD: E_IFD = 3DES(K_enc, S), M_IFD = retail MAC(K_mac, pad(E_IFD))."""
        e_ifd = crypto.des3_cbc_encrypt(self.keys.k_enc, self.s)
        return e_ifd + crypto.retail_mac(self.keys.k_mac, crypto.pad(e_ifd, 8))

    def command(self) -> CommandApdu:
        """EXTERNAL AUTHENTICATE (MUTUAL AUTHENTICATE) ``00 82 00 00 28 ... 28``."""
        return CommandApdu(0x00, 0x82, 0x00, 0x00, self.command_data(), le=0x28)

    def finish(self, response_data: bytes) -> SecureMessaging:
        """Verify E_ICC || M_ICC (MAC first, then both nonces); derive the session (§4.3.3.3)."""
        if len(response_data) != 40:
            raise BacError(f"MUTUAL AUTHENTICATE answer of {len(response_data)} bytes, expected 40")
        e_icc, m_icc = response_data[:32], response_data[32:]
        expected = crypto.retail_mac(self.keys.k_mac, crypto.pad(e_icc, 8))
        if not hmac.compare_digest(expected, m_icc):
            raise BacError("chip's MAC M_ICC does not verify")
        r = crypto.des3_cbc_decrypt(self.keys.k_enc, e_icc)
        if not hmac.compare_digest(r[:8], self.rnd_icc):
            raise BacError("RND.ICC in the chip's answer does not match the challenge")
        if not hmac.compare_digest(r[8:16], self.rnd_ifd):
            raise BacError("RND.IFD in the chip's answer does not match ours")
        k_icc = r[16:32]
        return session_from_key_material(self.k_ifd, k_icc, self.rnd_icc, self.rnd_ifd)


def session_from_key_material(k_ifd: bytes, k_icc: bytes, rnd_icc: bytes,
                              rnd_ifd: bytes) -> SecureMessaging:
    """Session keys from K.IFD xor K.ICC; SSC = RND.ICC[-4:] || RND.IFD[-4:] (§9.7.4)."""
    seed = _xor(k_ifd, k_icc)
    return SecureMessaging(
        CipherKind.DES3,
        crypto.kdf(seed, crypto.KDF_ENC, CipherKind.DES3),
        crypto.kdf(seed, crypto.KDF_MAC, CipherKind.DES3),
        int.from_bytes(rnd_icc[4:] + rnd_ifd[4:], "big"),
    )


def open_bac(channel: CardChannel, mrz_key: str | MrzKey, rng: Rng = os.urandom) -> SecureMessaging:
    """Run BAC over ``channel``: GET CHALLENGE, MUTUAL AUTHENTICATE, verify; return the session.

    Raises :class:`BacError` (wrong key, bad answer) or
    :class:`~edge_agent.icao.apdu.CardStatusError` (the chip refused a command; 6300 usually
    means a wrong MRZ key).
    """
    keys = derive_bac_keys(mrz_key)
    try:
        rnd_icc = ResponseApdu.from_bytes(channel.transmit(GET_CHALLENGE.to_bytes())).check(
            "GET CHALLENGE")
        terminal = BacTerminal.start(keys, rnd_icc, rng)
        answer = ResponseApdu.from_bytes(channel.transmit(terminal.command().to_bytes())).check(
            "MUTUAL AUTHENTICATE")
    except ApduError as exc:
        raise BacError(f"malformed response: {exc.reason}") from exc
    return terminal.finish(answer)

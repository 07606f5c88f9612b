"""Card side of eMRTD secure messaging (ICAO 9303-11 §9.8; ISO 7816-4 §10).

Command: ``CLA|0C INS P1 P2 Lc [DO87|DO85] [DO97] DO8E 00``. The chip increments the SSC, checks
DO8E over ``pad(SSC || pad(header) || DO87/DO85 || DO97)`` *before* acting, then decrypts the
data. Response: ``[DO87|DO85] DO99 DO8E SW1SW2`` with DO8E over ``pad(SSC || DO87 || DO99)`` after a
second SSC increment.

* 3DES (after BAC, §9.8.6.1): 8-byte SSC, 3DES-CBC with a zero IV, retail MAC.
* AES (after PACE or Chip Authentication, §9.8.6.2): 16-byte SSC starting at zero, AES-CBC with
  ``IV = AES-ECB(KSenc, SSC)``, AES-CMAC truncated to 8 bytes; padding to 16-byte blocks.

For odd INS (READ BINARY B1) the command data travel in DO85, and so do response data
(ISO 7816-4 §10.2: DO85 holds BER-TLV data that are not SM-encoded; DO87 otherwise).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from . import crypto
from .apdu import SW, Command
from .errors import SMError
from .tlv import TLVError, parse_all, tlv


@dataclass(slots=True)
class SMSession:
    """Session keys and send-sequence counter of one SM session (card side)."""

    algorithm: str  # "3DES" or "AES"
    ks_enc: bytes
    ks_mac: bytes
    ssc: int = 0
    corrupt_response_mac: bool = field(default=False)

    @property
    def block(self) -> int:
        """Cipher block size: 8 for 3DES, 16 for AES."""
        return 8 if self.algorithm == "3DES" else 16

    def _ssc_bytes(self) -> bytes:
        return self.ssc.to_bytes(self.block, "big")

    def _mac(self, data: bytes) -> bytes:
        padded = crypto.pad(data, self.block)
        if self.algorithm == "3DES":
            return crypto.retail_mac(self.ks_mac, padded)
        return crypto.aes_cmac(self.ks_mac, padded)

    def _iv(self) -> bytes:
        if self.algorithm == "3DES":
            return crypto.ZERO8
        return crypto.aes_ecb_block(self.ks_enc, self._ssc_bytes())

    def _encrypt(self, data: bytes) -> bytes:
        padded = crypto.pad(data, self.block)
        if self.algorithm == "3DES":
            return crypto.des3_encrypt(self.ks_enc, padded, self._iv())
        return crypto.aes_encrypt(self.ks_enc, padded, self._iv())

    def _decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % self.block:
            raise SMError(SW.SM_INCORRECT_DO, "cryptogram is not a whole number of blocks")
        if self.algorithm == "3DES":
            plain = crypto.des3_decrypt(self.ks_enc, data, self._iv())
        else:
            plain = crypto.aes_decrypt(self.ks_enc, data, self._iv())
        try:
            return crypto.unpad(plain)
        except crypto.PaddingError as exc:
            raise SMError(SW.SM_INCORRECT_DO, "bad padding in cryptogram") from exc

    def unwrap(self, cmd: Command) -> Command:
        """Verify and decrypt a protected command; raise :class:`SMError` (6987/6988)."""
        try:
            objects = parse_all(cmd.data)
        except TLVError as exc:
            raise SMError(SW.SM_INCORRECT_DO, "SM data objects are not BER-TLV") from exc
        order = [tag for tag, _ in objects]
        if not order or order[-1] != 0x8E:
            raise SMError(SW.SM_MISSING_DO, "DO8E missing")
        allowed = {0x85, 0x87, 0x97}
        if any(t not in allowed for t in order[:-1]) or len(set(order)) != len(order):
            raise SMError(SW.SM_INCORRECT_DO, "unexpected SM data object")
        if 0x85 in order and 0x87 in order:
            raise SMError(SW.SM_INCORRECT_DO, "both DO85 and DO87")
        values = dict(objects)
        mac_given = values[0x8E]
        if len(mac_given) != 8:
            raise SMError(SW.SM_INCORRECT_DO, "DO8E must hold 8 bytes")
        # Every DO before DO8E is covered by the MAC, in the order received.
        covered = b"".join(tlv(tag, value) for tag, value in objects[:-1])
        self.ssc += 1
        header = crypto.pad(bytes([cmd.cla, cmd.ins, cmd.p1, cmd.p2]), self.block)
        expected = self._mac(self._ssc_bytes() + header + covered)
        if not hmac.compare_digest(expected, mac_given):
            raise SMError(SW.SM_INCORRECT_DO, "command MAC does not verify")
        data = b""
        if 0x87 in values:
            do87 = values[0x87]
            if cmd.ins & 1 or not do87 or do87[0] != 0x01:
                raise SMError(SW.SM_INCORRECT_DO, "DO87 without padding indicator 01 or odd INS")
            data = self._decrypt(do87[1:])
        elif 0x85 in values:
            if not cmd.ins & 1:
                raise SMError(SW.SM_INCORRECT_DO, "DO85 with even INS")
            data = self._decrypt(values[0x85])
        ne = 0
        if 0x97 in values:
            le = values[0x97]
            if len(le) == 1:
                ne = le[0] or 256
            elif len(le) == 2:
                ne = int.from_bytes(le, "big") or 65536
            elif len(le) != 0:
                raise SMError(SW.SM_INCORRECT_DO, "DO97 longer than 2 bytes")
        return Command(cmd.cla & ~0x0C & 0xFF, cmd.ins, cmd.p1, cmd.p2, data, ne, len(data) > 255)

    def wrap(self, ins: int, data: bytes, sw: int) -> bytes:
        """Protect a response (DO87/DO85, DO99, DO8E) and append SW1 SW2."""
        self.ssc += 1
        body = b""
        if data:
            crypt = self._encrypt(data)
            body = tlv(0x85, crypt) if ins & 1 else tlv(0x87, b"\x01" + crypt)
        body += tlv(0x99, sw.to_bytes(2, "big"))
        mac = self._mac(self._ssc_bytes() + body)
        if self.corrupt_response_mac:
            mac = bytes([mac[0] ^ 0x01]) + mac[1:]
        return body + tlv(0x8E, mac) + sw.to_bytes(2, "big")

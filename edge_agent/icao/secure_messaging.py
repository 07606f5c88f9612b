"""Secure messaging (ICAO 9303-11 §9.8; ISO/IEC 7816-4 §10) as a wrapper around a card channel.

Command protection (§9.8.4): ``CLA | 0x0C``; the data field encrypted into DO'87' (``01``
padding-content indicator, even INS) or DO'85' (odd INS such as READ BINARY ``B1``); Le into
DO'97'; DO'8E' = MAC over ``SSC || pad(header) || DO'85/87' || DO'97'`` (padded). The protected
APDU always carries Le ``00`` (``0000`` when extended length is needed).

Response (§9.8.5): ``[DO'87'] DO'99' DO'8E' SW``. The MAC over ``SSC || DO'87' || DO'99'`` is
verified before anything is decrypted or used.

The send sequence counter is incremented before each command and before each response. 3DES
(§9.8.6) uses a zero IV and the retail MAC with an 8-byte SSC; AES (§9.8.7) uses a 16-byte SSC,
IV = AES-ECB(KSenc, SSC) and CMAC truncated to 8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.icao import crypto
from edge_agent.icao.apdu import ApduError, CommandApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.crypto import CipherKind, PaddingError
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.tlv import TlvError, encode_length, read_length, read_tag

SW_SUCCESS_BYTES = b"\x90\x00"


class SecureMessagingError(IcaoError):
    """A secure-messaging response failed verification or could not be unwrapped."""


@dataclass(slots=True)
class SecureMessaging:
    """The state of one SM session: cipher, session keys and send sequence counter (SSC).

    ``ssc`` is an integer; its byte width is 8 for 3DES and 16 for AES (``ssc_bytes``).
    """

    cipher: CipherKind
    ks_enc: bytes
    ks_mac: bytes
    ssc: int = 0

    @property
    def block_size(self) -> int:
        """Cipher block size: 8 (3DES) or 16 (AES)."""
        return self.cipher.block_size

    @property
    def ssc_width(self) -> int:
        """Bytes of SSC in the MAC input: 8 for 3DES, 16 for AES."""
        return self.cipher.block_size

    def ssc_bytes(self) -> bytes:
        """The SSC as a big-endian byte string of :attr:`ssc_width`."""
        return self.ssc.to_bytes(self.ssc_width, "big")

    def _step(self) -> bytes:
        self.ssc = (self.ssc + 1) % (1 << (8 * self.ssc_width))
        return self.ssc_bytes()

    # --- primitives ----------------------------------------------------------------------

    def mac(self, ssc: bytes, data: bytes) -> bytes:
        """The 8-byte MAC of ``pad(ssc || data)`` with KSmac."""
        padded = crypto.pad(ssc + data, self.block_size)
        if self.cipher is CipherKind.DES3:
            return crypto.retail_mac(self.ks_mac, padded)
        return crypto.aes_cmac(self.ks_mac, padded)

    def _iv(self, ssc: bytes) -> bytes:
        if self.cipher is CipherKind.DES3:
            return bytes(8)
        return crypto.aes_ecb_block(self.ks_enc, ssc)

    def encrypt(self, ssc: bytes, plain: bytes) -> bytes:
        """Pad and encrypt ``plain`` with KSenc (IV per cipher)."""
        padded = crypto.pad(plain, self.block_size)
        if self.cipher is CipherKind.DES3:
            return crypto.des3_cbc_encrypt(self.ks_enc, padded)
        return crypto.aes_cbc_encrypt(self.ks_enc, padded, self._iv(ssc))

    def decrypt(self, ssc: bytes, cryptogram: bytes) -> bytes:
        """Decrypt and unpad; :class:`SecureMessagingError` on bad length or padding."""
        if not cryptogram or len(cryptogram) % self.block_size:
            raise SecureMessagingError(
                f"cryptogram of {len(cryptogram)} bytes is not a whole number of blocks")
        if self.cipher is CipherKind.DES3:
            padded = crypto.des3_cbc_decrypt(self.ks_enc, cryptogram)
        else:
            padded = crypto.aes_cbc_decrypt(self.ks_enc, cryptogram, self._iv(ssc))
        try:
            return crypto.unpad(padded, self.block_size)
        except PaddingError as exc:
            raise SecureMessagingError(f"bad padding in response data: {exc.reason}") from exc

    # --- commands ------------------------------------------------------------------------

    def wrap(self, apdu: bytes | CommandApdu) -> bytes:
        """Protect one command APDU (increments the SSC first)."""
        cmd = apdu if isinstance(apdu, CommandApdu) else CommandApdu.parse(apdu)
        if cmd.cla & 0x0C:
            raise ApduError(f"CLA {cmd.cla:02X} already indicates secure messaging")
        ssc = self._step()
        cla = cmd.cla | 0x0C
        header = bytes((cla, cmd.ins, cmd.p1, cmd.p2))
        body = bytearray()
        if cmd.data:
            cryptogram = self.encrypt(ssc, cmd.data)
            if cmd.ins & 1:
                body += b"\x85" + encode_length(len(cryptogram)) + cryptogram
            else:
                body += b"\x87" + encode_length(len(cryptogram) + 1) + b"\x01" + cryptogram
        extended = cmd.is_extended
        if cmd.le is not None:
            le_value = (cmd.le % 65536).to_bytes(2, "big") if extended else bytes(
                (cmd.le % 256,))
            body += b"\x97" + bytes((len(le_value),)) + le_value
        mac_input = crypto.pad(header, self.block_size) + body
        body += b"\x8e\x08" + self.mac(ssc, mac_input)
        if len(body) > 255:
            extended = True
        if extended:
            return header + b"\x00" + len(body).to_bytes(2, "big") + body + b"\x00\x00"
        return header + bytes((len(body),)) + body + b"\x00"

    # --- responses -----------------------------------------------------------------------

    def unwrap(self, response: bytes) -> bytes:
        """Verify and unprotect one response APDU; returns ``data || SW1 SW2``.

        Increments the SSC first. A bare two-byte error status (the chip aborting SM, e.g.
        6987/6988, or a plain 6A82) is returned as is: it carries no data and cannot be a
        success. Everything else must hold DO'99' and a valid DO'8E'; the MAC is checked before
        DO'87' is decrypted.
        """
        ssc = self._step()
        if len(response) < 2:
            raise SecureMessagingError(f"response of {len(response)} bytes has no status word")
        body = response[:-2]
        if not body:
            if response == SW_SUCCESS_BYTES:
                raise SecureMessagingError("unprotected 9000: DO'99' and DO'8E' missing")
            return bytes(response)
        do87: bytes | None = None
        do85: bytes | None = None
        do99: bytes | None = None
        mac: bytes | None = None
        mac_end = 0
        pos = 0
        try:
            while pos < len(body):
                tag, vpos = read_tag(body, pos)
                length, vpos = read_length(body, vpos)
                end = vpos + length
                if end > len(body):
                    raise SecureMessagingError(f"DO'{tag:X}' truncated")
                if mac is not None:
                    raise SecureMessagingError(f"DO'{tag:X}' after DO'8E'")
                value = body[vpos:end]
                if tag == 0x87:
                    if do87 is not None or do85 is not None:
                        raise SecureMessagingError("more than one encrypted data object")
                    do87 = value
                elif tag == 0x85:
                    if do87 is not None or do85 is not None:
                        raise SecureMessagingError("more than one encrypted data object")
                    do85 = value
                elif tag == 0x99:
                    if do99 is not None:
                        raise SecureMessagingError("more than one DO'99'")
                    do99 = value
                elif tag == 0x8E:
                    mac = value
                    mac_end = pos
                else:
                    raise SecureMessagingError(f"unexpected data object {tag:X} in response")
                pos = end
        except TlvError as exc:
            raise SecureMessagingError(f"malformed response data objects: {exc}") from exc
        if mac is None:
            raise SecureMessagingError("DO'8E' (MAC) missing")
        if do99 is None:
            raise SecureMessagingError("DO'99' (processing status) missing")
        if len(mac) != 8:
            raise SecureMessagingError(f"DO'8E' of {len(mac)} bytes, expected 8")
        if len(do99) != 2:
            raise SecureMessagingError(f"DO'99' of {len(do99)} bytes, expected 2")
        if self.mac(ssc, body[:mac_end]) != mac:
            raise SecureMessagingError("response MAC does not verify")
        data = b""
        if do87 is not None:
            if not do87 or do87[0] != 0x01:
                raise SecureMessagingError("DO'87' padding-content indicator is not 01")
            data = self.decrypt(ssc, do87[1:])
        elif do85 is not None:
            data = self.decrypt(ssc, do85)
        return data + do99


class SecureChannel:
    """A :class:`~edge_agent.icao.channel.CardChannel` that protects every APDU it carries.

    ``SecureChannel(inner, sm).transmit(plain_apdu)`` wraps the command, sends it through
    ``inner`` and returns the verified, decrypted ``data || SW``.
    """

    def __init__(self, inner: CardChannel, sm: SecureMessaging) -> None:
        self.inner = inner
        self.sm = sm

    def transmit(self, apdu: bytes) -> bytes:
        """Wrap, send and unwrap one APDU."""
        protected = self.sm.wrap(apdu)
        return self.sm.unwrap(self.inner.transmit(protected))

"""Command and response APDUs and status words (ISO/IEC 7816-4 §5.1-§5.6).

A command APDU is ``CLA INS P1 P2 [Lc data] [Le]`` in one of the four cases of ISO 7816-4 §5.1,
short (Lc and Le one byte each, Le ``00`` = 256) or extended (Lc ``00 hi lo``, Le ``hi lo`` after an
Lc, ``00 hi lo`` without one, ``0000`` = 65536). A response APDU is ``data || SW1 SW2`` (§5.6).

``le`` is an integer number of expected bytes, ``None`` when absent; 256 (short) and 65536
(extended) are the "as many as available" values encoded as zero bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.icao.channel import CardChannel

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_LE = 65536


class ApduError(ValueError):
    """A command APDU that cannot be encoded or parsed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """A command APDU (ISO 7816-4 §5.1).

    ``extended`` forces extended-length encoding; it is also chosen automatically when the data
    is longer than 255 bytes or ``le`` exceeds 256.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduError(f"{name} {value} is not a byte")
        if len(self.data) > EXTENDED_MAX_LC:
            raise ApduError(f"command data of {len(self.data)} bytes exceeds 65535")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX_LE:
            raise ApduError(f"Le {self.le} outside 1..65536")

    @property
    def is_extended(self) -> bool:
        """Whether :meth:`to_bytes` uses extended length fields."""
        return (self.extended or len(self.data) > SHORT_MAX_LC
                or (self.le is not None and self.le > SHORT_MAX_LE))

    def to_bytes(self) -> bytes:
        """Encode per ISO 7816-4 §5.1 (cases 1, 2S/E, 3S/E, 4S/E)."""
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        ext = self.is_extended
        if self.data:
            if ext:
                out += b"\x00" + len(self.data).to_bytes(2, "big")
            else:
                out.append(len(self.data))
            out += self.data
        if self.le is not None:
            if ext:
                le_bytes = (self.le % EXTENDED_MAX_LE).to_bytes(2, "big")
                out += le_bytes if self.data else b"\x00" + le_bytes
            else:
                out.append(self.le % SHORT_MAX_LE)
        return bytes(out)

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Decode any of the seven encodings; :class:`ApduError` on inconsistent lengths."""
        if len(raw) < 4:
            raise ApduError(f"command APDU of {len(raw)} bytes is shorter than its header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        n = len(body)
        if n == 0:  # case 1
            return cls(cla, ins, p1, p2)
        if n == 1:  # case 2S
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0:  # short, case 3S or 4S
            lc = body[0]
            if n == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if n == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:1 + lc]), le=body[-1] or SHORT_MAX_LE)
            raise ApduError(f"short Lc {lc} does not match {n - 1} bytes after it")
        # body[0] == 0 and n >= 2: extended
        if n == 3:  # case 2E
            le = int.from_bytes(body[1:3], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, le=le, extended=True)
        if n < 3:
            raise ApduError(f"{n} body bytes fit no APDU case")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduError("extended Lc of zero")
        if n == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]), extended=True)
        if n == 5 + lc:
            le = int.from_bytes(body[-2:], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, bytes(body[3:3 + lc]), le=le, extended=True)
        raise ApduError(f"extended Lc {lc} does not match {n - 3} bytes after it")


STATUS_WORDS: dict[int, str] = {
    0x9000: "success",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file reached before reading Le bytes",
    0x6283: "warning: selected file deactivated",
    0x6284: "warning: file control information not formatted",
    0x6300: "warning: authentication failed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "incorrect secure messaging data objects",
    0x6A80: "incorrect parameters in the command data field",
    0x6A81: "function not supported",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6B00: "wrong parameters P1-P2 (offset outside the EF)",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
}
"""Status words of ISO 7816-4 §5.6 (Tables 5 and 6) met on eMRTDs."""

SW_SUCCESS = 0x9000


def sw_meaning(sw: int) -> str:
    """Human-readable meaning of a status word, including the parameterised families."""
    if sw in STATUS_WORDS:
        return STATUS_WORDS[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"success, {sw2 or 256} more bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le, exact length is {sw2 or 256}"
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        return f"verification failed, {sw2 & 0x0F} tries left"
    if sw1 in (0x62, 0x63):
        return "warning"
    if sw1 in (0x64, 0x65, 0x66):
        return "execution error"
    if sw1 == 0x67:
        return "wrong length"
    if sw1 == 0x68:
        return "functions in CLA not supported"
    if sw1 == 0x69:
        return "command not allowed"
    if sw1 == 0x6A:
        return "wrong parameters"
    return "unknown status word"


class CardStatusError(Exception):
    """The card answered with a status word other than success; carries the SW and its meaning."""

    def __init__(self, sw: int, context: str = "") -> None:
        self.sw = sw
        self.meaning = sw_meaning(sw)
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}card returned {sw:04X} ({self.meaning})")


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: ``data || SW1 SW2`` (ISO 7816-4 §5.6)."""

    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        """SW1 SW2 as one integer (``0x9000``)."""
        return (self.sw1 << 8) | self.sw2

    @property
    def ok(self) -> bool:
        """True for 9000."""
        return self.sw == SW_SUCCESS

    @property
    def meaning(self) -> str:
        """What the status word means."""
        return sw_meaning(self.sw)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        """Split ``data || SW1 SW2``; :class:`ApduError` when shorter than the status word."""
        if len(raw) < 2:
            raise ApduError(f"response of {len(raw)} bytes has no status word")
        return cls(bytes(raw[:-2]), raw[-2], raw[-1])

    def to_bytes(self) -> bytes:
        """``data || SW1 SW2``."""
        return self.data + bytes((self.sw1, self.sw2))

    def check(self, context: str = "") -> bytes:
        """The data when the SW is 9000; otherwise :class:`CardStatusError`."""
        if self.sw != SW_SUCCESS:
            raise CardStatusError(self.sw, context)
        return self.data


def exchange(channel: CardChannel, apdu: CommandApdu | bytes) -> ResponseApdu:
    """Send one command through ``channel`` and split the answer (any status word)."""
    raw = apdu.to_bytes() if isinstance(apdu, CommandApdu) else apdu
    return ResponseApdu.from_bytes(channel.transmit(raw))


def transmit_checked(channel: CardChannel, apdu: CommandApdu | bytes, context: str = "") -> bytes:
    """Send one command; the response data on 9000, :class:`CardStatusError` otherwise."""
    return exchange(channel, apdu).check(context)

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
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.status import (
    DEFAULT_CHAIN,
    STATUS_WORDS,
    SW_SUCCESS,
    CardStatusError,
    ErrorCheckingChain,
    sw_meaning,
)

SHORT_MAX_LC = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_LC = 65535
EXTENDED_MAX_LE = 65536


class ApduError(IcaoError, ValueError):
    """A command APDU that cannot be encoded or parsed; ``reason`` says why."""


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

    def check(self, context: str = "", chain: ErrorCheckingChain = DEFAULT_CHAIN) -> bytes:
        """The data when ``chain`` accepts the SW (9000); otherwise the typed
        :class:`~edge_agent.icao.status.CardStatusError` the chain maps the SW to."""
        error = chain.error_for(self.sw, context)
        if error is not None:
            raise error
        return self.data


def exchange(channel: CardChannel, apdu: CommandApdu | bytes) -> ResponseApdu:
    """Send one command through ``channel`` and split the answer (any status word)."""
    raw = apdu.to_bytes() if isinstance(apdu, CommandApdu) else apdu
    return ResponseApdu.from_bytes(channel.transmit(raw))


def transmit_checked(channel: CardChannel, apdu: CommandApdu | bytes, context: str = "") -> bytes:
    """Send one command; the response data on 9000, a typed :class:`CardStatusError` otherwise."""
    return exchange(channel, apdu).check(context)


__all__ = [
    "EXTENDED_MAX_LC", "EXTENDED_MAX_LE", "SHORT_MAX_LC", "SHORT_MAX_LE", "STATUS_WORDS",
    "SW_SUCCESS", "ApduError", "CardStatusError", "CommandApdu", "ResponseApdu", "exchange",
    "sw_meaning", "transmit_checked",
]

"""Card-side command APDU parsing and status words (ISO/IEC 7816-4 §5.1, §5.6).

Short and extended length cases 1, 2, 3 and 4 are recognised; any other shape is answered with
6700 (wrong length) by the processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .errors import ISOError


class SW(IntEnum):
    """Status words the simulated chip emits (ISO 7816-4 §5.6, tables 5-6)."""

    OK = 0x9000
    END_OF_FILE = 0x6282  # end of file reached before reading Ne bytes
    AUTH_FAILED = 0x6300
    WRONG_LENGTH = 0x6700
    SM_NOT_SUPPORTED = 0x6882
    LAST_COMMAND_EXPECTED = 0x6883
    SECURITY_NOT_SATISFIED = 0x6982
    CONDITIONS_NOT_SATISFIED = 0x6985
    SM_MISSING_DO = 0x6987
    SM_INCORRECT_DO = 0x6988
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    WRONG_OFFSET = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


CLA_CHAINING = 0x10
CLA_SM = 0x0C


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command APDU. ``ne`` is the expected response length (0 = no Le field)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int = 0
    extended: bool = False

    @property
    def p1p2(self) -> int:
        """P1 and P2 as one 16-bit number."""
        return (self.p1 << 8) | self.p2

    @property
    def header(self) -> bytes:
        """``CLA INS P1 P2``."""
        return bytes([self.cla, self.ins, self.p1, self.p2])

    @property
    def chained(self) -> bool:
        """Command chaining bit (ISO 7816-4 §5.1.1.1): more commands of the chain follow."""
        return bool(self.cla & CLA_CHAINING)

    @property
    def secure_messaging(self) -> bool:
        """SM indication bits of an interindustry CLA (ISO 7816-4 §5.1.1)."""
        return bool(self.cla & CLA_SM)


def parse_command(apdu: bytes) -> Command:
    """Parse a command APDU; raise :class:`ISOError` 6700 on inconsistent length fields."""
    if len(apdu) < 4:
        raise ISOError(SW.WRONG_LENGTH, "APDU shorter than a header")
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2)  # case 1
    if len(body) == 1:  # case 2 short
        return Command(cla, ins, p1, p2, ne=body[0] or 256)
    if body[0] != 0:  # short case 3 / 4
        lc = body[0]
        if len(body) == 1 + lc:
            return Command(cla, ins, p1, p2, body[1:])
        if len(body) == 2 + lc:
            return Command(cla, ins, p1, p2, body[1 : 1 + lc], ne=body[-1] or 256)
        raise ISOError(SW.WRONG_LENGTH, "Lc does not match the body")
    # extended forms: body starts with 00
    if len(body) == 3:  # case 2 extended
        le = int.from_bytes(body[1:3], "big")
        return Command(cla, ins, p1, p2, ne=le or 65536, extended=True)
    if len(body) < 3:
        raise ISOError(SW.WRONG_LENGTH, "truncated extended length")
    lc = int.from_bytes(body[1:3], "big")
    if lc == 0:
        raise ISOError(SW.WRONG_LENGTH, "extended Lc of zero")
    if len(body) == 3 + lc:
        return Command(cla, ins, p1, p2, body[3:], extended=True)
    if len(body) == 5 + lc:
        le = int.from_bytes(body[-2:], "big")
        return Command(cla, ins, p1, p2, body[3 : 3 + lc], ne=le or 65536, extended=True)
    raise ISOError(SW.WRONG_LENGTH, "extended Lc does not match the body")


def sw_bytes(sw: int) -> bytes:
    """SW1 SW2 as two bytes."""
    return sw.to_bytes(2, "big")

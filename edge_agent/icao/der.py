"""Small DER helpers on top of :mod:`edge_agent.icao.tlv` (X.690 §8.3, §8.19; ICAO 9303-10 §4).

All decoders raise :class:`~edge_agent.icao.errors.LdsError` with a reason; nothing re-encodes
the input.
"""

from __future__ import annotations

from edge_agent.icao.errors import LdsError
from edge_agent.icao.tlv import Tlv, TlvError, encode_tlv, parse_single

TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_SEQUENCE = 0x30
TAG_SET = 0x31


def decode_oid(value: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19)."""
    if not value:
        raise LdsError("empty OBJECT IDENTIFIER")
    if value[-1] & 0x80:
        raise LdsError("OBJECT IDENTIFIER ends inside a sub-identifier")
    if len(value) > 64:
        raise LdsError("OBJECT IDENTIFIER longer than 64 bytes")
    arcs: list[int] = []
    acc = 0
    fresh = True
    for byte in value:
        if fresh and byte == 0x80:
            raise LdsError("OBJECT IDENTIFIER sub-identifier with leading 80")
        acc = (acc << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(acc)
            acc = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def encode_oid(dotted: str) -> bytes:
    """Content octets of an OBJECT IDENTIFIER in dotted form."""
    try:
        arcs = [int(part) for part in dotted.split(".")]
    except ValueError as exc:
        raise LdsError(f"bad OID {dotted!r}") from exc
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or min(arcs) < 0:
        raise LdsError(f"bad OID {dotted!r}")
    out = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def oid_tlv(dotted: str) -> bytes:
    """A complete ``06 L ...`` element."""
    return encode_tlv(TAG_OID, encode_oid(dotted))


def decode_integer(value: bytes, *, signed: bool = True) -> int:
    """An INTEGER's content octets (two's complement, X.690 §8.3)."""
    if not value:
        raise LdsError("empty INTEGER")
    return int.from_bytes(value, "big", signed=signed)


def decode_unsigned(value: bytes) -> int:
    """An INTEGER that must not be negative (moduli, exponents, orders)."""
    number = decode_integer(value)
    if number < 0:
        raise LdsError("negative INTEGER where a positive one is required")
    return number


def expect(element: Tlv, tag: int, what: str) -> Tlv:
    """``element`` when its tag is ``tag``; :class:`LdsError` naming ``what`` otherwise."""
    if element.tag != tag:
        raise LdsError(f"{what}: expected tag {tag:02X}, found {element.tag:X}")
    return element


def children(element: Tlv, what: str) -> list[Tlv]:
    """Children of a constructed element, TLV errors turned into :class:`LdsError`."""
    try:
        return element.children()
    except TlvError as exc:
        raise LdsError(f"{what}: {exc}") from exc


def single(data: bytes, tag: int | None, what: str) -> Tlv:
    """Parse exactly one element (optionally of ``tag``), TLV errors → :class:`LdsError`."""
    try:
        return parse_single(data, expected_tag=tag)
    except TlvError as exc:
        raise LdsError(f"{what}: {exc}") from exc


def bit_string_bytes(element: Tlv, what: str) -> bytes:
    """The payload of a BIT STRING with no unused bits."""
    expect(element, TAG_BIT_STRING, what)
    if not element.value:
        raise LdsError(f"{what}: empty BIT STRING")
    if element.value[0] != 0:
        raise LdsError(f"{what}: BIT STRING with {element.value[0]} unused bits")
    return element.value[1:]

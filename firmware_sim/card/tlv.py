"""Minimal BER-TLV (ISO/IEC 8825-1, ISO 7816-4 §5.2) encoder and parser, card side."""

from __future__ import annotations


class TLVError(ValueError):
    """A BER-TLV object is truncated or malformed."""


def encode_length(n: int) -> bytes:
    """Definite-form length octets (short form below 128, long form otherwise)."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV; ``tag`` is the full tag number as written (e.g. 0x5F1F, 0x7F61)."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    return tag_bytes + encode_length(len(value)) + value


def read_tlv(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Parse the TLV at ``pos``; return ``(tag, value, next_pos)``."""
    try:
        start = pos
        first = data[pos]
        pos += 1
        if first & 0x1F == 0x1F:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        tag = int.from_bytes(data[start:pos], "big")
        lb = data[pos]
        pos += 1
        if lb < 0x80:
            length = lb
        elif lb == 0x80 or lb > 0x84:
            raise TLVError("indefinite or oversized length")
        else:
            nb = lb & 0x7F
            if pos + nb > len(data):
                raise TLVError("truncated length")
            length = int.from_bytes(data[pos : pos + nb], "big")
            pos += nb
    except IndexError as exc:
        raise TLVError("truncated TLV") from exc
    if pos + length > len(data):
        raise TLVError("value runs past the end")
    return tag, data[pos : pos + length], pos + length


def parse_all(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a concatenation of TLVs."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(data):
        tag, value, pos = read_tlv(data, pos)
        out.append((tag, value))
    return out

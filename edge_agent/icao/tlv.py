"""BER-TLV as used by ISO 7816-4 §5.2 and the ICAO LDS (ICAO 9303-10 §4.1, X.690 §8.1).

Strict and bounded: every malformed input raises :class:`TlvError` with a specific reason, every
byte is visited once (linear time) and nesting depth is limited. Values are kept as the exact
bytes read; nothing is re-encoded (a data group's hash is over the bytes as stored).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from edge_agent.icao.errors import IcaoError

MAX_DEPTH = 16
"""Deepest nesting :meth:`Tlv.children` will follow; LDS structures need fewer than 8 levels."""


class TlvError(IcaoError, ValueError):
    """Malformed BER-TLV; ``reason`` says what and ``offset`` where."""

    def __init__(self, reason: str, offset: int) -> None:
        Exception.__init__(self, f"{reason} at offset {offset}")
        self.reason = reason
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Tlv:
    """One tag-length-value element.

    ``tag`` is the tag bytes read as a big-endian integer (``0x5F1F``, ``0x6D``, ``0x7F61``).
    ``raw`` is the whole element exactly as read (tag, length and value).
    """

    tag: int
    value: bytes
    raw: bytes
    offset: int
    depth: int = 0

    @property
    def constructed(self) -> bool:
        """Bit 6 of the first tag byte (X.690 §8.1.2.5)."""
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)

    def children(self) -> list[Tlv]:
        """Parse the value as a sequence of TLVs (the element must be constructed)."""
        if not self.constructed:
            raise TlvError(f"tag {self.tag:X} is primitive and has no children", self.offset)
        if self.depth + 1 > MAX_DEPTH:
            raise TlvError(f"nesting deeper than {MAX_DEPTH} levels", self.offset)
        return list(iter_tlvs(self.value, base_offset=self.offset + len(self.raw) - len(self.value),
                              depth=self.depth + 1))

    def find(self, tag: int) -> Tlv | None:
        """The first direct child with ``tag``, or None."""
        for child in self.children():
            if child.tag == tag:
                return child
        return None

    def require(self, tag: int) -> Tlv:
        """The first direct child with ``tag``; :class:`TlvError` when absent."""
        found = self.find(tag)
        if found is None:
            raise TlvError(f"tag {tag:X} missing inside tag {self.tag:X}", self.offset)
        return found


def read_tag(data: bytes, offset: int) -> tuple[int, int]:
    """Read a tag at ``offset``; returns ``(tag, next_offset)`` (X.690 §8.1.2)."""
    if offset >= len(data):
        raise TlvError("truncated tag", offset)
    first = data[offset]
    if first in (0x00, 0xFF):
        raise TlvError(f"invalid tag byte {first:02X}", offset)
    tag = first
    pos = offset + 1
    if first & 0x1F == 0x1F:
        # subsequent bytes: bit 8 set on all but the last; at most 3 bytes of tag in the LDS
        while True:
            if pos >= len(data):
                raise TlvError("truncated tag", offset)
            byte = data[pos]
            tag = (tag << 8) | byte
            pos += 1
            if pos - offset > 3:
                raise TlvError("tag longer than 3 bytes", offset)
            if not byte & 0x80:
                break
    return tag, pos


def read_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read a definite length at ``offset``; returns ``(length, next_offset)`` (X.690 §8.1.3)."""
    if offset >= len(data):
        raise TlvError("truncated length", offset)
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    if first == 0x80:
        raise TlvError("indefinite length not allowed", offset)
    count = first & 0x7F
    if count > 4:
        raise TlvError(f"length field of {count} bytes is too long", offset)
    if offset + 1 + count > len(data):
        raise TlvError("truncated length", offset)
    length = int.from_bytes(data[offset + 1 : offset + 1 + count], "big")
    return length, offset + 1 + count


def read_tlv(data: bytes, offset: int = 0, *, depth: int = 0, base_offset: int = 0) -> Tlv:
    """Read one element starting at ``offset`` (the value must be complete)."""
    tag, pos = read_tag(data, offset)
    length, pos = read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TlvError(
            f"value of tag {tag:X} truncated: {length} bytes declared, {len(data) - pos} present",
            base_offset + offset,
        )
    return Tlv(tag=tag, value=bytes(data[pos:end]), raw=bytes(data[offset:end]),
               offset=base_offset + offset, depth=depth)


def iter_tlvs(data: bytes, *, base_offset: int = 0, depth: int = 0) -> Iterator[Tlv]:
    """Yield consecutive elements filling ``data`` exactly."""
    pos = 0
    while pos < len(data):
        element = read_tlv(data, pos, depth=depth, base_offset=base_offset)
        pos += len(element.raw)
        yield element


def parse_single(data: bytes, *, expected_tag: int | None = None) -> Tlv:
    """Parse ``data`` as exactly one element; trailing bytes are an error."""
    element = read_tlv(data, 0)
    if expected_tag is not None and element.tag != expected_tag:
        raise TlvError(f"expected tag {expected_tag:X}, found {element.tag:X}", 0)
    if len(element.raw) != len(data):
        raise TlvError(f"{len(data) - len(element.raw)} trailing bytes after tag {element.tag:X}",
                       len(element.raw))
    return element


def encode_tag(tag: int) -> bytes:
    """The tag's bytes (the integer form used by :class:`Tlv`)."""
    if tag <= 0:
        raise ValueError("tag must be positive")
    return tag.to_bytes((tag.bit_length() + 7) // 8, "big")


def encode_length(length: int) -> bytes:
    """Minimal definite length (DER, X.690 §10.1)."""
    if length < 0:
        raise ValueError("length must not be negative")
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag: int, value: bytes) -> bytes:
    """One element with a minimal length."""
    return encode_tag(tag) + encode_length(len(value)) + value

"""What the answer-to-reset says about APDU lengths (ISO/IEC 7816-3 §8.2, ISO/IEC 7816-4 §8.1.1).

A contactless card's "ATR" as PC/SC reports it carries the ATS historical bytes (PC/SC part 3
§3.1.3.2.3.1). When the historical bytes start with category indicator ``80`` they are
COMPACT-TLV objects; tag 7 holds the *card capabilities* (ISO 7816-4 §8.1.1.2.7), whose third
byte ("third software function table") says in b8 whether command chaining and in b7 whether
extended Lc and Le fields are supported.

A card that does not say it supports extended length gets short APDUs only: its responses carry
at most 256 bytes, so under secure messaging a READ BINARY asks for at most
:data:`SHORT_SM_MAX_CHUNK` bytes of plaintext (docs/cccd.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass

SHORT_SM_MAX_CHUNK = 0xDF
"""Largest READ BINARY plaintext whose protected answer (DO'87' with up to 15 bytes of padding,
DO'99', DO'8E') fits a short response of 256 bytes with AES or 3DES."""


@dataclass(frozen=True, slots=True)
class CardCapabilities:
    """Card capabilities from the historical bytes (None: the card does not say)."""

    command_chaining: bool | None = None
    extended_length: bool | None = None


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ATR (ISO 7816-3 §8.2: T0's low nibble K after TA1..TDi).

    Returns ``b""`` for an ATR too short to hold what its interface bytes announce.
    """
    if len(atr) < 2:
        return b""
    k = atr[1] & 0x0F
    y = atr[1] >> 4
    pos = 2
    while True:
        count = bin(y).count("1")
        td_present = bool(y & 0x8)
        if pos + count > len(atr):
            return b""
        pos += count
        if not td_present:
            break
        y = atr[pos - 1] >> 4
    if pos + k > len(atr):
        return b""
    return bytes(atr[pos:pos + k])


def card_capabilities(atr: bytes) -> CardCapabilities:
    """Capabilities announced in the ATR's COMPACT-TLV historical bytes (ISO 7816-4 §8.1.1)."""
    hist = historical_bytes(atr)
    if not hist or hist[0] != 0x80:
        return CardCapabilities()
    pos = 1
    while pos < len(hist):
        tag, length = hist[pos] >> 4, hist[pos] & 0x0F
        value = hist[pos + 1:pos + 1 + length]
        if len(value) != length:
            return CardCapabilities()
        if tag == 0x7 and length >= 3:
            return CardCapabilities(command_chaining=bool(value[2] & 0x80),
                                    extended_length=bool(value[2] & 0x40))
        pos += 1 + length
    return CardCapabilities()


def read_chunk(atr: bytes | None, wanted: int) -> int:
    """The READ BINARY chunk to use: ``wanted``, capped to short length unless advertised."""
    if atr is not None and card_capabilities(atr).extended_length:
        return wanted
    return min(wanted, SHORT_SM_MAX_CHUNK)

"""The card channel: the one thing protocol code needs from a reader.

A channel sends one command APDU and returns the response APDU (data followed by SW1 SW2),
exactly like ``CardReader.transmit`` in ``drivers``. Secure messaging wraps a channel and is a
channel itself (ISO 7816-4 §10; compare pyscard's ``CardConnectionDecorator``).
"""

from __future__ import annotations

from typing import Protocol


class CardChannel(Protocol):
    """Anything that can exchange one APDU with a card."""

    def transmit(self, apdu: bytes) -> bytes:
        """Send a command APDU and return the response (data || SW1 || SW2)."""
        ...

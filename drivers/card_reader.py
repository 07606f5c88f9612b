"""The ``CardReader`` interface: card presence and APDU exchange, nothing about CCCD.

Implementations: PC/SC through pyscard, NFC through nfcpy, and the in-process simulator (in
``firmware_sim.sim_reader``, registered by entry point; see :mod:`drivers.uri`). A reader moves
bytes and reports health; it does not know what the bytes mean.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class ReaderError(Exception):
    """A reader-level failure (base class)."""


class NoCardError(ReaderError):
    """No card is in the field / slot."""


class CardLostError(ReaderError):
    """The card left the field or stopped answering during an exchange (tag loss)."""


class ReaderUnavailableError(ReaderError):
    """The reader itself is gone (unplugged, daemon down) or cannot be opened."""


class CardEvent(Enum):
    """Presence notifications a reader emits."""

    INSERTED = "inserted"
    REMOVED = "removed"
    READER_ADDED = "reader-added"
    READER_REMOVED = "reader-removed"


@dataclass(frozen=True, slots=True)
class CardPresence:
    """What :meth:`CardReader.connect` returns: the card's answer-to-reset or ATS."""

    atr: bytes
    reader_name: str


PresenceListener = Callable[[CardEvent, str], None]


class CardReader(abc.ABC):
    """A contact or contactless reader holding at most one card."""

    name: str = "reader"

    @abc.abstractmethod
    def connect(self, timeout: float | None = None) -> CardPresence:
        """Wait up to ``timeout`` seconds (None: forever) for a card and power it up.

        Raises :class:`NoCardError` on time-out and :class:`ReaderUnavailableError` when the
        reader is gone.
        """

    @abc.abstractmethod
    def transmit(self, apdu: bytes) -> bytes:
        """Send a command APDU, return the response (data || SW1 || SW2).

        Raises :class:`CardLostError` when the card leaves during the exchange.
        """

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Power the card down and release it; safe to call when not connected."""

    def add_listener(self, listener: PresenceListener) -> None:  # noqa: B027 - optional hook
        """Register a callback for card and reader presence events (optional)."""

    def close(self) -> None:
        """Release every resource (threads, sockets, contexts)."""
        self.disconnect()

    def __enter__(self) -> CardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Domain exceptions of the simulated chip (card side)."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class of every error raised by the simulator itself (not a status word)."""


class TagLost(SimulatorError):
    """The tag left the field: no response is delivered and the chip is unpowered."""


class PersonalisationError(SimulatorError):
    """A card could not be built or loaded (bad card.json, missing keys or PKI)."""


class ISOError(Exception):
    """A command failed with an ISO 7816-4 status word (ISO 7816-4 §5.6).

    Raised inside the APDU processor and turned into SW1 SW2; never escapes ``process``.
    """

    def __init__(self, sw: int, reason: str = "") -> None:
        super().__init__(f"{sw:04X} {reason}".strip())
        self.sw = sw
        self.reason = reason


class SMError(ISOError):
    """A secure-messaging error (6987 / 6988): the chip aborts the SM session (9303-11 §9.8)."""

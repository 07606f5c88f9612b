"""Domain errors of the CCCD layer.

Every parser in :mod:`edge_agent.cccd` raises a subclass of :class:`CccdError` (itself a
``ValueError``) and nothing else for bad input. ``field`` names what failed and ``reason`` says
why, in words a technician can act on.
"""

from __future__ import annotations


class CccdError(ValueError):
    """Invalid CCCD data; ``field`` names the failing part, ``reason`` says why."""

    kind = "input"

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"{self.kind} {field}: {reason}" if field else f"{self.kind}: {reason}")


class IdNumberError(CccdError):
    """An invalid 12-digit personal ID number."""

    kind = "ID number"


class MrzError(CccdError):
    """An invalid TD1 machine-readable zone."""

    kind = "MRZ"


class QrError(CccdError):
    """A QR payload that is not one of the known formats."""

    kind = "QR"


class Dg13Error(CccdError):
    """A malformed DG13 (Vietnam-specific personal data group)."""

    kind = "DG13"

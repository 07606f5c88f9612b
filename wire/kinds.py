"""The enumerations of an event's ``kind``, ``method`` and ``assurance`` (docs/protocol.md §4.2,
§4.3), the same values as ``event.v1.schema.json`` (a unit test compares them).

The agent builds events with them; the collector breaks its counts down by them.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["FINAL_REFUSALS", "EventAssurance", "EventKind", "Method"]


class EventKind(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    VISIT = "visit"
    STAY_START = "stay.start"
    STAY_END = "stay.end"
    MANUAL = "manual"
    REJECTED = "rejected"
    VISIT_INSURANCE = "visit.insurance"
    """A follow-up: the insurance answer of an earlier visit recorded as ``unknown``
    (docs/protocol.md §4.12); never counted as a visit."""

    @property
    def is_stay(self) -> bool:
        return self in (EventKind.STAY_START, EventKind.STAY_END)


class Method(StrEnum):
    CHIP = "chip"
    CARD_QR = "card-qr"
    VNEID_QR = "vneid-qr"
    BHYT_QR = "bhyt-qr"
    """The BHYT (health-insurance) card QR at a hospital desk: an insured visit, not an
    identification by CCCD or VNeID."""
    MANUAL = "manual"


class EventAssurance(StrEnum):
    CHIP_ANCHORED = "chip-anchored"
    CHIP_SIGNED = "chip-signed"
    QR = "qr"
    VNEID_QR = "vneid-qr"
    MANUAL = "manual"
    NONE = "none"


FINAL_REFUSALS = frozenset({"schema", "bad-signature", "replay", "topic-device-mismatch",
                            "too-old", "kind-not-for-site", "stay-owner-mismatch"})
"""The refusals a receipt names in ``rejected`` (docs/protocol.md §4.11.1): the same bytes would
meet them whenever they were sent (an event only grows older; a site keeps its kind; a stay
keeps its owner), so the device settles the event. The same values as the ``reason`` enum of
``receipt.v2.schema.json``; the collector sends exactly these and the agent accepts exactly
these (a unit test compares all four), so a receipt of one side is never ignored by the other."""

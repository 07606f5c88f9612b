"""The event a device sends (docs/design.md §3; the wire contract is docs/protocol.md).

A flow produces an :class:`EventDraft` (what happened); the outbox gives it its envelope (``seq``
and ``event_id``) inside the transaction that stores it, and :func:`build_event` turns both into
the signed wire object. Personal data exists only in ``stay.*`` drafts and leaves this module
sealed to the centre's key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edge_agent.cccd.dates import BirthDate
from wire.kinds import EventAssurance, EventKind, Method
from wire.sealing import event_aad, seal, seal_subject
from wire.signing import sign_event

__all__ = [
    "AGE_BANDS", "WIRE_VERSION", "Demographics", "EventAssurance", "EventDraft", "EventKind",
    "Method", "age_band", "build_event",
]

WIRE_VERSION = 1


AGE_BANDS = ("0-5", "6-14", "15-24", "25-44", "45-59", "60+")
_BAND_LIMITS = ((5, "0-5"), (14, "6-14"), (24, "15-24"), (44, "25-44"), (59, "45-59"))


def age_band(date_of_birth: date | BirthDate, on: date) -> str:
    """The statistics age band of a person on a day. A partial date of birth (year, or month and
    year, known) is aged from its first possible day (1 January or the 1st of the month), so
    a year-only person moves to the next band on 1 January (docs/cccd.md §5)."""
    born = date_of_birth.earliest if isinstance(date_of_birth, BirthDate) else date_of_birth
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    for limit, band in _BAND_LIMITS:
        if age <= limit:
            return band
    return "60+"


@dataclass(frozen=True, slots=True)
class Demographics:
    """Statistics only: never enough to identify a person."""

    age_band: str | None = None
    sex: str | None = None
    birth_province: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"age_band": self.age_band, "sex": self.sex,
                "birth_province": self.birth_province}


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a flow decided happened; the envelope is added when it is committed."""

    kind: EventKind
    method: Method
    assurance: EventAssurance
    occurred_at: datetime
    subject: str | None = None
    count: int = 1
    demographics: Demographics = field(default_factory=Demographics)
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    personal: dict[str, Any] | None = None
    """For ``stay.*`` only: sealed to the centre, never stored or sent in clear."""
    subject_ref: str | None = field(default=None, repr=False)
    """What the centre keys the subject from (the ID number, or ``bhyt:`` and a BHYT number):
    sealed to the centre in ``subject_sealed`` (docs/protocol.md §4.7.1), never sent or stored
    in clear. ``subject`` is then the device-local subject and is not sent. A draft without it
    (older tools, tests) sends ``subject`` in clear as the legacy wire v1 value."""

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry its UTC offset")
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.personal is not None and not self.kind.is_stay:
            raise ValueError("personal data travels only in stay.* events")


def build_event(draft: EventDraft, *, device_id: str, site_id: str, seq: int,
                event_id: uuid.UUID, signing_key: Ed25519PrivateKey,
                centre_key: X25519PublicKey | None, training: bool = False) -> dict[str, Any]:
    """The signed wire object of ``draft`` (docs/protocol.md §Events); ``training`` marks an
    event of a device in training mode (``"training": true``, never counted, §4.12)."""
    event: dict[str, Any] = {
        "v": WIRE_VERSION,
        "event_id": str(event_id),
        "device_id": device_id,
        "site_id": site_id,
        "seq": seq,
        "occurred_at": draft.occurred_at.isoformat(timespec="milliseconds"),
        "kind": draft.kind.value,
        "method": draft.method.value,
        "assurance": draft.assurance.value,
        "subject": draft.subject,
        "count": draft.count,
        "demographics": draft.demographics.to_json(),
        "reason": draft.reason,
        "details": draft.details,
        "sealed": None,
    }
    if training:
        event["training"] = True
    if draft.subject_ref is not None:
        if centre_key is None:
            raise ValueError("an identified event needs the centre's sealing key")
        event["subject"] = None
        event["subject_sealed"] = seal_subject(draft.subject_ref, centre_key, str(event_id),
                                               device_id).to_json()
    if draft.personal is not None:
        if centre_key is None:
            raise ValueError("a stay event needs the centre's sealing key")
        aad = event_aad(str(event_id), device_id)
        event["sealed"] = seal(draft.personal, centre_key, aad).to_json()
    return sign_event(event, signing_key)

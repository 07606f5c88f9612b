"""Inputs and outputs of the flows: presentations, settings, verdicts, domain errors.

Everything here is a typed frozen value: a flow turns one presentation into one :class:`Verdict`
and zero or more :class:`~edge_agent.events.model.EventDraft` (docs/design.md §2.1 "Flows").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

from edge_agent.cccd import QrIdentity
from edge_agent.config import (
    CapacityPolicy,
    Config,
    Direction,
    Language,
    NameDisplay,
    QrExpiryPolicy,
)
from edge_agent.events.local_subject import StaticSubjects
from edge_agent.events.model import EventDraft
from edge_agent.flows.messages import Text
from edge_agent.identity import IdentityVerifier
from edge_agent.reading import ReadResult

Clock = Callable[[], datetime]
"""Now, as an aware datetime in the site's time zone (Asia/Ho_Chi_Minh, +07:00)."""
Commit = Callable[[Sequence[EventDraft]], None]
"""Store the drafts of one presentation atomically and durably (the outbox: SQLite WAL with
fsync, docs/design.md §2.1) or raise. Called before the verdict is shown."""
VneidDecoder = IdentityVerifier
"""Resolves the VNeID app's identity token (docs/cccd.md §5) through the identity platform
(:mod:`edge_agent.identity`). Without one, a token cannot be resolved here: it is rejected as
``vneid-unavailable`` and the kiosk asks for the card or the card QR shown in the app."""


class FlowError(Exception):
    """The flow was used in a way its site kind or settings do not allow (a programming or
    configuration error, not a visitor's problem)."""


class FlowInputError(FlowError):
    """A desk form value the flow cannot accept; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ManualReason(StrEnum):
    """Why a person is counted without a card (docs/protocol.md, manual reasons)."""

    CHILD = "child"
    PAPER_INSURANCE = "paper-insurance"
    NO_CARD = "no-card"
    OTHER = "other"


class StayReason(StrEnum):
    """Reason of stay (lý do cư trú) of an accommodation notice (docs/cccd.md §9)."""

    TREATMENT = "treatment"
    CAREGIVER = "caregiver"
    TOURISM = "tourism"
    BUSINESS = "business"
    STUDY = "study"
    FAMILY = "family"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ChipPresentation:
    """A chip read, with the card QR scanned just before when there was one (scan-then-tap)."""

    result: ReadResult
    qr: QrIdentity | None = None
    count: int = 1
    """People entering on this card (a group leader's card): ``count`` on the event."""


@dataclass(frozen=True, slots=True)
class QrPresentation:
    """The raw bytes of one scanned code (card QR, VNeID identity token, BHYT card QR)."""

    payload: bytes | str
    count: int = 1


@dataclass(frozen=True, slots=True)
class ManualPresentation:
    """A person or group counted by hand, without a card."""

    reason: ManualReason
    count: int = 1


Presentation = ChipPresentation | QrPresentation | ManualPresentation


class LocalSubjects(Protocol):
    """The device-local subject (:mod:`edge_agent.events.local_subject`): recognises the same
    person again on this device only; never sent."""

    def subject(self, ref: str, now: datetime) -> str: ...

    def candidates(self, ref: str, now: datetime) -> frozenset[str]: ...


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """What the flows need from the configuration (docs/configuration.md).

    ``subjects`` is the device's local keyring; without one, ``subject_key`` (at least 16
    bytes) is used as a fixed local key (tests and tools)."""

    site_id: str
    subject_key: bytes = b""
    direction: Direction | None = None
    language: Language = Language.VI
    name_display: NameDisplay = NameDisplay.FULL
    capacity_policy: CapacityPolicy = CapacityPolicy.WARN
    dedupe_window_s: int = 5
    max_group: int = 1000
    qr_expiry: QrExpiryPolicy = QrExpiryPolicy.FLAG
    """A card QR whose derived expiry has passed, or whose issue date is in the future:
    ``flag`` (accept, warn, ``details.qr_flags``) or ``refuse`` (a rejected event)."""
    subjects: LocalSubjects | None = None

    def __post_init__(self) -> None:
        if self.subjects is None:
            if len(self.subject_key) < 16:
                raise FlowError("the subject key must be at least 16 bytes")
            object.__setattr__(self, "subjects", StaticSubjects(self.subject_key))
        if self.dedupe_window_s < 0:
            raise FlowError("dedupe_window_s must not be negative")

    @property
    def local(self) -> LocalSubjects:
        assert self.subjects is not None  # __post_init__ sets it
        return self.subjects

    @classmethod
    def from_config(cls, config: Config, subjects: LocalSubjects) -> FlowSettings:
        return cls(site_id=config.device.site_id, subjects=subjects,
                   direction=config.device.direction, language=config.device.language,
                   name_display=config.device.name_display,
                   capacity_policy=config.capacity.policy,
                   dedupe_window_s=config.capacity.dedupe_window_s,
                   qr_expiry=config.qr.expiry_policy)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    ALREADY_COUNTED = "already-counted"
    REJECTED = "rejected"
    REFUSED = "refused"
    """Not done, without an event (e.g. discharge with no open stay)."""
    NOT_RECORDED = "not-recorded"
    """The outbox could not store the event: nothing happened, try again."""
    SELECTED = "selected"
    """A hospital desk selected the person for a stay action without recording a visit."""


@dataclass(frozen=True, slots=True)
class Counts:
    """Today's figures of this device, and the site's occupancy as the device knows it."""

    day: date
    entries: int = 0
    exits: int = 0
    visits: int = 0
    stays_started: int = 0
    stays_ended: int = 0
    manual: int = 0
    rejected: int = 0
    occupancy: int | None = None
    capacity: int | None = None
    occupancy_estimated: bool = False
    """True when local entries and exits since the centre's last figure are added in."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the kiosk shows (green when ``accepted``), and what was committed."""

    accepted: bool
    outcome: Outcome
    text_title: Text
    text_message: Text
    counts: Counts
    language: Language = Language.VI
    masked_id: str | None = None
    name: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    """Machine codes: ``qr-mismatch``, ``capacity-warn``, ``insurance-invalid``,
    ``insurance-unknown``."""
    drafts: tuple[EventDraft, ...] = ()
    stay_id: uuid.UUID | None = None
    insurance: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.title_in(self.language)

    @property
    def message(self) -> str:
        return self.message_in(self.language)

    @property
    def title_vi(self) -> str:
        return self.text_title.vi

    @property
    def title_en(self) -> str:
        return self.text_title.en

    @property
    def message_vi(self) -> str:
        return self.text_message.vi

    @property
    def message_en(self) -> str:
        return self.text_message.en

    def title_in(self, language: Language | str) -> str:
        return self.text_title.en if Language(language) is Language.EN else self.text_title.vi

    def message_in(self, language: Language | str) -> str:
        return (self.text_message.en if Language(language) is Language.EN
                else self.text_message.vi)


UNKNOWN_SUBJECT = "?"
"""The local subject of a stay restored from the outbox alone, after a crash between the outbox
and the stay register commits (:mod:`edge_agent.stay_register`): it matches no card, and the
stay ends when a card is tapped for it by ``stay_id``."""


@dataclass(frozen=True, slots=True)
class OpenStay:
    """A stay the device started and has not ended (kept in memory; restorable at start-up)."""

    stay_id: uuid.UUID
    subject: str
    ward_or_room: str
    expected_departure: date
    reason_code: StayReason
    started_at: datetime

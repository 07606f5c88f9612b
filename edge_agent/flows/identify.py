"""From a presentation to a person, or to the reason there is none (pure).

A chip read is trusted at its assurance (``chip-anchored`` / ``chip-signed``); a card QR is
unsigned (assurance ``qr``, docs/cccd.md §5); the VNeID app's identity token is resolved online
by the identity platform (assurance ``vneid-qr`` and the platform's level); a BHYT card QR is
returned as such for the hospital flow (method ``bhyt-qr``); any other shape is ``qr-invalid``.
When a card QR was scanned just before the tap, the chip wins and the fields that disagree are
reported (``qr_mismatch``).

A card QR carries no expiry: it is derived from the date of birth and the issue date
(docs/cccd.md §6; several candidates where the rule is ambiguous, the latest is used so that a
valid card is never called expired). A card QR whose derived expiry has passed, or whose issue
date lies in the future, is flagged (``qr_flags``: ``card-expired``, ``issue-date-future``) or
refused (``expired-card``, ``issue-date-future``) as ``qr.expiry_policy`` says.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import date

from edge_agent.cccd import (
    BhytCard,
    CccdError,
    QrFormat,
    QrIdentity,
    Sex,
    VneidToken,
    expiry_candidates,
    read_code,
)
from edge_agent.cccd.dates import BirthDate
from edge_agent.config import QrExpiryPolicy
from edge_agent.events.model import Demographics, EventAssurance, Method, age_band
from edge_agent.flows.model import ChipPresentation, QrPresentation, VneidDecoder
from edge_agent.identity import IdentityState
from edge_agent.reading import Assurance

MISMATCH_FIELDS = ("id_number", "date_of_birth", "full_name", "sex")
NATIONALITY_VN = "VNM"


@dataclass(frozen=True, slots=True)
class Person:
    """An identified holder. Personal data: only demographics leave the device in clear; the ID
    number only sealed to the centre (``subject_sealed``), the rest only inside a sealed
    ``stay.*`` box."""

    id_number: str
    full_name: str
    date_of_birth: BirthDate
    """Possibly partial (year, or month and year, known): docs/cccd.md §5."""
    sex: Sex | None
    nationality: str
    address: str | None
    method: Method
    assurance: EventAssurance
    date_of_expiry: date | None = None
    qr_mismatch: tuple[str, ...] = ()
    qr_flags: tuple[str, ...] = ()
    """``card-expired`` / ``issue-date-future`` for a card QR under the ``flag`` policy."""
    vneid_level: int | None = None
    """The identification level the identity platform reported for a VNeID token."""

    def demographics(self, on: date) -> Demographics:
        """Age band, sex, birth-registration province (first 3 digits): nothing else. A partial
        date of birth is aged from its first possible day (:meth:`BirthDate.age_on`)."""
        return Demographics(age_band=age_band(self.date_of_birth, on),
                            sex=self.sex.value if self.sex else None,
                            birth_province=self.id_number[:3])

    def sealed_payload(self) -> dict[str, object]:
        """The accommodation-notice fields (docs/cccd.md §9; schema ``stay-personal.v1``)."""
        return {
            "full_name": self.full_name,
            "id_number": self.id_number,
            "date_of_birth": self.date_of_birth.isoformat(),
            "sex": self.sex.value if self.sex else None,
            "nationality": self.nationality,
            "address": self.address,
            "document_type": "cccd",
        }


@dataclass(frozen=True, slots=True)
class Unidentified:
    """No person: the rejected event's reason code and the method that was tried."""

    reason: str
    method: Method


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return _fold("".join(c for c in decomposed if not unicodedata.combining(c)))


def compare(qr: QrIdentity, person: Person) -> tuple[str, ...]:
    """Fields where a QR disagrees with the chip, in :data:`MISMATCH_FIELDS` order."""
    found = set()
    if qr.id_text != person.id_number:
        found.add("id_number")
    if not qr.birth_date.agrees_with(person.date_of_birth):
        found.add("date_of_birth")
    if qr.format is QrFormat.PERSONAL_QR:
        # Upper case without diacritics (docs/cccd.md §5): compare the plain letters only.
        if _plain(qr.full_name) != _plain(person.full_name):
            found.add("full_name")
    elif _fold(qr.full_name) != _fold(person.full_name):
        found.add("full_name")
    if qr.sex is not None and person.sex is not None and qr.sex is not person.sex:
        found.add("sex")
    return tuple(name for name in MISMATCH_FIELDS if name in found)


def from_chip(presentation: ChipPresentation, today: date) -> Person | Unidentified:
    result = presentation.result
    identity = result.identity
    if not result.ok or identity is None or result.assurance is None:
        code = result.failure.value if result.failure else "internal-error"
        return Unidentified(code, Method.CHIP)
    if identity.date_of_expiry is not None and identity.date_of_expiry < today:
        return Unidentified("expired-card", Method.CHIP)
    assurance = (EventAssurance.CHIP_ANCHORED if result.assurance is Assurance.CHIP_ANCHORED
                 else EventAssurance.CHIP_SIGNED)
    dg13 = identity.dg13
    person = Person(
        id_number=identity.id_number.value, full_name=identity.full_name,
        date_of_birth=identity.mrz.birth_date, sex=identity.sex,
        nationality=identity.nationality or NATIONALITY_VN,
        address=dg13.residence if dg13 is not None else None,
        method=Method.CHIP, assurance=assurance, date_of_expiry=identity.date_of_expiry)
    mismatch = set(result.qr_mismatch)
    if presentation.qr is not None:
        mismatch.update(compare(presentation.qr, person))
    if mismatch:
        ordered = tuple(name for name in MISMATCH_FIELDS if name in mismatch)
        person = replace(person, qr_mismatch=ordered)
    return person


def qr_expiry_flags(qr: QrIdentity, today: date) -> tuple[str, ...]:
    """``card-expired`` when every derived expiry has passed (a card that never expires has
    none), ``issue-date-future`` when the issue date is after ``today``."""
    if qr.issue_date is None:
        return ()
    flags = []
    candidates = expiry_candidates(qr.birth_date, qr.issue_date)
    if candidates and None not in candidates and \
            max(c for c in candidates if c is not None) < today:
        flags.append("card-expired")
    if qr.issue_date > today:
        flags.append("issue-date-future")
    return tuple(flags)


def _from_qr_identity(qr: QrIdentity, today: date,
                      policy: QrExpiryPolicy) -> Person | Unidentified:
    if qr.id_number is None:
        # A masked personal QR: no number, so no subject and nothing to pair or count.
        return Unidentified("qr-invalid", Method.CARD_QR)
    flags = qr_expiry_flags(qr, today)
    if flags and policy is QrExpiryPolicy.REFUSE:
        reason = "issue-date-future" if "issue-date-future" in flags else "expired-card"
        return Unidentified(reason, Method.CARD_QR)
    return Person(id_number=qr.id_number.value, full_name=qr.full_name,
                  date_of_birth=qr.birth_date, sex=qr.sex or qr.id_number.sex,
                  nationality=NATIONALITY_VN, address=qr.address, method=Method.CARD_QR,
                  assurance=EventAssurance.QR, qr_flags=flags)


def _from_token(token: VneidToken, vneid: VneidDecoder | None) -> Person | Unidentified:
    if vneid is None:
        return Unidentified("vneid-unavailable", Method.VNEID_QR)
    try:
        answer = vneid.verify(token)
    except Exception:  # the verifier must not raise; if it does, the visitor is not stuck
        return Unidentified("vneid-unavailable", Method.VNEID_QR)
    if answer.state is IdentityState.REJECTED:
        return Unidentified(f"vneid-{answer.reason}", Method.VNEID_QR)
    identity = answer.identity
    if answer.state is not IdentityState.VERIFIED or identity is None:
        return Unidentified("vneid-unavailable", Method.VNEID_QR)
    return Person(id_number=identity.id_number, full_name=identity.full_name,
                  date_of_birth=identity.birth_date, sex=identity.sex,
                  nationality=NATIONALITY_VN, address=identity.address,
                  method=Method.VNEID_QR, assurance=EventAssurance.VNEID_QR,
                  vneid_level=identity.level)


def from_qr(presentation: QrPresentation, vneid: VneidDecoder | None, today: date,
            policy: QrExpiryPolicy = QrExpiryPolicy.FLAG) -> Person | Unidentified | BhytCard:
    """The person a scanned code names; a BHYT card QR is returned as it is (the hospital flow
    records it, the others refuse it)."""
    try:
        code = read_code(presentation.payload)
    except CccdError:
        return Unidentified("qr-invalid", Method.CARD_QR)
    if isinstance(code, VneidToken):
        return _from_token(code, vneid)
    if isinstance(code, BhytCard):
        return code
    return _from_qr_identity(code, today, policy)

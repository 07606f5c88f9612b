"""From a presentation to a person, or to the reason there is none (pure).

A chip read is trusted at its assurance (``chip-anchored`` / ``chip-signed``); a card QR is
unsigned (assurance ``qr``, CCCD.md §5); an unknown QR shape is ``qr-invalid`` unless the VNeID
hook recognises it. When a card QR was scanned just before the tap, the chip wins and the fields
that disagree are reported (``qr_mismatch``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import date

from edge_agent.cccd import CccdError, QrFormat, QrIdentity, Sex, parse_qr
from edge_agent.cccd.dates import BirthDate
from edge_agent.events.model import Demographics, EventAssurance, Method, age_band
from edge_agent.flows.model import ChipPresentation, QrPresentation, VneidDecoder
from edge_agent.reading import Assurance

MISMATCH_FIELDS = ("id_number", "date_of_birth", "full_name", "sex")
NATIONALITY_VN = "VNM"


@dataclass(frozen=True, slots=True)
class Person:
    """An identified holder. Personal data: only demographics and the subject leave the device
    in clear; the rest only inside a sealed ``stay.*`` box."""

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

    def demographics(self, on: date) -> Demographics:
        """Age band, sex, birth-registration province (first 3 digits): nothing else. A partial
        date of birth is aged from its first possible day (:meth:`BirthDate.age_on`)."""
        return Demographics(age_band=age_band(self.date_of_birth, on),
                            sex=self.sex.value if self.sex else None,
                            birth_province=self.id_number[:3])

    def sealed_payload(self) -> dict[str, object]:
        """The accommodation-notice fields (CCCD.md §9; schema ``stay-personal.v1``)."""
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
        # Upper case without diacritics (CCCD.md §5): compare the plain letters only.
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


def _from_qr_identity(qr: QrIdentity, method: Method,
                      assurance: EventAssurance) -> Person | Unidentified:
    if qr.id_number is None:
        # A masked personal QR: no number, so no subject and nothing to pair or count.
        return Unidentified("qr-invalid", method)
    return Person(id_number=qr.id_number.value, full_name=qr.full_name,
                  date_of_birth=qr.birth_date, sex=qr.sex or qr.id_number.sex,
                  nationality=NATIONALITY_VN, address=qr.address, method=method,
                  assurance=assurance)


def from_qr(presentation: QrPresentation, vneid: VneidDecoder | None) -> Person | Unidentified:
    try:
        qr = parse_qr(presentation.payload)
    except CccdError:
        if vneid is not None:
            try:
                text = (presentation.payload.decode("utf-8")
                        if isinstance(presentation.payload, bytes) else presentation.payload)
                decoded = vneid(text.strip().lstrip("\ufeff"))
            except (UnicodeDecodeError, CccdError):
                decoded = None
            if decoded is not None:
                return _from_qr_identity(decoded, Method.VNEID_QR, EventAssurance.VNEID_QR)
        return Unidentified("qr-invalid", Method.CARD_QR)
    return _from_qr_identity(qr, Method.CARD_QR, EventAssurance.QR)

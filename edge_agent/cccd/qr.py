"""QR payloads: the card's QR, its 6-field variant and the older national personal QR
(docs/cccd.md §5).

The format is detected by shape, never guessed: raw bytes are decoded as UTF-8 (a byte-order mark
and surrounding whitespace or line terminators are tolerated) and a payload that fits none of the
shapes is rejected with the reason. The card QR is unsigned: it yields key material for the chip
and an identity of assurance ``qr`` only.

- ``cccd``: ``ID|old ID or empty|full name|DOB|Nam or Nữ|address|issue ddmmyyyy[|extra...]``
- ``cccd-6``: ``ID|full name|DOB|sex|address|issue date`` (dates ``ddmmyyyy`` or ``dd/mm/yyyy``)
- ``personal-qr``: ``ID|NAME|YYYY-MM-DD|type|QID|EXT`` (upper-case name, ID often masked)

A date of birth may be partial where the day or month is unknown: ``yyyy``, ``mmyyyy``,
``ddmmyyyy`` or ``dd/mm/yyyy`` (docs/cccd.md §5); it is kept as a
:class:`~edge_agent.cccd.dates.BirthDate` that says which parts are known.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from edge_agent.cccd.dates import BirthDate, parse_birth_date, parse_ddmmyyyy, parse_iso
from edge_agent.cccd.errors import CccdError, QrError
from edge_agent.cccd.id_number import PersonalIdNumber, Sex, parse_id_number
from edge_agent.cccd.keys import BacKey, bac_candidates

MAX_PAYLOAD_BYTES = 4096
"""Larger than any QR version 40 payload; longer input is refused before any work."""

_BOM = "\ufeff"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MASKED_ID = re.compile(r"[0-9*xX]{12}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class QrFormat(Enum):
    """The QR layouts this module knows."""

    CCCD = "cccd"
    CCCD_6 = "cccd-6"
    PERSONAL_QR = "personal-qr"


@dataclass(frozen=True, slots=True)
class QrIdentity:
    """A parsed QR payload. ``id_number`` is None when the QR only carries a masked number."""

    format: QrFormat
    id_text: str
    id_number: PersonalIdNumber | None
    old_id_number: str | None
    full_name: str
    birth_date: BirthDate
    sex: Sex | None
    address: str | None
    issue_date: date | None
    extra_fields: tuple[str, ...] = ()
    raw: str = field(default="", repr=False)

    @property
    def date_of_birth(self) -> date:
        """The first possible day of :attr:`birth_date` (the whole date when it is known); see
        :class:`~edge_agent.cccd.dates.BirthDate` for what that assumes."""
        return self.birth_date.earliest

    @property
    def can(self) -> str | None:
        """The PACE CAN (last 6 digits of the ID), when the full number is known."""
        return self.id_number.can if self.id_number else None

    @property
    def bac_candidates(self) -> list[BacKey]:
        """BAC keys derived from the date of birth and issue date, most likely first."""
        if self.id_number is None or self.issue_date is None:
            return []
        return bac_candidates(self.id_number, self.birth_date, self.issue_date)

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect qr``."""
        return {
            "format": self.format.value,
            "id_number": self.id_text,
            "old_id_number": self.old_id_number,
            "full_name": self.full_name,
            "date_of_birth": self.birth_date.isoformat(),
            "date_of_birth_known": self.birth_date.precision.value,
            "sex": self.sex.value if self.sex else None,
            "address": self.address,
            "issue_date": self.issue_date.isoformat() if self.issue_date else None,
            "extra_fields": list(self.extra_fields),
            "can": self.can,
            "bac_candidates": [key.to_json() for key in self.bac_candidates],
        }


def decode_payload(payload: bytes | str) -> str:
    """Bytes from a scanner to text: strict UTF-8, BOM and surrounding whitespace removed."""
    if isinstance(payload, bytes | bytearray | memoryview):
        data = bytes(payload)
        if len(data) > MAX_PAYLOAD_BYTES:
            raise QrError(f"payload of {len(data)} bytes is longer than any QR code",
                          field="payload")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QrError(f"not valid UTF-8 (byte {exc.start}: {data[exc.start]:#04x})",
                          field="payload") from None
    elif isinstance(payload, str):
        text = payload
        if len(text) > MAX_PAYLOAD_BYTES:
            raise QrError(f"payload of {len(text)} characters is longer than any QR code",
                          field="payload")
    else:
        raise QrError("must be bytes or text", field="payload")
    text = text.strip()
    if text.startswith(_BOM):
        text = text[1:].strip()
    return unicodedata.normalize("NFC", text)


def parse_qr(payload: bytes | str) -> QrIdentity:
    """Detect the format of a QR payload by its shape and parse it."""
    text = decode_payload(payload)
    if not text:
        raise QrError("payload is empty", field="payload")
    if "|" not in text:
        raise QrError("no '|' separators: not a CCCD, VNeID or personal QR", field="payload")
    bad = _CONTROL.search(text)
    if bad:
        raise QrError(f"control character {bad.group()!r} inside the payload", field="payload")
    fields = text.split("|")
    if len(fields) >= 7:
        return _parse_card(fields, text)
    if len(fields) == 6:
        if _ISO_DATE.fullmatch(fields[2].strip()):
            return _parse_personal(fields, text)
        return _parse_card6(fields, text)
    raise QrError(f"{len(fields)} fields; a card QR has at least 7, the variants 6",
                  field="payload")


def _id(text: str, dob: BirthDate | None, sex: Sex | None, name: str) -> PersonalIdNumber:
    try:
        return parse_id_number(text, date_of_birth=dob, sex=sex)
    except CccdError as exc:
        raise QrError(exc.reason, field=exc.field or name) from None


def _text(value: str, name: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise QrError("is empty", field=name)
    return value


def _sex(value: str, name: str = "sex") -> Sex:
    sex = Sex.from_vietnamese(value)
    if sex is None:
        raise QrError(f"{value!r} is not 'Nam' or 'Nữ'", field=name)
    return sex


def _name(value: str) -> str:
    name = _text(value, "full_name")
    if any(c.isdigit() for c in name):
        raise QrError(f"{name!r} contains digits", field="full_name")
    return name


def _parse_card(fields: list[str], raw: str) -> QrIdentity:
    id_text = fields[0].strip()
    old = fields[1].strip()
    if old and not (old.isascii() and old.isdigit() and len(old) in (9, 12)):
        raise QrError(f"{old!r} is neither empty nor a 9- or 12-digit number",
                      field="old_id_number")
    full_name = _name(fields[2])
    dob = parse_birth_date(fields[3].strip(), "date_of_birth", QrError)
    sex = _sex(fields[4])
    address = _text(fields[5], "address")
    issue = parse_ddmmyyyy(fields[6].strip(), "issue_date", QrError)
    _check_issue(dob, issue)
    return QrIdentity(
        format=QrFormat.CCCD,
        id_text=id_text,
        id_number=_id(id_text, dob, sex, "id_number"),
        old_id_number=old or None,
        full_name=full_name,
        birth_date=dob,
        sex=sex,
        address=address,
        issue_date=issue,
        extra_fields=tuple(fields[7:]),
        raw=raw,
    )


def _parse_card6(fields: list[str], raw: str) -> QrIdentity:
    id_text = fields[0].strip()
    full_name = _name(fields[1])
    dob = parse_birth_date(fields[2].strip(), "date_of_birth", QrError)
    sex = _sex(fields[3])
    address = _text(fields[4], "address")
    issue = parse_ddmmyyyy(fields[5].strip(), "issue_date", QrError, slashes=True)
    _check_issue(dob, issue)
    return QrIdentity(
        format=QrFormat.CCCD_6,
        id_text=id_text,
        id_number=_id(id_text, dob, sex, "id_number"),
        old_id_number=None,
        full_name=full_name,
        birth_date=dob,
        sex=sex,
        address=address,
        issue_date=issue,
        raw=raw,
    )


def _parse_personal(fields: list[str], raw: str) -> QrIdentity:
    id_text = fields[0].strip()
    if not _MASKED_ID.fullmatch(id_text):
        raise QrError(f"{id_text!r} is not a 12-character (possibly masked) ID number",
                      field="id_number")
    dob = BirthDate.of(parse_iso(fields[2].strip(), "date_of_birth", QrError))
    id_number = _id(id_text, dob, None, "id_number") if id_text.isdigit() else None
    name = _name(fields[1])
    if name != name.upper() or not name.isascii():
        raise QrError(f"{name!r} is not an upper-case name without diacritics",
                      field="full_name")
    return QrIdentity(
        format=QrFormat.PERSONAL_QR,
        id_text=id_text,
        id_number=id_number,
        old_id_number=None,
        full_name=name,
        birth_date=dob,
        sex=None,
        address=None,
        issue_date=None,
        extra_fields=tuple(f.strip() for f in fields[3:]),
        raw=raw,
    )


def _check_issue(dob: BirthDate, issue: date) -> None:
    if issue < dob.earliest:
        raise QrError("issue date is before the date of birth", field="issue_date")


def format_card_qr(
    id_number: str, full_name: str, date_of_birth: date | BirthDate, sex: Sex, address: str,
    issue_date: date, old_id_number: str = "", extra_fields: tuple[str, ...] = (),
) -> str:
    """Write a card QR payload (the inverse of :func:`parse_qr`, for tests and simulators)."""
    sex_text = "Nam" if sex is Sex.MALE else "Nữ"
    birth = date_of_birth if isinstance(date_of_birth, BirthDate) else BirthDate.of(date_of_birth)
    parts = [id_number, old_id_number, full_name, birth.qr_text(), sex_text,
             address, issue_date.strftime("%d%m%Y"), *extra_fields]
    return "|".join(parts)

"""The BHYT (health-insurance) card QR read at hospital desks (docs/cccd.md §5, §8).

::

    <card no., 10 or 15 chars>|<hex of UTF-8 name>|<dd/mm/yyyy>|<1 male, 2 female>|
    <hex of UTF-8 address>|<registered facility "46 - 001">|<valid from>|<valid to>|<issue date>|
    <manager code>|<parent name (hex) or ->|<area code>|<date of 5 continuous years>|
    <checksum "xxxx-xxxx">|$

The payload ends with ``$`` after the last separator, which no card QR does, and its first field
is never a 12-digit ID number: the two are never confused. The name, address and parent name are
the hexadecimal of their UTF-8 bytes (so a scanner's charset guess cannot mangle them). The
15-character card number is object code (2 letters), benefit level (1 digit), province (2
digits) and the 10-digit social-insurance number; the 10-character form is that number alone.
The checksum's algorithm is not public: its shape is checked, not its value. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from edge_agent.cccd.dates import BirthDate, parse_birth_date, parse_ddmmyyyy
from edge_agent.cccd.errors import QrError
from edge_agent.cccd.id_number import Sex

TERMINATOR = "$"
MIN_FIELDS = 14
"""Fields before the terminating ``$``; later issues may append more (kept)."""
_CARD_15 = re.compile(r"([A-Z]{2})([1-5])([0-9]{2})([0-9]{10})")
_CARD_10 = re.compile(r"[0-9]{10}")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_FACILITY = re.compile(r"([0-9]{2})\s*-\s*([0-9]{3})")
_CHECKSUM = re.compile(r"[0-9A-Za-z]{1,32}-[0-9A-Za-z]{1,32}")
_SHORT = re.compile(r"[0-9A-Za-z .-]{0,20}")
MAX_NAME_CHARS = 120
MAX_ADDRESS_CHARS = 300


def looks_like_bhyt(text: str) -> bool:
    """True when the payload has the BHYT card QR's shape (``...|$``)."""
    return text.endswith("|" + TERMINATOR)


def starts_like_bhyt(text: str) -> bool:
    """True when the payload starts like a BHYT card QR (a card number, then a hex name) whether
    or not its end survived the scan: a cut BHYT code is named as such, not as a bad card QR."""
    fields = text.split("|", 2)
    return (len(fields) == 3 and bool(_CARD_15.fullmatch(fields[0]) or
                                      _CARD_10.fullmatch(fields[0]))
            and bool(_HEX.fullmatch(fields[1])))


@dataclass(frozen=True, slots=True)
class BhytCard:
    """A parsed BHYT card QR. Personal data: shown at the desk, never logged or sent in clear."""

    card_number: str
    full_name: str
    birth_date: BirthDate
    sex: Sex
    address: str | None
    facility: str
    """The registered first-contact facility as printed (``46 - 001``)."""
    valid_from: date
    valid_to: date
    issue_date: date
    manager_code: str
    parent_name: str | None
    area_code: str
    five_years_from: date | None
    checksum: str
    extra_fields: tuple[str, ...] = ()
    raw: str = field(default="", repr=False)

    @property
    def social_insurance_number(self) -> str:
        """The 10-digit social-insurance number (mã số BHXH): the stable part of the card."""
        return self.card_number[-10:]

    @property
    def object_code(self) -> str | None:
        """The 2-letter beneficiary group of a 15-character card number (``DN``, ``HT``...)."""
        return self.card_number[:2] if len(self.card_number) == 15 else None

    @property
    def facility_code(self) -> str:
        """The facility as 5 digits: province and facility number (``46001``)."""
        match = _FACILITY.fullmatch(self.facility)
        return match.group(1) + match.group(2) if match else self.facility

    def valid_on(self, day: date) -> bool:
        """True when ``day`` lies within the card's validity."""
        return self.valid_from <= day <= self.valid_to

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect qr``."""
        return {
            "format": "bhyt",
            "card_number": self.card_number,
            "social_insurance_number": self.social_insurance_number,
            "object_code": self.object_code,
            "full_name": self.full_name,
            "date_of_birth": self.birth_date.isoformat(),
            "date_of_birth_known": self.birth_date.precision.value,
            "sex": self.sex.value,
            "address": self.address,
            "facility": self.facility,
            "facility_code": self.facility_code,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat(),
            "issue_date": self.issue_date.isoformat(),
            "manager_code": self.manager_code,
            "parent_name": self.parent_name,
            "area_code": self.area_code,
            "five_years_from": self.five_years_from.isoformat() if self.five_years_from else None,
            "checksum": self.checksum,
            "extra_fields": list(self.extra_fields),
        }


def _hex_text(value: str, name: str, *, required: bool, limit: int) -> str | None:
    value = value.strip()
    if not value or value == "-":
        if required:
            raise QrError("is empty", field=name)
        return None
    if not _HEX.fullmatch(value):
        raise QrError("is not the hexadecimal of UTF-8 text", field=name)
    try:
        text = bytes.fromhex(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QrError(f"hex decodes to bytes that are not UTF-8 (byte {exc.start})",
                      field=name) from None
    text = unicodedata.normalize("NFC", " ".join(text.split()))
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise QrError("decodes to a control character", field=name)
    if not text:
        if required:
            raise QrError("is empty", field=name)
        return None
    if len(text) > limit:
        raise QrError(f"is longer than {limit} characters", field=name)
    return text


def _card_number(value: str) -> str:
    value = value.strip()
    if _CARD_15.fullmatch(value) or _CARD_10.fullmatch(value):
        return value
    raise QrError(f"{value!r} is neither a 15-character card number (2 letters, benefit level "
                  "1-5, 2-digit province, 10 digits) nor a 10-digit social-insurance number",
                  field="card_number")


def _sex(value: str) -> Sex:
    value = value.strip()
    if value == "1":
        return Sex.MALE
    if value == "2":
        return Sex.FEMALE
    raise QrError(f"{value!r} is not 1 (male) or 2 (female)", field="sex")


def _date(value: str, name: str) -> date:
    return parse_ddmmyyyy(value.strip(), name, QrError, slashes=True)


def _short(value: str, name: str) -> str:
    value = value.strip()
    if not _SHORT.fullmatch(value):
        raise QrError(f"{value!r} is not a short code", field=name)
    return value


def parse_bhyt(text: str) -> BhytCard:
    """Parse a decoded BHYT card QR payload; raises :class:`QrError` naming the bad field."""
    if not looks_like_bhyt(text):
        raise QrError("does not end with '|$': not a BHYT card QR", field="payload")
    fields = text.split("|")[:-1]
    if len(fields) < MIN_FIELDS:
        raise QrError(f"{len(fields)} fields before '$'; a BHYT card QR has {MIN_FIELDS}",
                      field="payload")
    card_number = _card_number(fields[0])
    full_name = _hex_text(fields[1], "full_name", required=True, limit=MAX_NAME_CHARS)
    assert full_name is not None
    if any(c.isdigit() for c in full_name):
        raise QrError("contains digits", field="full_name")
    birth = parse_birth_date(fields[2].strip(), "date_of_birth", QrError)
    sex = _sex(fields[3])
    address = _hex_text(fields[4], "address", required=False, limit=MAX_ADDRESS_CHARS)
    facility = fields[5].strip()
    if not _FACILITY.fullmatch(facility):
        raise QrError(f"{facility!r} is not a facility code like '46 - 001'", field="facility")
    valid_from = _date(fields[6], "valid_from")
    valid_to = _date(fields[7], "valid_to")
    if valid_to < valid_from:
        raise QrError("valid_to is before valid_from", field="valid_to")
    issue_date = _date(fields[8], "issue_date")
    if issue_date < birth.earliest or valid_to < birth.earliest:
        raise QrError("the card's dates are before the date of birth", field="issue_date")
    manager_code = _short(fields[9], "manager_code")
    parent_name = _hex_text(fields[10], "parent_name", required=False, limit=MAX_NAME_CHARS)
    area_code = _short(fields[11], "area_code")
    five = fields[12].strip()
    five_years_from = _date(five, "five_years_from") if five and five != "-" else None
    checksum = fields[13].strip()
    if not _CHECKSUM.fullmatch(checksum):
        raise QrError(f"{checksum!r} is not a checksum like 'xxxx-xxxx'", field="checksum")
    return BhytCard(
        card_number=card_number, full_name=full_name, birth_date=birth, sex=sex,
        address=address, facility=facility, valid_from=valid_from, valid_to=valid_to,
        issue_date=issue_date, manager_code=manager_code, parent_name=parent_name,
        area_code=area_code, five_years_from=five_years_from, checksum=checksum,
        extra_fields=tuple(f.strip() for f in fields[MIN_FIELDS:]), raw=text)


def format_bhyt(card_number: str, full_name: str, date_of_birth: BirthDate | date, sex: Sex,
                address: str, facility: str, valid_from: date, valid_to: date,
                issue_date: date, *, manager_code: str = "4", parent_name: str | None = None,
                area_code: str = "", five_years_from: date | None = None,
                checksum: str = "a1b2-c3d4") -> str:
    """Write a BHYT card QR (the inverse of :func:`parse_bhyt`, for tests and simulators)."""
    birth = date_of_birth if isinstance(date_of_birth, BirthDate) else \
        BirthDate.of(date_of_birth)
    dob = (f"{birth.day:02d}/{birth.month:02d}/{birth.year}" if birth.day and birth.month
           else birth.qr_text())

    def dmy(value: date) -> str:
        return value.strftime("%d/%m/%Y")

    parts = [card_number, full_name.encode().hex(), dob, "1" if sex is Sex.MALE else "2",
             address.encode().hex(), facility, dmy(valid_from), dmy(valid_to), dmy(issue_date),
             manager_code, parent_name.encode().hex() if parent_name else "-", area_code,
             dmy(five_years_from) if five_years_from else "", checksum, TERMINATOR]
    return "|".join(parts)

"""The TD1 machine-readable zone on the back of the card (ICAO 9303-5 §4.2, docs/cccd.md §3).

Three lines of 30 characters::

    IDVNM3030012342079303001234<<2
    0305152F2805151VNM<<<<<<<<<<<0
    NGUYEN<<THI<MAI<<<<<<<<<<<<<<<

A date of birth whose day or month is unknown is written with filler characters for the unknown
parts (``55<<<<``, ``5509<<``; ICAO 9303-3) and kept as a
:class:`~edge_agent.cccd.dates.BirthDate`; its check digit is computed over the field as printed.

Every check digit is verified (ICAO 9303-3 §4.9, weights 7-3-1), including the Vietnam-specific
check digit of the 12-digit ID number at line 1 position 30 and the composite check digit. An
error names the failing field.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from edge_agent.cccd.dates import BirthDate, yymmdd_to_date
from edge_agent.cccd.errors import MrzError
from edge_agent.cccd.id_number import PersonalIdNumber, Sex, parse_id_number
from edge_agent.icao.check_digit import check_digit, mrz_information

__all__ = ["NO_EXPIRY", "Td1Mrz", "build_td1", "check_digit", "mrz_information", "mrz_name",
           "parse_td1", "split_lines"]

LINE_LENGTH = 30
NO_EXPIRY = "991231"
"""Written as the date of expiry on cards that never expire (docs/cccd.md §3)."""

_LINE = re.compile(r"[A-Z0-9<]{30}")


@dataclass(frozen=True, slots=True)
class Td1Mrz:
    """A parsed, fully checked TD1 MRZ."""

    document_code: str
    issuing_state: str
    document_number: str
    id_number: PersonalIdNumber | None
    optional_data_1: str
    date_of_birth: date
    sex: Sex | None
    date_of_expiry: date | None
    nationality: str
    optional_data_2: str
    surname: str
    given_names: str
    lines: tuple[str, str, str]
    birth_date: BirthDate
    """What the MRZ says of the date of birth; ``date_of_birth`` is its first possible day."""

    @property
    def date_of_expiry_yymmdd(self) -> str:
        return self.lines[1][8:14]

    @property
    def date_of_birth_yymmdd(self) -> str:
        return self.lines[1][0:6]

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect mrz``."""
        return {
            "document_code": self.document_code,
            "issuing_state": self.issuing_state,
            "document_number": self.document_number,
            "id_number": self.id_number.value if self.id_number else None,
            "date_of_birth": self.birth_date.isoformat(),
            "date_of_birth_known": self.birth_date.precision.value,
            "sex": self.sex.value if self.sex else None,
            "date_of_expiry": self.date_of_expiry.isoformat() if self.date_of_expiry else None,
            "nationality": self.nationality,
            "surname": self.surname,
            "given_names": self.given_names,
        }


def _require_check(data: str, digit: str, field: str) -> None:
    if not digit.isdigit():
        raise MrzError(f"check digit {digit!r} is not a digit", field=field)
    expected = check_digit(data)
    if digit != expected:
        raise MrzError(f"check digit is {digit}, computed {expected} over {data!r}", field=field)


def _clean(text: str) -> str:
    return text.replace("<", " ").strip()


def split_lines(text: str) -> tuple[str, str, str]:
    """Split a TD1 MRZ given as one 90-character string or three lines."""
    parts = text.split()
    if len(parts) == 1 and len(parts[0]) == 3 * LINE_LENGTH:
        blob = parts[0]
        return blob[0:30], blob[30:60], blob[60:90]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise MrzError("expected three lines of 30 characters or one of 90", field="mrz")


def parse_td1(line1: str, line2: str, line3: str, *, today: date | None = None) -> Td1Mrz:
    """Parse and check a TD1 MRZ; raises :class:`MrzError` naming the failing field."""
    lines = (line1, line2, line3)
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise MrzError("must be text", field=f"line{number}")
        if len(line) != LINE_LENGTH:
            raise MrzError(f"has {len(line)} characters, expected 30", field=f"line{number}")
        if not _LINE.fullmatch(line):
            bad = next(c for c in line if not ("A" <= c <= "Z" or (c.isdigit() and c.isascii())
                                                or c == "<"))
            raise MrzError(f"character {bad!r} is not allowed (A-Z, 0-9, <)",
                           field=f"line{number}")

    document_code = line1[0:2]
    if document_code[0] not in "AIC":
        raise MrzError(f"{document_code!r} is not a TD1 document code (A, C or I)",
                       field="document_code")
    issuing_state = line1[2:5]
    if "<" in issuing_state.rstrip("<") or issuing_state == "<<<":
        raise MrzError(f"{issuing_state!r} is not a state code", field="issuing_state")

    # Document number (ICAO 9303-5 §4.2.2: longer numbers continue in the optional data).
    if line1[14] == "<":
        rest = line1[15:30]
        end = rest.find("<")
        if end < 1:
            raise MrzError("long document number has no check digit", field="document_number")
        document_number = line1[5:14] + rest[: end - 1]
        number_field = document_number
        doc_check = rest[end - 1]
        optional_1 = rest[end:]
    else:
        number_field = line1[5:14]
        document_number = number_field.rstrip("<")
        doc_check = line1[14]
        optional_1 = line1[15:30]
    _require_check(number_field, doc_check, "document_number_check")
    if not document_number:
        raise MrzError("is empty", field="document_number")

    # Vietnam: the 12-digit ID in positions 16-27, '<<', then its check digit at position 30.
    id_number: PersonalIdNumber | None = None
    vietnamese = issuing_state == "VNM" and line1[14] != "<"
    if vietnamese:
        raw_id = line1[15:27]
        if not raw_id.isdigit():
            raise MrzError(f"{raw_id!r} is not a 12-digit ID number", field="id_number")
        if line1[27:29] != "<<":
            raise MrzError(f"positions 28-29 are {line1[27:29]!r}, expected '<<'",
                           field="optional_data")
        _require_check(raw_id, line1[29], "id_number_check")
        if raw_id[3:] != document_number:
            raise MrzError(
                f"document number {document_number!r} is not the last 9 digits of the ID number",
                field="document_number",
            )

    # Line 2.
    dob_text, dob_check = line2[0:6], line2[6]
    dob_parts = _birth_parts(dob_text)
    _require_check(dob_text, dob_check, "date_of_birth_check")
    sex_char = line2[7]
    if sex_char not in "MF<":
        raise MrzError(f"{sex_char!r} is not M, F or <", field="sex")
    sex = None if sex_char == "<" else Sex(sex_char)
    doe_text, doe_check = line2[8:14], line2[14]
    _require_check(doe_text, doe_check, "date_of_expiry_check")
    nationality = line2[15:18]
    if "<" in nationality.rstrip("<") or nationality == "<<<":
        raise MrzError(f"{nationality!r} is not a nationality code", field="nationality")
    optional_2 = line2[18:29]
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    _require_check(composite, line2[29], "composite_check")

    # Century of the birth date: from the ID number when there is one, else ICAO's rule of thumb.
    reference = today or date.today()
    yy, month, day = dob_parts
    if vietnamese:
        century = 1900 + 100 * (int(line1[18]) // 2)
        if yy is None:  # the whole date unknown: the year is the ID number's (docs/cccd.md §1)
            yy = int(line1[19:21])
    elif yy is None:
        raise MrzError(f"{dob_text!r} gives no year of birth", field="date_of_birth")
    else:
        century = 2000 if 2000 + yy <= reference.year else 1900
    if day is not None and month is not None:
        full = yymmdd_to_date(dob_text, century, "date_of_birth", MrzError)
        birth_date = BirthDate.of(full)
    else:
        birth_date = BirthDate(century + yy, month, None)
    date_of_birth = birth_date.earliest
    if vietnamese:
        try:
            id_number = parse_id_number(line1[15:27], date_of_birth=birth_date, sex=sex)
        except Exception as exc:  # IdNumberError: re-raise as an MRZ field error
            field = getattr(exc, "field", None) or "id_number"
            raise MrzError(getattr(exc, "reason", str(exc)), field=field) from None

    if doe_text == NO_EXPIRY:
        date_of_expiry = None
    else:
        date_of_expiry = yymmdd_to_date(doe_text, 2000, "date_of_expiry", MrzError)
        if date_of_expiry < date_of_birth:
            raise MrzError("date of expiry is before the date of birth", field="date_of_expiry")

    # Line 3: SURNAME<<GIVEN<NAMES.
    name = line3.rstrip("<")
    if not name:
        raise MrzError("name is empty", field="name")
    if any(c.isdigit() for c in name):
        raise MrzError("name contains digits", field="name")
    surname, _, given = name.partition("<<")
    return Td1Mrz(
        document_code=document_code.rstrip("<"),
        issuing_state=issuing_state,
        document_number=document_number,
        id_number=id_number,
        optional_data_1=optional_1,
        date_of_birth=date_of_birth,
        sex=sex,
        date_of_expiry=date_of_expiry,
        nationality=nationality,
        optional_data_2=optional_2,
        surname=_clean(surname),
        given_names=_clean(given),
        lines=lines,
        birth_date=birth_date,
    )


_BIRTH = re.compile(r"(\d{2}|<<)(\d{2}|<<)(\d{2}|<<)")


def _birth_parts(text: str) -> tuple[int | None, int | None, int | None]:
    """``YYMMDD`` with unknown parts as ``<<``: (yy, month, day), None for what is unknown."""
    match = _BIRTH.fullmatch(text)
    if match is None:
        raise MrzError(f"{text!r} is not a date in the form YYMMDD (unknown parts '<<')",
                       field="date_of_birth")
    yy, month, day = (None if g == "<<" else int(g) for g in match.groups())
    if (yy is None and month is not None) or (month is None and day is not None):
        raise MrzError(f"{text!r} gives a day or month without what precedes it",
                       field="date_of_birth")
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        raise MrzError(f"{text!r} is not a calendar date", field="date_of_birth")
    return yy, month, day


def mrz_name(text: str) -> str:
    """A name as the MRZ writes it: upper case, no diacritics, ``<`` for spaces (9303-3 §6)."""
    plain = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    ascii_only = "".join(c for c in plain if not unicodedata.combining(c))
    return "<".join(re.sub(r"[^A-Z]+", " ", ascii_only.upper()).split())


def build_td1(
    id_number: str, date_of_birth: date | BirthDate, sex: Sex, date_of_expiry: date | None,
    surname: str, given_names: str,
) -> tuple[str, str, str]:
    """Write a Vietnamese TD1 MRZ (the inverse of :func:`parse_td1`, for tests and tools)."""
    document_number = id_number[3:]
    line1 = ("IDVNM" + document_number + check_digit(document_number) + id_number + "<<"
             + check_digit(id_number))
    doe = "991231" if date_of_expiry is None else date_of_expiry.strftime("%y%m%d")
    dob = (date_of_birth.mrz_text() if isinstance(date_of_birth, BirthDate)
           else date_of_birth.strftime("%y%m%d"))
    head2 = dob + check_digit(dob) + sex.value + doe + check_digit(doe) + "VNM"
    head2 = head2.ljust(29, "<")
    composite = line1[5:30] + head2[0:7] + head2[8:15] + head2[18:29]
    line2 = head2 + check_digit(composite)
    name = mrz_name(surname) + "<<" + mrz_name(given_names)
    line3 = name[:30].ljust(30, "<")
    return line1, line2, line3

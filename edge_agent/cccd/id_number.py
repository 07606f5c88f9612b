"""The 12-digit personal ID number (số định danh cá nhân), docs/cccd.md §1.

Layout ``PPP G YY RRRRRR``: PPP birth-registration province, G century and sex, YY the last two
digits of the birth year, RRRRRR random. PPP is informative (unknown codes allowed); G and YY are
checked against the date of birth and sex when those are known.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import Enum

from edge_agent.cccd.dates import BirthDate
from edge_agent.cccd.errors import IdNumberError
from edge_agent.cccd.provinces import province_name
from wire.masking import mask_id


class Sex(Enum):
    """Sex as written in the MRZ (ICAO 9303-3 §4.6)."""

    MALE = "M"
    FEMALE = "F"

    @classmethod
    def from_vietnamese(cls, text: str) -> Sex | None:
        """``Nam`` → male, ``Nữ`` → female (NFC, case-insensitive); None otherwise."""
        folded = unicodedata.normalize("NFC", text.strip()).casefold()
        return {"nam": cls.MALE, "nữ": cls.FEMALE}.get(folded)


@dataclass(frozen=True, slots=True)
class PersonalIdNumber:
    """A validated 12-digit personal ID number."""

    value: str

    @property
    def province_code(self) -> str:
        return self.value[:3]

    @property
    def province_name(self) -> str | None:
        """Informative province of birth registration; None for codes not in the table."""
        return province_name(self.province_code)

    @property
    def century(self) -> int:
        """First year of the birth century: 1900, 2000, 2100, 2200 or 2300."""
        return 1900 + 100 * (int(self.value[3]) // 2)

    @property
    def sex(self) -> Sex:
        return Sex.MALE if int(self.value[3]) % 2 == 0 else Sex.FEMALE

    @property
    def birth_year(self) -> int:
        return self.century + int(self.value[4:6])

    @property
    def document_number(self) -> str:
        """The card's document number: the last 9 digits (docs/cccd.md §2)."""
        return self.value[3:]

    @property
    def can(self) -> str:
        """The PACE card access number: the last 6 digits (docs/cccd.md §2)."""
        return self.value[6:]

    @property
    def masked(self) -> str:
        return mask_id(self.value)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"PersonalIdNumber({self.masked!r})"


def parse_id_number(
    text: str, *, date_of_birth: date | BirthDate | None = None, sex: Sex | None = None
) -> PersonalIdNumber:
    """Validate a 12-digit personal ID number, optionally against a date of birth and sex.

    Only the year of the date of birth is compared (century digit and ``YY``), so a partial date
    of birth (year only, or month and year) is checked as fully as a complete one.
    """
    if not isinstance(text, str):
        raise IdNumberError("must be text", field="id_number")
    if len(text) != 12:
        raise IdNumberError(f"must be 12 digits, got {len(text)} characters", field="id_number")
    if not (text.isascii() and text.isdigit()):
        raise IdNumberError("must contain digits only", field="id_number")
    number = PersonalIdNumber(text)
    if date_of_birth is not None:
        if date_of_birth.year // 100 * 100 != number.century:
            raise IdNumberError(
                f"century digit {text[3]} means born {number.century}-{number.century + 99}, "
                f"but the date of birth is in {date_of_birth.year}",
                field="id_number.century",
            )
        if date_of_birth.year % 100 != int(text[4:6]):
            raise IdNumberError(
                f"birth-year digits {text[4:6]} do not match the date of birth "
                f"{date_of_birth.isoformat()}",
                field="id_number.birth_year",
            )
    if sex is not None and sex is not number.sex:
        raise IdNumberError(
            f"sex digit {text[3]} means {number.sex.value}, but the sex given is {sex.value}",
            field="id_number.sex",
        )
    return number

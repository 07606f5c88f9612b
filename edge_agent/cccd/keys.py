"""Key material for opening the chip: the PACE CAN and BAC key candidates (docs/cccd.md §2, §6).

PACE with the CAN needs only the ID number and is preferred. BAC needs the date of expiry, which
the card QR does not carry: it is derived from the date of birth and the issue date under the
renewal rules of Law 59/2014 (renew at 25, 40, 60) and Law 26/2023 (renew at 14, 25, 40, 60; in
force from 1 July 2024). A card issued less than two years before a milestone is valid until the
next one; a card issued within two years of 60 or later never expires (``991231``). Where the
rule is ambiguous several candidates are returned, most likely first.

A partial date of birth (year, or month and year, known: docs/cccd.md §5) leaves the birthday in
the milestone year unknown. The expiry is then derived for the first possible day of the known
period (1 January or the 1st of the month: the assumption of
:class:`~edge_agent.cccd.dates.BirthDate`) and, as further candidates, for the last possible
day. The BAC date of birth is the MRZ field as printed, unknown parts as filler ``<`` (ICAO
9303-3), and its check digit is computed over those characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from edge_agent.cccd.dates import BirthDate, add_years, to_yymmdd
from edge_agent.cccd.id_number import PersonalIdNumber
from edge_agent.cccd.mrz import NO_EXPIRY, mrz_information

LAW_2014_MILESTONES = (25, 40, 60)
LAW_2023_MILESTONES = (14, 25, 40, 60)
LAW_2023_IN_FORCE = date(2024, 7, 1)
TRANSITION_MARGIN_DAYS = 183
"""Cards issued this close to 1 July 2024 may have been personalised under either law."""


@dataclass(frozen=True, slots=True)
class BacKey:
    """The three MRZ fields BAC derives its keys from (ICAO 9303-11 §4.3.1)."""

    document_number: str
    date_of_birth: str
    date_of_expiry: str

    @property
    def mrz_information(self) -> str:
        return mrz_information(self.document_number, self.date_of_birth, self.date_of_expiry)

    def to_json(self) -> dict[str, str]:
        return {
            "document_number": self.document_number,
            "date_of_birth": self.date_of_birth,
            "date_of_expiry": self.date_of_expiry,
        }


def pace_can(id_number: PersonalIdNumber) -> str:
    """The PACE card access number: the last 6 digits of the ID number (docs/cccd.md §2)."""
    return id_number.can


def _expiry(dob: date, issued: date, milestones: tuple[int, ...], *, feb29: str,
            boundary_inclusive: bool) -> date | None:
    """The expiry rule of docs/cccd.md §6 for one law and one reading of its edge cases."""
    for age in milestones:
        birthday = add_years(dob, age, feb29=feb29)
        limit = add_years(birthday, -2, feb29=feb29)
        if issued < limit or (boundary_inclusive and issued == limit):
            return birthday
    return None


def expiry_candidates(date_of_birth: date | BirthDate, issue_date: date) -> list[date | None]:
    """Possible dates of expiry (None: the card never expires), most likely first.

    Order: the law in force on the issue date with the plain rule; then the other law when the
    issue date is within :data:`TRANSITION_MARGIN_DAYS` of 1 July 2024; then the readings of an
    issue date exactly two years before a milestone, and of 29 February birthdays (28 February
    or 1 March in a common year). For a partial date of birth, the candidates of its first
    possible day come first, then those of its last possible day (see the module docstring).
    """
    if isinstance(date_of_birth, BirthDate):
        found: list[date | None] = []
        days = [date_of_birth.earliest]
        if date_of_birth.latest != date_of_birth.earliest:
            days.append(date_of_birth.latest)
        for day in days:
            for value in expiry_candidates(day, issue_date):
                if value not in found:
                    found.append(value)
        return found
    primary, other = (
        (LAW_2023_MILESTONES, LAW_2014_MILESTONES)
        if issue_date >= LAW_2023_IN_FORCE
        else (LAW_2014_MILESTONES, LAW_2023_MILESTONES)
    )
    laws = [primary]
    if abs((issue_date - LAW_2023_IN_FORCE).days) <= TRANSITION_MARGIN_DAYS:
        laws.append(other)
    leap_day = date_of_birth.month == 2 and date_of_birth.day == 29
    candidates: list[date | None] = []
    for milestones in laws:
        for boundary_inclusive in (False, True):
            for feb29 in ("feb28", "mar1") if leap_day else ("feb28",):
                value = _expiry(date_of_birth, issue_date, milestones, feb29=feb29,
                                boundary_inclusive=boundary_inclusive)
                if value not in candidates:
                    candidates.append(value)
    return candidates


def bac_candidates(id_number: PersonalIdNumber, date_of_birth: date | BirthDate,
                   issue_date: date) -> list[BacKey]:
    """BAC keys to try in order, from what a card QR gives (docs/cccd.md §6)."""
    document_number = id_number.document_number
    dob = (date_of_birth.mrz_text() if isinstance(date_of_birth, BirthDate)
           else to_yymmdd(date_of_birth))
    return [
        BacKey(document_number, dob, NO_EXPIRY if expiry is None else to_yymmdd(expiry))
        for expiry in expiry_candidates(date_of_birth, issue_date)
    ]

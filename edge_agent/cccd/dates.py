"""Date forms found on CCCD cards, QR codes and MRZs.

``ddmmyyyy`` (card QR), ``dd/mm/yyyy`` (DG13, 6-field QR variant), ``YYYY-MM-DD`` (personal QR)
and ``YYMMDD`` (MRZ, ICAO 9303-3 §4.5: the century is not written and must come from context).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from edge_agent.cccd.errors import CccdError

_DDMMYYYY = re.compile(r"(\d{2})(\d{2})(\d{4})")
_DD_MM_YYYY = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_YYMMDD = re.compile(r"(\d{2})(\d{2})(\d{2})")


def _make(year: int, month: int, day: int, text: str, field: str, error: type[CccdError]) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise error(f"{text!r} is not a calendar date", field=field) from None


def parse_ddmmyyyy(text: str, field: str, error: type[CccdError], *, slashes: bool = False) -> date:
    """Parse ``ddmmyyyy`` (or ``dd/mm/yyyy`` as well when ``slashes``)."""
    match = _DDMMYYYY.fullmatch(text)
    if match is None and slashes:
        match = _DD_MM_YYYY.fullmatch(text)
    if match is None:
        form = "ddmmyyyy or dd/mm/yyyy" if slashes else "ddmmyyyy"
        raise error(f"{text!r} is not a date in the form {form}", field=field)
    day, month, year = (int(g) for g in match.groups())
    return _make(year, month, day, text, field, error)


def parse_iso(text: str, field: str, error: type[CccdError]) -> date:
    """Parse ``YYYY-MM-DD``."""
    match = _ISO.fullmatch(text)
    if match is None:
        raise error(f"{text!r} is not a date in the form YYYY-MM-DD", field=field)
    year, month, day = (int(g) for g in match.groups())
    return _make(year, month, day, text, field, error)


def split_yymmdd(text: str, field: str, error: type[CccdError]) -> tuple[int, int, int]:
    """Split ``YYMMDD`` into numbers, checking only the shape and month/day ranges."""
    match = _YYMMDD.fullmatch(text)
    if match is None:
        raise error(f"{text!r} is not a date in the form YYMMDD", field=field)
    yy, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise error(f"{text!r} is not a calendar date", field=field)
    return yy, month, day


def yymmdd_to_date(text: str, century: int, field: str, error: type[CccdError]) -> date:
    """``YYMMDD`` with an explicit century start year (1900, 2000...)."""
    yy, month, day = split_yymmdd(text, field, error)
    return _make(century + yy, month, day, text, field, error)


def to_yymmdd(value: date) -> str:
    """The MRZ form of a date."""
    return value.strftime("%y%m%d")


def add_years(value: date, years: int, *, feb29: str = "feb28") -> date:
    """The same day ``years`` later; 29 February falls on 28 February or 1 March (``feb29``)."""
    try:
        return value.replace(year=value.year + years)
    except ValueError:
        if feb29 == "mar1":
            return date(value.year + years, 3, 1)
        return date(value.year + years, 2, 28)


class DatePrecision(StrEnum):
    """Which parts of a date of birth are known."""

    YEAR = "year"
    MONTH = "month"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class BirthDate:
    """A date of birth whose day, or day and month, may be unknown (docs/cccd.md §5).

    Card QRs write such dates ``yyyy`` or ``mmyyyy``, DG13 ``yyyy`` or ``mm/yyyy`` (sometimes
    with ``00`` for the unknown parts) and the MRZ writes the unknown parts as filler ``<``
    (ICAO 9303-3). Nothing is invented: :attr:`full` is None unless the day is known. Where a
    single date is needed (age bands, the expiry rule), the documented assumption is the *first*
    possible day of the known period (1 January, or the 1st of the month): :attr:`earliest`.
    """

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year {self.year} is out of range")
        if self.day is not None and self.month is None:
            raise ValueError("a day without a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} is out of range")
        if self.day is not None:
            date(self.year, self.month or 1, self.day)  # raises ValueError if not a date

    @classmethod
    def of(cls, value: date) -> BirthDate:
        """A fully known date."""
        return cls(value.year, value.month, value.day)

    @property
    def precision(self) -> DatePrecision:
        if self.day is not None:
            return DatePrecision.DAY
        return DatePrecision.MONTH if self.month is not None else DatePrecision.YEAR

    @property
    def is_full(self) -> bool:
        return self.day is not None

    @property
    def full(self) -> date | None:
        """The date when day and month are known, else None."""
        return date(self.year, self.month or 1, self.day) if self.day is not None else None

    @property
    def earliest(self) -> date:
        """The first possible day (the assumption used where one date is needed)."""
        return date(self.year, self.month or 1, self.day or 1)

    @property
    def latest(self) -> date:
        """The last possible day."""
        if self.day is not None:
            return self.earliest
        if self.month is None:
            return date(self.year, 12, 31)
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def isoformat(self) -> str:
        """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (ISO 8601 reduced precision)."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def qr_text(self) -> str:
        """The card QR's form: ``yyyy``, ``mmyyyy`` or ``ddmmyyyy``."""
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.month:02d}{self.year:04d}"
        return f"{self.day:02d}{self.month:02d}{self.year:04d}"

    def mrz_text(self) -> str:
        """The MRZ's ``YYMMDD`` with unknown parts as filler (``55<<<<``, ``5509<<``)."""
        month = "<<" if self.month is None else f"{self.month:02d}"
        day = "<<" if self.day is None else f"{self.day:02d}"
        return f"{self.year % 100:02d}{month}{day}"

    def age_on(self, on: date) -> int:
        """Completed years on ``on``, assuming the first possible birthday (see the class)."""
        born = self.earliest
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    def agrees_with(self, other: BirthDate | date) -> bool:
        """True when the parts both know are equal (``1955`` agrees with ``1955-03-02``)."""
        if isinstance(other, date):
            other = BirthDate.of(other)
        if self.year != other.year:
            return False
        if self.month is not None and other.month is not None and self.month != other.month:
            return False
        return self.day is None or other.day is None or self.day == other.day


_BIRTH_FORMS = (
    (re.compile(r"(\d{4})"), "y"),
    (re.compile(r"(\d{2})(\d{4})"), "my"),
    (re.compile(r"(\d{2})/(\d{4})"), "my"),
    (re.compile(r"(\d{2})(\d{2})(\d{4})"), "dmy"),
    (re.compile(r"(\d{2})/(\d{2})/(\d{4})"), "dmy"),
)


def parse_birth_date(text: str, field: str, error: type[CccdError]) -> BirthDate:
    """A possibly partial date of birth: ``yyyy``, ``mmyyyy``, ``mm/yyyy``, ``ddmmyyyy`` or
    ``dd/mm/yyyy``; ``00`` stands for an unknown day or month (``00/00/1955`` = ``1955``)."""
    for pattern, order in _BIRTH_FORMS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        parts = dict(zip(order, (int(g) for g in match.groups()), strict=True))
        year, month, day = parts["y"], parts.get("m") or None, parts.get("d") or None
        if day is not None and month is None:
            raise error(f"{text!r} gives a day but no month", field=field)
        if year == 0:
            raise error(f"{text!r} has no year", field=field)
        try:
            return BirthDate(year, month, day)
        except ValueError:
            raise error(f"{text!r} is not a calendar date", field=field) from None
    raise error(f"{text!r} is not a date of birth in the form yyyy, mmyyyy, ddmmyyyy or "
                "dd/mm/yyyy", field=field)

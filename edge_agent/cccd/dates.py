"""Date forms found on CCCD cards, QR codes and MRZs.

``ddmmyyyy`` (card QR), ``dd/mm/yyyy`` (DG13, 6-field QR variant), ``YYYY-MM-DD`` (personal QR)
and ``YYMMDD`` (MRZ, ICAO 9303-3 §4.5: the century is not written and must come from context).
"""

from __future__ import annotations

import re
from datetime import date

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

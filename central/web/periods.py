"""Reporting periods (docs/cccd.md §10): week, statistical month (15th → 14th), calendar month,
half-year, year (calendar or statistical, cut off on the 14th), and custom ranges.

A :class:`Period` is a range of Vietnam-time dates, both ends inclusive; :meth:`Period.utc_bounds`
gives the half-open UTC instants ``[start, end)`` to compare against rollup hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from central.web.errors import BadRequest
from central.web.timeutil import day_start_utc, local_today

PERIOD_KINDS = ("week", "stat_month", "month", "half", "stat_half", "year", "stat_year",
                "custom")
MAX_CUSTOM_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """Dates ``first`` … ``last`` (inclusive, Vietnam time) of a named period kind."""

    kind: str
    first: date
    last: date

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """``[start, end)`` in UTC."""
        return day_start_utc(self.first), day_start_utc(self.last + timedelta(days=1))

    @property
    def label(self) -> str:
        """``dd/mm/yyyy – dd/mm/yyyy``."""
        return f"{self.first:%d/%m/%Y} – {self.last:%d/%m/%Y}"


def _month_shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def _last_of_month(year: int, month: int) -> date:
    ny, nm = _month_shift(year, month, 1)
    return date(ny, nm, 1) - timedelta(days=1)


def week(ref: date) -> Period:
    """The ISO week (Monday → Sunday) holding ``ref``."""
    first = ref - timedelta(days=ref.weekday())
    return Period("week", first, first + timedelta(days=6))


def stat_month(ref: date) -> Period:
    """The statistical month holding ``ref``: the 15th of one month → the 14th of the next.

    It is named after the month it ends in: ``ref`` = 20 March → 15 March … 14 April
    ("April"); ``ref`` = 14 March → 15 February … 14 March.
    """
    if ref.day >= 15:
        first = date(ref.year, ref.month, 15)
        ey, em = _month_shift(ref.year, ref.month, 1)
        return Period("stat_month", first, date(ey, em, 14))
    sy, sm = _month_shift(ref.year, ref.month, -1)
    return Period("stat_month", date(sy, sm, 15), date(ref.year, ref.month, 14))


def month(ref: date) -> Period:
    """The calendar month holding ``ref``."""
    return Period("month", date(ref.year, ref.month, 1), _last_of_month(ref.year, ref.month))


def half(ref: date) -> Period:
    """The calendar half-year: 1 Jan → 30 Jun or 1 Jul → 31 Dec."""
    if ref.month <= 6:
        return Period("half", date(ref.year, 1, 1), date(ref.year, 6, 30))
    return Period("half", date(ref.year, 7, 1), date(ref.year, 12, 31))


def stat_half(ref: date) -> Period:
    """The statistical half-year (report due before 14 June / 14 December):
    15 Dec → 14 Jun, or 15 Jun → 14 Dec."""
    if date(ref.year, 6, 15) <= ref <= date(ref.year, 12, 14):
        return Period("stat_half", date(ref.year, 6, 15), date(ref.year, 12, 14))
    if ref >= date(ref.year, 12, 15):
        return Period("stat_half", date(ref.year, 12, 15), date(ref.year + 1, 6, 14))
    return Period("stat_half", date(ref.year - 1, 12, 15), date(ref.year, 6, 14))


def year(ref: date) -> Period:
    """The calendar year."""
    return Period("year", date(ref.year, 1, 1), date(ref.year, 12, 31))


def stat_year(ref: date) -> Period:
    """The statistical year: 15 Dec of the previous year → 14 Dec."""
    if ref >= date(ref.year, 12, 15):
        return Period("stat_year", date(ref.year, 12, 15), date(ref.year + 1, 12, 14))
    return Period("stat_year", date(ref.year - 1, 12, 15), date(ref.year, 12, 14))


def custom(first: date, last: date) -> Period:
    """An on-demand range; at most :data:`MAX_CUSTOM_DAYS` days, ``first`` ≤ ``last``."""
    if last < first:
        raise BadRequest("to: must not be before from")
    if (last - first).days > MAX_CUSTOM_DAYS:
        raise BadRequest(f"to: a custom range is at most {MAX_CUSTOM_DAYS} days")
    return Period("custom", first, last)


_BUILDERS = {"week": week, "stat_month": stat_month, "month": month, "half": half,
             "stat_half": stat_half, "year": year, "stat_year": stat_year}


EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
"""Dates a query may name: the periods around them (a statistical year starts in the previous
December) and their UTC bounds must stay inside what ``datetime`` can hold (a 400, not a 500)."""


DMY_RE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_dmy(text: str) -> date:
    """``dd/mm/yyyy`` (as forms show dates) or ``YYYY-MM-DD`` (links, the API) → date;
    :class:`ValueError` with the reason otherwise (31/02/2025 is not a date; a date outside
    :data:`EARLIEST` … :data:`LATEST` is refused, so its period stays inside ``datetime``)."""
    text = text.strip()
    match = DMY_RE.match(text)
    try:
        if match is not None:
            value = date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        elif ISO_RE.match(text):
            value = date.fromisoformat(text)
        else:
            raise ValueError(f"{text!r}: expected dd/mm/yyyy")
    except ValueError as exc:
        if "expected" in str(exc):
            raise
        raise ValueError(f"{text!r} is not a calendar date") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"{text!r}: a date from {EARLIEST:%d/%m/%Y} to {LATEST:%d/%m/%Y}")
    return value


def parse_date(text: str | None, name: str) -> date | None:
    """``dd/mm/yyyy`` or ``YYYY-MM-DD`` → date; empty → None; anything else, or a date outside
    :data:`EARLIEST` … :data:`LATEST`, → :class:`BadRequest` naming the parameter and the
    reason."""
    if not text:
        return None
    try:
        return parse_dmy(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def display_date(text: object) -> str:
    """A date (or its ISO text) as ``dd/mm/yyyy`` for a form field; other text unchanged."""
    if isinstance(text, date):
        return f"{text:%d/%m/%Y}"
    value = str(text or "")
    if ISO_RE.match(value):
        try:
            return f"{date.fromisoformat(value):%d/%m/%Y}"
        except ValueError:
            return value
    return value


def resolve(kind: str | None, ref: str | None = None, first: str | None = None,
            last: str | None = None, today: date | None = None) -> Period:
    """The period a request names (``period``, ``date``, ``from``, ``to`` parameters).

    Defaults: ``stat_month`` around today (Vietnam time).
    """
    kind = kind or "stat_month"
    if kind not in PERIOD_KINDS:
        raise BadRequest(f"period: one of {', '.join(PERIOD_KINDS)}")
    if kind == "custom":
        f, t = parse_date(first, "from"), parse_date(last, "to")
        if f is None or t is None:
            raise BadRequest("from, to: both required for a custom period")
        return custom(f, t)
    day = parse_date(ref, "date") or today or local_today()
    return _BUILDERS[kind](day)

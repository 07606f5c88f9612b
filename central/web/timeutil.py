"""Time helpers: the database holds UTC; pages show Vietnam time (UTC+07:00, no DST)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

VN = timezone(timedelta(hours=7), "ICT")


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; naive values (SQLite gives them back) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def local(value: datetime | None) -> datetime | None:
    """``value`` in Vietnam time, or None."""
    return None if value is None else as_utc(value).astimezone(VN)


def fmt_local(value: datetime | None, pattern: str = "%d/%m/%Y %H:%M") -> str:
    """Vietnam-time text of ``value`` (empty for None)."""
    loc = local(value)
    return "" if loc is None else loc.strftime(pattern)


def local_today(now: datetime | None = None) -> date:
    """Today's date in Vietnam."""
    return as_utc(now or utcnow()).astimezone(VN).date()


def day_start_utc(day: date) -> datetime:
    """00:00 Vietnam time of ``day``, in UTC."""
    return datetime.combine(day, time(0, 0), VN).astimezone(UTC)


"""Reporting periods (docs/cccd.md §10) and the i18n table: pure functions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from central.web import periods
from central.web.errors import BadRequest
from central.web.i18n import STRINGS, translate
from wire.masking import mask_id


def test_statistical_month_runs_15th_to_14th() -> None:
    p = periods.stat_month(date(2025, 3, 14))
    assert (p.first, p.last) == (date(2025, 2, 15), date(2025, 3, 14))
    p = periods.stat_month(date(2025, 3, 15))
    assert (p.first, p.last) == (date(2025, 3, 15), date(2025, 4, 14))
    p = periods.stat_month(date(2025, 1, 3))
    assert (p.first, p.last) == (date(2024, 12, 15), date(2025, 1, 14))
    p = periods.stat_month(date(2025, 12, 20))
    assert (p.first, p.last) == (date(2025, 12, 15), date(2026, 1, 14))


def test_utc_bounds_are_vietnam_midnights() -> None:
    start, end = periods.stat_month(date(2025, 3, 1)).utc_bounds()
    assert start == datetime(2025, 2, 14, 17, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 14, 17, 0, tzinfo=UTC)


def test_half_years_and_years() -> None:
    assert periods.half(date(2025, 6, 30)).last == date(2025, 6, 30)
    assert periods.half(date(2025, 7, 1)).first == date(2025, 7, 1)
    p = periods.stat_half(date(2025, 6, 14))
    assert (p.first, p.last) == (date(2024, 12, 15), date(2025, 6, 14))
    p = periods.stat_half(date(2025, 6, 15))
    assert (p.first, p.last) == (date(2025, 6, 15), date(2025, 12, 14))
    p = periods.stat_half(date(2025, 12, 15))
    assert (p.first, p.last) == (date(2025, 12, 15), date(2026, 6, 14))
    assert periods.year(date(2024, 2, 29)).last == date(2024, 12, 31)
    p = periods.stat_year(date(2025, 12, 14))
    assert (p.first, p.last) == (date(2024, 12, 15), date(2025, 12, 14))


def test_week_and_month() -> None:
    p = periods.week(date(2025, 1, 1))  # a Wednesday
    assert (p.first, p.last) == (date(2024, 12, 30), date(2025, 1, 5))
    p = periods.month(date(2024, 2, 10))
    assert (p.first, p.last) == (date(2024, 2, 1), date(2024, 2, 29))


def test_custom_range_and_errors() -> None:
    p = periods.resolve("custom", first="2025-01-01", last="2025-01-31")
    assert (p.first, p.last) == (date(2025, 1, 1), date(2025, 1, 31))
    with pytest.raises(BadRequest, match="to"):
        periods.resolve("custom", first="2025-02-01", last="2025-01-31")
    with pytest.raises(BadRequest, match="from, to"):
        periods.resolve("custom", first="2025-02-01")
    with pytest.raises(BadRequest, match="period"):
        periods.resolve("fortnight")
    # forms show and take dd/mm/yyyy whatever the browser's locale; links keep ISO dates
    assert periods.resolve("week", ref="01/02/2025") == periods.resolve("week", ref="2025-02-01")
    with pytest.raises(BadRequest, match="date: '31/02/2025' is not a calendar date"):
        periods.resolve("week", ref="31/02/2025")
    with pytest.raises(BadRequest, match="date: '02-01-2025': expected dd/mm/yyyy"):
        periods.resolve("week", ref="02-01-2025")
    assert periods.display_date("2025-02-01") == "01/02/2025"
    assert periods.display_date("01/02/2025") == "01/02/2025"
    assert periods.resolve(None, today=date(2025, 5, 20)).kind == "stat_month"


def test_masking_keeps_last_four_digits() -> None:
    assert mask_id("079303001234") == "********1234"
    assert mask_id("") == ""


def test_every_template_key_is_translated_in_both_languages() -> None:
    templates = Path(__file__).resolve().parents[2] / "central" / "web" / "templates"
    used: set[str] = set()
    for path in templates.rglob("*.html"):
        used |= set(re.findall(r"""_\(\s*["']([a-z0-9_.\-]+)["']\s*\)""", path.read_text()))
    missing = sorted(k for k in used if k not in STRINGS)
    assert not missing, missing
    for key, (vi, en) in STRINGS.items():
        assert vi and en, key
    assert translate("nav.dashboard", "vi") == "Tổng quan"
    assert translate("nav.dashboard", "en") == "Dashboard"


def test_dynamic_keys_are_translated() -> None:
    from central.db.models import Role, SiteKind, UnitLevel
    from central.readside import METHODS
    from central.web.periods import PERIOD_KINDS
    from central.web.reports import METRICS

    keys = [f"method.{m}" for m in METHODS] + [f"kind.{k.value}" for k in SiteKind]
    keys += [f"role.{r.value}" for r in Role] + [f"level.{u.value}" for u in UnitLevel]
    keys += [f"period.{p}" for p in PERIOD_KINDS] + [f"metric.{m}" for m in METRICS]
    keys += [f"rep.via.{m}" for m in METRICS] + ["sex.M", "sex.F"]
    from central.readside import NOTICE_STATES
    from central.web.views_stays import STATUSES

    keys += [f"stay.status.{s}" for s in (*STATUSES, *NOTICE_STATES)]
    keys += [f"rep.kind.{k}" for k in ("unit", "site", "total")]
    keys += [f"reason.{r}" for r in ("treatment", "caregiver", "tourism", "business", "study",
                                     "family", "other")]
    keys += [f"state.{s}" for s in ("online", "offline", "unknown")]
    assert [k for k in keys if k not in STRINGS] == []

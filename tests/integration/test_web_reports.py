"""Reports: period boundaries (statistical month, half-year, custom), unit aggregation,
ratios and targets, XLSX and CSV."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from central.db.models import Device, Rollup, Target
from central.web.periods import resolve
from central.web.reports import build_report
from central.web.security import Scope
from tests.web_support import World, login, make_world

EVERYTHING = Scope(True, frozenset(), frozenset())


def _visit(hour_utc: datetime, method: str, people: int, kind: str = "visit",
           site: str = "bv-hue", insurance: str | None = None) -> Rollup:
    if insurance is None:  # insured: a valid lookup, or the paper card at the desk
        insurance = {"visit": "valid", "manual:visit": "paper-card"}.get(kind, "")
    return Rollup(site_id=site, hour=hour_utc, kind=kind, method=method, age_band="",
                  sex="", birth_province="", insurance=insurance, people=people,
                  events=people)


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    with w.maker() as db:
        db.add_all([
            # 2025-02-14 23:00 local: before the statistical month 15/02 → 14/03
            _visit(datetime(2025, 2, 14, 16, tzinfo=UTC), "chip", 1000),
            # 2025-02-15 00:00 local: first hour inside
            _visit(datetime(2025, 2, 14, 17, tzinfo=UTC), "chip", 30),
            _visit(datetime(2025, 2, 20, 3, tzinfo=UTC), "manual", 20, "manual:visit"),
            # 2025-03-14 23:00 local: last hour inside
            _visit(datetime(2025, 3, 14, 16, tzinfo=UTC), "vneid-qr", 50),
            # not insured visits (uninsured, gateway down, not asked, a manual child count)
            # are outside the insured-visit ratio
            _visit(datetime(2025, 3, 1, 3, tzinfo=UTC), "chip", 7, insurance="invalid"),
            _visit(datetime(2025, 3, 1, 3, tzinfo=UTC), "card-qr", 5, insurance="unknown"),
            _visit(datetime(2025, 3, 1, 3, tzinfo=UTC), "chip", 3, insurance="not-checked"),
            _visit(datetime(2025, 3, 1, 3, tzinfo=UTC), "manual", 2, "manual:visit",
                   insurance=""),
            # 2025-03-15 00:00 local: after
            _visit(datetime(2025, 3, 14, 17, tzinfo=UTC), "manual", 500, "manual:visit"),
            # heritage in the commune below district 474, and in Hà Nội
            _visit(datetime(2025, 3, 1, 2, tzinfo=UTC), "card-qr", 9, "entry", "hue-dai-noi"),
            _visit(datetime(2025, 3, 1, 2, tzinfo=UTC), "manual", 1, "manual:entry",
                   "hue-dai-noi"),
            _visit(datetime(2025, 3, 1, 2, tzinfo=UTC), "chip", 4, "entry", "van-mieu"),
        ])
        db.add(Target(unit_id=w.units["474"], metric="hospital_cccd", value=0.5))
        dev = db.get(Device, "gate-van-mieu-01")
        assert dev is not None
        dev.revoked = True
        db.commit()
    return w


def _table(report: object, metric: str) -> dict[str, tuple[int, int, float | None, bool | None]]:
    tables = {t.metric: t for t in report.tables}  # type: ignore[attr-defined]
    return {("TOTAL" if r.is_total else r.code): (r.total, r.via, r.target, r.met)
            for r in tables[metric].rows}


def test_statistical_month_boundaries_and_aggregation(world: World) -> None:
    period = resolve("stat_month", "2025-03-10")
    with world.maker() as db:
        from central.db.models import Unit

        province = db.get(Unit, world.units["046"])
        report = build_report(db, EVERYTHING, period, province)
    hosp = _table(report, "hospital_cccd")
    assert hosp["474"] == (100, 80, 0.5, True)  # 30 chip + 50 VNeID of 100 visits
    assert hosp["481"] == (0, 0, 0.8, None)
    assert hosp["TOTAL"] == (100, 80, 0.8, True)  # exactly 80% meets "≥ 80%"
    heritage = _table(report, "heritage_cccd")
    assert heritage["474"][:2] == (10, 9)  # the commune's site rolls up into its district
    equipped = _table(report, "sites_equipped")
    # equipped is a period figure: the hotel sent nothing in this statistical month
    assert equipped["TOTAL"] == (3, 2, 1.0, False)


def test_root_report_and_targets(world: World) -> None:
    with world.maker() as db:
        report = build_report(db, EVERYTHING, resolve("stat_month", "2025-03-10"), None)
    equipped = _table(report, "sites_equipped")
    # Văn Miếu's device is revoked today, but it sent events in March 2025: equipped then
    assert equipped["001"] == (1, 1, 1.0, True)
    assert equipped["TOTAL"] == (4, 3, 1.0, False)
    heritage = _table(report, "heritage_cccd")
    assert heritage["TOTAL"][:2] == (14, 13) and heritage["TOTAL"][2] is None


def test_half_year_and_custom(world: World) -> None:
    with world.maker() as db:
        h1 = build_report(db, EVERYTHING, resolve("half", "2025-03-01"), None)
        custom = build_report(db, EVERYTHING,
                              resolve("custom", first="2025-03-15", last="2025-03-15"), None)
        stat_half = build_report(db, EVERYTHING, resolve("stat_half", "2025-03-01"), None)
    assert _table(h1, "hospital_cccd")["TOTAL"][:2] == (1600, 1080)
    assert _table(custom, "hospital_cccd")["TOTAL"][:2] == (500, 0)
    assert _table(stat_half, "hospital_cccd")["TOTAL"][:2] == (1600, 1080)


def test_stays_notified_ratio(world: World) -> None:
    with world.maker() as db:
        report = build_report(db, EVERYTHING, resolve("year", world.today.isoformat()), None)
    stays = _table(report, "stays_notified")
    total, via, target, met = stays["TOTAL"]
    assert (total, target, met) == (3, 1.0, False) and via == 1


def test_report_pages_and_exports(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    page = c.get("/reports/?period=stat_month&date=2025-03-10").get_data(as_text=True)
    assert "15/02/2025 – 14/03/2025" in page
    assert "80.0%" in page and "Đạt" in page
    assert "Hà Nội" not in page  # outside the province
    r = c.get("/reports/export.xlsx?period=stat_month&date=2025-03-10")
    ws = load_workbook(io.BytesIO(r.data)).active
    values = [[cell.value for cell in row] for row in ws.iter_rows(min_row=8)]
    # numbers are numbers (the ratio a fraction shown as a percentage)
    assert any(v[4] == 100 and v[5] == 80 and v[8] == pytest.approx(0.8) for v in values)
    assert ws["B2"].value == "Thừa Thiên Huế" and ws["B4"].value == "tinh"
    assert 'filename="bao_cao_046_2025-02-15_2025-03-14.xlsx"' in r.headers[
        "Content-Disposition"]
    r = c.get("/reports/export.csv?period=custom&from=2025-02-15&to=2025-03-14")
    text = r.data.decode("utf-8-sig")
    assert "Tỷ lệ" in text.splitlines()[0] and ",100,80,,,80.0%,80.0%" in text
    assert c.get("/reports/?period=custom&from=2025-03-02&to=2025-03-01").status_code == 400
    data = c.get("/api/v1/reports?period=stat_month&date=2025-03-10").get_json()
    assert data["period"]["first"] == "2025-02-15" and data["period"]["last"] == "2025-03-14"
    assert data["period"]["start"] == "2025-02-14T17:00:00Z"

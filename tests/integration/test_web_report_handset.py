"""Reports and notices on a small data set whose figures were worked out by hand.

November 2026 (custom period 01/11/2026 – 30/11/2026), province 046 "Thừa Thiên Huế":

* Đại Nội Huế (heritage, commune 19927 under Thành phố Huế 474): 10 chip + 6 manual
  entries = 16 gate entries, 10 by CCCD.
* Lăng Tự Đức (heritage, attached directly to the province): 5 card QR + 2 manual = 7, 5 by
  CCCD.
* Huyện Phú Vang (481): no heritage site → 0.
  Province: 16 + 0 + 7 = 23 entries, 10 + 0 + 5 = 15 by CCCD.
* Bệnh viện Trung ương Huế (hospital attached to 474 directly): 4 insured chip visits + 1
  paper card = 5 insured visits, 4 by CCCD (+ 3 uninsured visits outside the ratio).
* Sites equipped in November (an accepted event in the period): Đại Nội, Lăng Tự Đức and the
  hospital; not Khách sạn Phú Vang (nothing sent) → 474: 2 of 2, 481: 0 of 1, Lăng Tự Đức
  1 of 1 → province 3 of 4.
* Stays at Khách sạn Phú Vang in November: A notified on time, B notified 32 days late, C
  never notified (overdue) → 3 stays, 1 on time, 1 late, 1 overdue.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from central.at_rest import encrypt_personal
from central.counting import stay_deadline
from central.db.models import AuditLog, Stay
from central.web import views_stays
from tests.web_support import (
    DATA_KEY,
    STAY_B,
    STAY_C,
    World,
    csrf,
    export_stays,
    login,
    make_world,
    seed_november,
    view_personal,
)
from tests.web_support import (
    NOV_H as H,
)

NOV = "period=custom&from=01/11/2026&to=30/11/2026"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    seed_november(w)
    return w


def _client(world: World, user: str) -> FlaskClient:
    c = world.app.test_client()
    assert login(c, user).status_code == 302
    return c


def _rows(page: str, table: str) -> dict[str, list[str]]:
    """``data-code`` → the numeric cells of each row of a table."""
    start = page.index(f'id="{table}"')
    body = page[start:page.index("</table>", start)]
    out = {}
    for match in re.finditer(r'<tr class="(\w+)" data-code="([^"]*)">(.*?)</tr>', body, re.S):
        kind, code, cells = match.groups()
        nums = re.findall(r'<td class="num">([^<]*)</td>', cells)
        out["TOTAL" if kind == "total" else code] = nums
    return out


def test_province_rows_add_up_and_drill_down(world: World) -> None:
    c = _client(world, "tinh")
    page = c.get(f"/reports/?{NOV}").get_data(as_text=True)
    heritage = _rows(page, "table-heritage_cccd")
    assert heritage["474"][:2] == ["16", "10"]
    assert heritage["481"][:2] == ["0", "0"]
    assert heritage["lang-tu-duc"][:2] == ["7", "5"]  # attached directly to the province
    assert heritage["TOTAL"][:2] == ["23", "15"]  # 16 + 0 + 7, 10 + 0 + 5
    assert heritage["TOTAL"][2] == "65.2%"
    equipped = _rows(page, "table-sites_equipped")
    assert equipped["474"][:2] == ["2", "2"] and equipped["481"][:2] == ["1", "0"]
    assert equipped["lang-tu-duc"][:2] == ["1", "1"] and equipped["TOTAL"][:2] == ["4", "3"]
    hospital = _rows(page, "table-hospital_cccd")
    assert hospital["TOTAL"][:3] == ["5", "4", "80.0%"]
    stays = _rows(page, "table-stays_notified")
    # total, on time, late, overdue, ratio
    assert stays["481"][:5] == ["3", "1", "1", "1", "33.3%"]
    assert stays["TOTAL"][:5] == ["3", "1", "1", "1", "33.3%"]
    per_site = _rows(page, "sites-heritage_cccd")
    assert per_site == {"hue-dai-noi": per_site["hue-dai-noi"],
                        "lang-tu-duc": per_site["lang-tu-duc"]}
    assert per_site["hue-dai-noi"][:2] == ["16", "10"]
    # drill down: province → Thành phố Huế → Phường Phú Hậu → the site
    unit_474 = world.units["474"]
    assert f"unit={unit_474}" in page
    district = c.get(f"/reports/?{NOV}&unit={unit_474}").get_data(as_text=True)
    assert _rows(district, "table-heritage_cccd") == {
        "19927": ["16", "10", "62.5%", "—"], "TOTAL": ["16", "10", "62.5%", "—"]}
    hosp = _rows(district, "table-hospital_cccd")
    assert hosp["bv-hue"][:2] == ["5", "4"] and hosp["TOTAL"][:2] == ["5", "4"]
    assert 'id="report-path"' in district and "Thừa Thiên Huế" in district
    commune = c.get(f"/reports/?{NOV}&unit={world.units['19927']}").get_data(as_text=True)
    rows = _rows(commune, "table-heritage_cccd")
    assert set(rows) == {"hue-dai-noi", "TOTAL"}  # the site, not the commune twice
    assert 'href="/sites/hue-dai-noi"' in commune


def test_site_staff_see_their_site_labelled_with_it(world: World) -> None:
    c = _client(world, "diem")
    page = c.get(f"/reports/?{NOV}").get_data(as_text=True)
    assert '<span id="report-title">Đại Nội Huế</span>' in page
    rows = _rows(page, "table-heritage_cccd")
    assert rows["hue-dai-noi"][:2] == ["16", "10"] and rows["TOTAL"][:2] == ["16", "10"]
    assert "Phường Phú Hậu" not in page.split('id="table-heritage_cccd"')[1].split("</table>")[0]
    api = c.get("/api/v1/reports?period=custom&from=2026-11-01&to=2026-11-30").get_json()
    heritage = next(t for t in api["tables"] if t["metric"] == "heritage_cccd")
    assert [(r["kind"], r["total"]) for r in heritage["rows"]] == [("site", 16), ("total", 16)]


def test_submitted_report_is_frozen_and_versioned(world: World) -> None:
    c = _client(world, "tinh")
    token = csrf(c, "/reports/")
    r = c.post("/reports/submit", data={"csrf_token": token, "period": "custom",
                                        "from": "01/11/2026", "to": "30/11/2026"})
    assert r.status_code == 302
    first = r.headers["Location"]
    frozen = c.get(first + ".json").get_json()
    stays = next(t for t in frozen["report"]["tables"] if t["metric"] == "stays_notified")
    assert (stays["rows"][-1]["via"], stays["rows"][-1]["overdue"]) == (1, 1)
    xlsx_before = c.get(first + ".xlsx").data
    # the overdue stay is marked notified today: the live report changes, the snapshot not
    r = c.post(f"/stays/{STAY_C}/notify", data={"csrf_token": csrf(c, "/stays/"),
                                                 "reference": "TB-2026-0099"})
    assert r.status_code == 302
    live = _rows(c.get(f"/reports/?{NOV}").get_data(as_text=True), "table-stays_notified")
    assert live["TOTAL"][:4] == ["3", "1", "2", "0"]  # now late, not overdue
    again = c.get(first + ".json").get_json()
    assert again["report"] == frozen["report"]
    assert c.get(first + ".xlsx").data == xlsx_before
    ws = load_workbook(io.BytesIO(xlsx_before)).active
    assert ws["B2"].value == "Thừa Thiên Huế" and ws["C5"].value == "Phiên bản 1"
    r = c.post("/reports/submit", data={"csrf_token": csrf(c, "/reports/"),
                                        "period": "custom", "from": "01/11/2026",
                                        "to": "30/11/2026"})
    second = c.get(r.headers["Location"] + ".json").get_json()
    assert second["version"] == 2
    listing = c.get("/reports/snapshots").get_data(as_text=True)
    assert listing.count("01/11/2026 – 30/11/2026") == 2
    # another province's officer cannot read it
    assert _client(world, "hanoi").get(first + ".json").status_code == 403


def test_bulk_marking_after_an_export_records_reference_and_lateness(world: World) -> None:
    c = _client(world, "tinh")
    r = export_stays(c, "xlsx", "site=ks-phu-vang&from=01/11/2026&to=30/11/2026")
    ws = load_workbook(io.BytesIO(r.data))["DS_KHACH_VIET_NAM_LUU_TRU"]
    assert ws.max_row == 5  # only C: A and B were notified already
    assert [ws.cell(row=5, column=i).value for i in (11, 12, 13)] == [
        "Thừa Thiên Huế", "Xã Phú Thượng", "Thôn 3"]
    page = c.get("/stays/").get_data(as_text=True)
    assert 'id="last-export"' in page and "1 lượt chưa thông báo" in page
    with world.maker() as db:
        export = db.scalars(select(AuditLog).where(
            AuditLog.action == "stays.export.xlsx")).one()
    bad = c.post("/stays/notify", data={"csrf_token": csrf(c, "/stays/"),
                                        "export_id": str(export.id), "reference": "=1+1"})
    assert bad.status_code == 400 and "reference:" in bad.get_data(as_text=True)
    future = c.post("/stays/notify", data={"csrf_token": csrf(c, "/stays/"),
                                           "export_id": str(export.id), "reference": "TB-1",
                                           "notified_at": "01/01/2099 08:00"})
    assert future.status_code == 400 and "in the future" in future.get_data(as_text=True)
    ok = c.post("/stays/notify", data={"csrf_token": csrf(c, "/stays/"),
                                       "export_id": str(export.id), "reference": "TB-2026-7",
                                       "notified_at": "12/11/2026 22:30"})
    assert ok.status_code == 302
    with world.maker() as db:
        stay = db.get(Stay, STAY_C)
        assert stay is not None and stay.notice_ref == "TB-2026-7"
        # arrived 12/11 10:00, deadline 12/11 23:00, filed 22:30: on time
        assert stay.notified_at is not None
        assert stay.notified_at.replace(tzinfo=UTC) == datetime(2026, 11, 12, 15, 30,
                                                                tzinfo=UTC)
    personal = view_personal(c, f"{STAY_C}").get_data(as_text=True)
    assert "TB-2026-7" in personal and "người đánh dấu tinh" in personal
    csv_export = export_stays(c, "csv", "status=all")
    assert csv_export.headers["Content-Type"] == "text/csv; charset=utf-8"
    on_time = c.get("/stays/?status=on_time&from=01/11/2026&to=30/11/2026").get_data(
        as_text=True)
    assert on_time.count('class="badge notified"') == 2
    late = c.get("/stays/?status=late").get_data(as_text=True)
    assert late.count('class="badge late"') == 1
    stays = _rows(c.get(f"/reports/?{NOV}").get_data(as_text=True), "table-stays_notified")
    assert stays["TOTAL"][:5] == ["3", "2", "1", "0", "66.7%"]
    # the hanoi officer cannot mark a stay of Huế
    h = _client(world, "hanoi")
    r = h.post("/stays/notify", data={"csrf_token": csrf(h, "/stays/"), "stay_ids": STAY_B,
                                      "reference": "X1"})
    assert r.status_code == 403


def test_police_export_per_establishment_departure_and_no_silent_cut(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _client(world, "tinh")
    with world.maker() as db:  # a second establishment with a pending stay
        db.add(Stay(stay_id="0190b000-0000-7000-8000-0000000000dd", site_id="bv-hue",
                    device_id="desk-bv-hue-01", started_at=H, deadline_at=stay_deadline(H),
                    personal_sealed=encrypt_personal(DATA_KEY, "0190b000-0000-7000-8000-"
                                                     "0000000000dd", {"full_name": "X",
                                                                      "id_number": "1"})))
        db.commit()
    r = export_stays(c, "xlsx", "status=all&from=01/11/2026&to=30/11/2026")
    assert r.mimetype == "application/zip"
    names = sorted(zipfile.ZipFile(io.BytesIO(r.data)).namelist())
    assert names == ["bv-hue_tblt_vn_import.xlsx", "ks-phu-vang_tblt_vn_import.xlsx"]
    book = zipfile.ZipFile(io.BytesIO(r.data)).read("ks-phu-vang_tblt_vn_import.xlsx")
    ws = load_workbook(io.BytesIO(book))["DS_KHACH_VIET_NAM_LUU_TRU"]
    assert ws["A2"].value == "Cơ sở lưu trú: Khách sạn Phú Vang"
    first = [ws.cell(row=5, column=i).value for i in range(1, 20)]
    assert first[13] == "10/11/2026" and first[14] == "11/11/2026"  # arrival, actual departure
    assert first[18] == "Đã trả phòng / ra viện lúc 11/11/2026 12:00"
    monkeypatch.setattr(views_stays, "EXPORT_LIMIT", 2)
    refused = export_stays(c, "xlsx", "status=all&from=01/11/2026&to=30/11/2026")
    assert refused.status_code == 400
    assert "4 stays match, at most 2" in refused.get_data(as_text=True)


def test_trends_side_by_side_methods_hospital_ratio_and_in_patients(world: World) -> None:
    with world.maker() as db:  # two in-patients in Khoa Nội 3, one discharged
        for n, ended in ((1, None), (2, None), (3, H + timedelta(days=2))):
            stay_id = f"0190b000-0000-7000-8000-0000000000e{n}"
            db.add(Stay(stay_id=stay_id, site_id="bv-hue", device_id="desk-bv-hue-01",
                        started_at=H, ended_at=ended, deadline_at=stay_deadline(H),
                        ward_or_room="Khoa Nội 3", notified_at=H,
                        personal_sealed=encrypt_personal(DATA_KEY, stay_id, {})))
        db.commit()
    c = _client(world, "tinh")
    page = c.get(f"/reports/trends?{NOV}").get_data(as_text=True)

    def row(table: str, day: str) -> list[str]:
        body = page[page.index(f'id="{table}"'):]
        match = re.search(rf'<tr data-day="{day}">(.*?)</tr>', body, re.S)
        assert match, (table, day)
        return re.findall(r'<td class="num">([^<]*)</td>', match.group(1))

    # sites by name: Bệnh viện, Khách sạn Phú Vang, Lăng Tự Đức, Đại Nội Huế; then the total
    assert row("trend-sites", "2026-11-10") == ["8", "0", "7", "16", "31"]
    assert row("trend-sites", "2026-11-11") == ["0", "0", "0", "0", "0"]
    assert page.count('<tr data-day="2026-11-') == 30 * 2 + 30  # sites, methods, hospital
    # chip, card QR, VNeID, BHYT card QR, manual
    assert row("trend-methods", "2026-11-10") == ["17", "5", "0", "0", "9"]
    assert row("trend-hospitals", "2026-11-10") == ["4 / 5 (80.0%)"]
    assert "Khoa Nội 3</td><td class=\"num\">2</td>" in page
    weekly = c.get(f"/reports/trends?{NOV}&by=week").get_data(as_text=True)
    assert weekly.count('<tr data-day="') == 6 * 3  # weeks of Mondays 26/10 … 30/11
    assert '<tr data-day="2026-11-09"><td>09/11/2026</td>' in weekly
    assert c.get(f"/reports/trends?{NOV}&by=month").status_code == 400


def test_site_staff_submit_their_own_report(world: World) -> None:
    c = _client(world, "diem")
    r = c.post("/reports/submit", data={"csrf_token": csrf(c, "/reports/"),
                                        "period": "custom", "from": "01/11/2026",
                                        "to": "30/11/2026"})
    assert r.status_code == 302
    snap = c.get(r.headers["Location"] + ".json").get_json()
    assert snap["report"]["title"] == "Đại Nội Huế" and snap["version"] == 1
    heritage = next(t for t in snap["report"]["tables"] if t["metric"] == "heritage_cccd")
    assert heritage["rows"][-1]["total"] == 16
    # the province's officer covers the site and reads it; Hà Nội's does not
    assert _client(world, "tinh").get(r.headers["Location"] + ".json").status_code == 200
    assert _client(world, "hanoi").get(r.headers["Location"] + ".json").status_code == 403
    assert "Đại Nội Huế" in c.get("/reports/snapshots").get_data(as_text=True)

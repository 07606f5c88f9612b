"""Headless Chromium walks every role through the collector's pages on one known data set and
checks each figure on screen against numbers worked out by hand (Vietnamese UI, the default).

The data set is tests/web_support.py ``seed`` (today's traffic) + ``seed_november`` (November
2026, figures in tests/integration/test_web_report_handset.py) + four stays at the hospital
admitted on 28/10/2026 (outside November: the November notice figures do not move) and a
hospital staff user. Hand-computed figures:

Today (``seed``; Vietnam date), arrivals = entry + visit + manual:entry + manual:visit:

* Đại Nội Huế: chip 50 + card QR 20 + VNeID 10 + manual 10 = 90 entries, 5 exits,
  occupancy 95 of capacity 100.
* Bệnh viện Trung ương Huế: chip 40 + VNeID 20 + manual 40 = 100 visits, no occupancy.
* District officer ``huyen`` (Thành phố Huế: the commune with Đại Nội, and the hospital
  attached directly): 90 + 100 = 190 arrivals, 5 exits, occupancy 95 / 100; chip 50 + 40 =
  90, card QR 20, VNeID 10 + 20 = 30, BHYT QR 0, manual 10 + 40 = 50 (sum 190). Khách sạn Phú
  Vang is not in the district: no overdue stays on its dashboard.

November 2026 (01/11 – 30/11):

* ``huyen``'s report: heritage row Phường Phú Hậu 16 / 10 (62.5 %) = total; hospital row
  (attached directly) 5 insured / 4 by CCCD (80.0 %) = total; sites equipped: the commune 1 of
  1, the hospital 1 of 1, total 2 of 2 (100.0 %); no stays.
* Site staff ``diem`` (Đại Nội Huế): report titled "Đại Nội Huế", heritage 16 / 10 (62.5 %).
* Hospital staff ``benhvien`` (Bệnh viện Trung ương Huế): insured visits 4 valid chip + 1
  paper card = 5, 4 by CCCD → 80.0 %; the 3 uninsured chip visits are outside the ratio but
  arrivals: trends on 10/11 show 4 + 1 + 3 = 8 arrivals (chip 7, manual 1) and "4 / 5
  (80.0%)"; every other day 0. In-patients now: Khoa Nội 3 → 2 (the third was discharged),
  Khoa Ngoại 1 → 1.
* Notices at Khách sạn Phú Vang: November A on time, B late, C overdue → 3, 1 on time, 1 late,
  1 overdue, 33.3 %. Today's seed stays: one notified before its deadline (on time), one from
  yesterday overdue, one due → register: on time 2, late 1, overdue 2, due 1. After the export
  (only C is pending in November) and the bulk marking of that export filed at 12/11/2026 22:30
  (C arrived 12/11 10:00, deadline 23:00: on time): 3, 2, 1, 0, 66.7 % in the live report; the
  snapshot submitted before keeps 3, 1, 1, 1, 33.3 %. The province's dashboard counts 2
  overdue notices (yesterday's guest and C), then 1.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook  # type: ignore[import-untyped]
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select
from werkzeug.serving import make_server

from central.at_rest import encrypt_personal
from central.counting import stay_deadline
from central.db.models import AuditLog, Role, Site, Stay, User
from central.web.security import hash_password, make_hasher
from tests.browser.chromium import launch_chromium
from tests.web_support import (
    DATA_KEY,
    PASSWORD,
    STAY_A,
    STAY_B,
    STAY_C,
    World,
    make_world,
    now_utc,
    seed_november,
)

NOV = "period=custom&from=01/11/2026&to=30/11/2026"
ADMITTED = datetime(2026, 10, 28, 3, tzinfo=UTC)
"""28/10/2026 10:00 Vietnam time: the in-patients' admission, before November."""
IN_PATIENTS = (("0190b000-0000-7000-8000-0000000000f1", "Khoa Nội 3", None),
               ("0190b000-0000-7000-8000-0000000000f2", "Khoa Nội 3", None),
               ("0190b000-0000-7000-8000-0000000000f3", "Khoa Ngoại 1", None),
               ("0190b000-0000-7000-8000-0000000000f4", "Khoa Nội 3",
                ADMITTED + timedelta(days=2)))
FORBIDDEN = "Bạn không có quyền xem trang này."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, str]]:
    world = make_world(tmp_path_factory.mktemp("roles"), SSE_POLL_SECONDS=0.5,
                       SSE_MAX_SECONDS=20)
    seed_november(world)
    with world.maker() as db:
        hospital = db.get(Site, "bv-hue")
        assert hospital is not None
        db.add(User(username="benhvien", role=Role.SITE, created_at=now_utc(), active=True,
                    password_hash=hash_password(PASSWORD, make_hasher(1, 1024, 1)),
                    language="vi", failed_logins=0, sites=[hospital]))
        for stay_id, ward, ended in IN_PATIENTS:
            db.add(Stay(stay_id=stay_id, site_id="bv-hue", device_id="desk-bv-hue-01",
                        started_at=ADMITTED, ended_at=ended,
                        deadline_at=stay_deadline(ADMITTED),
                        notified_at=ADMITTED + timedelta(hours=1), ward_or_room=ward,
                        personal_sealed=encrypt_personal(DATA_KEY, stay_id, {})))
        db.commit()
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield world, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) for each role."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1100}, accept_downloads=True)
    try:
        yield ctx
    finally:
        ctx.close()


def _login(context: BrowserContext, base: str, username: str) -> Page:
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Tên đăng nhập").fill(username)
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    expect(page.get_by_label("Mật khẩu")).to_have_count(0)
    return page


def _cells(page: Page, table: str, code: str) -> list[str]:
    row = page.locator(f'#{table} tr[data-code="{code}"]')
    return [t.strip() for t in row.locator("td.num").all_inner_texts()]


def _total(page: Page, table: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#{table} tr.total td.num").all_inner_texts()]


def _codes(page: Page, table: str) -> list[str]:
    return [c or "" for c in page.locator(f"#{table} tbody tr:not(.total)").evaluate_all(
        "rows => rows.map(r => r.dataset.code)")]


def _rows_add_up(page: Page, table: str, columns: int) -> None:
    """On screen, the first ``columns`` figures of the rows sum to the total's."""
    rows = page.locator(f"#{table} tbody tr:not(.total)")
    sums = [0] * columns
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td.num").all_inner_texts()
        for c in range(columns):
            sums[c] += int(cells[c].strip())
    assert [str(n) for n in sums] == _total(page, table)[:columns], table


def _refused(page: Page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 403, url
    expect(page.locator("p.error")).to_have_text(FORBIDDEN)


def _show_november(page: Page, base: str) -> None:
    """Type the period in the report form, dd/mm/yyyy."""
    page.goto(f"{base}/reports/")
    page.locator('select[name="period"]').select_option("custom")
    page.locator('form.filters input[name="from"]').fill("01/11/2026")
    page.locator('form.filters input[name="to"]').fill("30/11/2026")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.locator("#period-label")).to_have_text("01/11/2026 – 30/11/2026")


def test_district_officer(served: tuple[World, str], context: BrowserContext) -> None:
    world, base = served
    page = _login(context, base, "huyen")
    expect(page.get_by_role("heading", name="Tổng quan trực tiếp")).to_be_visible()
    for element, figure in (("total-entries", "190"), ("total-exits", "5"),
                            ("total-occupancy", "95"), ("entries-hue-dai-noi", "90"),
                            ("entries-bv-hue", "100"), ("exits-hue-dai-noi", "5"),
                            ("occ-hue-dai-noi", "95"), ("method-chip", "90"),
                            ("method-card-qr", "20"), ("method-vneid-qr", "30"),
                            ("method-bhyt-qr", "0"), ("method-manual", "50")):
        expect(page.locator(f"#{element}")).to_have_text(figure)
    expect(page.locator("#entries-ks-phu-vang")).to_have_count(0)  # Phú Vang: not theirs
    expect(page.locator("#live")).to_contain_text("Đại Nội Huế — 95 / 100")  # capacity alert
    expect(page.locator("#live")).not_to_contain_text("Khách sạn Phú Vang")
    _show_november(page, base)
    expect(page.locator("#report-title")).to_have_text("Thành phố Huế")
    assert _codes(page, "table-heritage_cccd") == ["19927"]
    assert _cells(page, "table-heritage_cccd", "19927")[:3] == ["16", "10", "62.5%"]
    assert _total(page, "table-heritage_cccd")[:3] == ["16", "10", "62.5%"]
    assert _cells(page, "table-hospital_cccd", "bv-hue")[:3] == ["5", "4", "80.0%"]
    assert _total(page, "table-hospital_cccd")[:3] == ["5", "4", "80.0%"]
    assert _cells(page, "table-sites_equipped", "19927")[:2] == ["1", "1"]
    assert _cells(page, "table-sites_equipped", "bv-hue")[:2] == ["1", "1"]
    assert _total(page, "table-sites_equipped")[:3] == ["2", "2", "100.0%"]
    assert _total(page, "table-stays_notified")[:4] == ["0", "0", "0", "0"]
    for table in ("heritage_cccd", "hospital_cccd", "sites_equipped", "stays_notified"):
        _rows_add_up(page, f"table-{table}", 2)
    # per-site rows: every site of the district the table concerns
    assert _codes(page, "sites-heritage_cccd") == ["hue-dai-noi"]
    assert _cells(page, "sites-heritage_cccd", "hue-dai-noi")[:2] == ["16", "10"]
    assert _codes(page, "sites-hospital_cccd") == ["bv-hue"]
    assert _cells(page, "sites-hospital_cccd", "bv-hue")[:2] == ["5", "4"]
    assert sorted(_codes(page, "sites-sites_equipped")) == ["bv-hue", "hue-dai-noi"]
    # drill down: the commune, then its site
    page.locator('#table-heritage_cccd tr[data-code="19927"] a').click()
    expect(page.locator("#report-title")).to_have_text("Phường Phú Hậu")
    expect(page.locator("#report-path")).to_contain_text("Thành phố Huế")
    assert _codes(page, "table-heritage_cccd") == ["hue-dai-noi"]
    assert _cells(page, "table-heritage_cccd", "hue-dai-noi")[:3] == ["16", "10", "62.5%"]
    page.locator('#table-heritage_cccd tr[data-code="hue-dai-noi"] a').click()
    expect(page.get_by_role("heading", name="Đại Nội Huế")).to_be_visible()
    expect(page.locator("#total-entries")).to_have_text("90")
    expect(page.locator("#total-exits")).to_have_text("5")
    page.screenshot(path="/tmp/central-roles-district.png", full_page=True)
    # the next district, its hotel and the province are not theirs
    _refused(page, f"{base}/reports/?{NOV}&unit={world.units['481']}")
    _refused(page, f"{base}/reports/?{NOV}&unit={world.units['046']}")
    _refused(page, f"{base}/sites/ks-phu-vang")
    _refused(page, f"{base}/audit/")


def test_heritage_site_staff(served: tuple[World, str], context: BrowserContext) -> None:
    world, base = served
    page = _login(context, base, "diem")
    for element, figure in (("total-entries", "90"), ("total-exits", "5"),
                            ("total-occupancy", "95"), ("entries-hue-dai-noi", "90"),
                            ("method-chip", "50"), ("method-card-qr", "20"),
                            ("method-vneid-qr", "10"), ("method-manual", "10")):
        expect(page.locator(f"#{element}")).to_have_text(figure)
    expect(page.locator("#entries-bv-hue")).to_have_count(0)
    _show_november(page, base)
    expect(page.locator("#report-title")).to_have_text("Đại Nội Huế")
    expect(page.locator('select[name="unit"]')).to_have_count(0)  # no units to choose
    assert _codes(page, "table-heritage_cccd") == ["hue-dai-noi"]
    row = page.locator('#table-heritage_cccd tr[data-code="hue-dai-noi"]')
    expect(row.locator("td").first).to_contain_text("Đại Nội Huế")
    assert _cells(page, "table-heritage_cccd", "hue-dai-noi")[:3] == ["16", "10", "62.5%"]
    assert _total(page, "table-heritage_cccd")[:3] == ["16", "10", "62.5%"]
    assert _total(page, "table-sites_equipped")[:3] == ["1", "1", "100.0%"]
    assert _total(page, "table-hospital_cccd")[:2] == ["0", "0"]
    expect(page.locator("#table-heritage_cccd")).not_to_contain_text("Phường Phú Hậu")
    # their site's commune names the site only; the district above is refused
    page.goto(f"{base}/reports/?{NOV}&unit={world.units['19927']}")
    expect(page.locator("#report-title")).to_have_text("Đại Nội Huế")
    assert _codes(page, "table-heritage_cccd") == ["hue-dai-noi"]
    assert _total(page, "table-heritage_cccd")[:2] == ["16", "10"]
    for path in ("/sites/bv-hue", "/sites/lang-tu-duc", "/sites/van-mieu",
                 f"/reports/?{NOV}&unit={world.units['474']}", "/people/search",
                 "/audit/", "/admin/sites"):
        _refused(page, base + path)


def test_hospital_staff(served: tuple[World, str], context: BrowserContext) -> None:
    _world, base = served
    page = _login(context, base, "benhvien")
    for element, figure in (("total-entries", "100"), ("total-occupancy", "0"),
                            ("method-chip", "40"), ("method-vneid-qr", "20"),
                            ("method-manual", "40"), ("method-card-qr", "0")):
        expect(page.locator(f"#{element}")).to_have_text(figure)
    _show_november(page, base)
    expect(page.locator("#report-title")).to_have_text("Bệnh viện Trung ương Huế")
    assert _cells(page, "table-hospital_cccd", "bv-hue")[:3] == ["5", "4", "80.0%"]
    assert _total(page, "table-hospital_cccd")[:4] == ["5", "4", "80.0%", "80%"]
    expect(page.locator("#table-hospital_cccd tr.total .badge")).to_have_text("Đạt")
    assert _total(page, "table-heritage_cccd")[:2] == ["0", "0"]
    assert _total(page, "table-sites_equipped")[:3] == ["1", "1", "100.0%"]
    assert _total(page, "table-stays_notified")[:4] == ["0", "0", "0", "0"]  # October's
    page.locator("#trends-link").click()
    expect(page.get_by_role("heading", name="Xu hướng theo ngày và tuần")).to_be_visible()
    expect(page.locator("#period-label")).to_have_text("01/11/2026 – 30/11/2026")
    headers = [t.strip() for t in page.locator("#trend-sites thead th").all_inner_texts()]
    assert headers[1:] == ["Bệnh viện Trung ương Huế", "Tổng số"]

    def day(table: str, iso: str) -> list[str]:
        cells = page.locator(f'#{table} tr[data-day="{iso}"] td.num').all_inner_texts()
        return [c.strip() for c in cells]

    assert day("trend-sites", "2026-11-10") == ["8", "8"]  # 4 + 1 + 3 uninsured
    assert day("trend-sites", "2026-11-11") == ["0", "0"]
    assert day("trend-methods", "2026-11-10") == ["7", "0", "0", "0", "1"]
    assert day("trend-hospitals", "2026-11-10") == ["4 / 5 (80.0%)"]
    assert day("trend-hospitals", "2026-11-09") == ["0 / 0"]
    expect(page.locator("#trend-sites tbody tr")).to_have_count(30)
    wards = {}
    for row in page.locator("#inpatients tbody tr").all():
        site, ward, count = (c.strip() for c in row.locator("td").all_inner_texts())
        assert site == "Bệnh viện Trung ương Huế"
        wards[ward] = count
    assert wards == {"Khoa Nội 3": "2", "Khoa Ngoại 1": "1"}
    page.screenshot(path="/tmp/central-roles-hospital-trends.png", full_page=True)
    for path in ("/sites/hue-dai-noi", "/sites/ks-phu-vang", "/people/search", "/audit/"):
        _refused(page, base + path)


def _register_states(page: Page) -> dict[str, int]:
    states: dict[str, int] = {}
    for cls in page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.className)"):
        states[cls] = states.get(cls, 0) + 1
    return states


def test_notices_snapshot_personal_data_and_auditor(
        served: tuple[World, str], browser: Browser) -> None:
    world, base = served
    officer = browser.new_context(viewport={"width": 1280, "height": 1100},
                                  accept_downloads=True)
    page = _login(officer, base, "tinh")
    overdue = page.locator('#live a[href="/stays/?status=overdue"]')
    expect(overdue).to_have_text("2")  # yesterday's guest and C
    # the register of the hotel: every state, hand-counted
    page.goto(f"{base}/stays/?site=ks-phu-vang")
    assert _register_states(page) == {"status-on_time": 2, "status-late": 1,
                                      "status-overdue": 2, "status-due": 1}
    expect(page.locator("tr.status-due .badge")).to_have_text("Chưa đến hạn")
    expect(page.locator("tr.status-late .badge")).to_have_text("Thông báo trễ hạn")
    # November's report, submitted (frozen) before anything is marked
    _show_november(page, base)
    assert _cells(page, "table-stays_notified", "481")[:5] == ["3", "1", "1", "1", "33.3%"]
    assert _total(page, "table-stays_notified")[:5] == ["3", "1", "1", "1", "33.3%"]
    page.locator("#submit-report").click()
    expect(page.locator("#snapshot-version")).to_have_text("1")
    snapshot_url = page.url
    # November in the register: A on time, B late, C overdue; export the pending one
    page.goto(f"{base}/stays/")
    page.locator('form.filters select[name="site"]').first.select_option("ks-phu-vang")
    page.locator('form.filters input[name="from"]').first.fill("01/11/2026")
    page.locator('form.filters input[name="to"]').first.fill("30/11/2026")
    page.get_by_role("button", name="Lọc").click()
    assert _register_states(page) == {"status-on_time": 1, "status-late": 1,
                                      "status-overdue": 1}
    expect(page.locator("#shown")).to_contain_text("3")
    form = page.locator("#export-form")
    form.locator("select[name=reason]").select_option("police-notice")
    form.locator("input[name=note]").fill("Thông báo lưu trú tháng 11")
    with page.expect_download() as info:
        page.locator("#export-xlsx").click()
    sheet = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active
    assert sheet.max_row == 5  # 4 header rows + C, the only stay not notified
    page.reload()
    expect(page.locator("#last-export")).to_contain_text("1 lượt chưa thông báo")
    last = page.locator("#last-export")
    last.locator("input[name=reference]").fill("TB-2026-7")
    last.locator("input[name=notified_at]").fill("12/11/2026 22:30")
    last.get_by_role("button", name="Đánh dấu các lượt của lần xuất gần nhất").click()
    assert _register_states(page) == {"status-on_time": 2, "status-late": 1}
    expect(page.locator("#last-export")).to_have_count(0)
    expect(page.locator("tbody")).to_contain_text("TB-2026-7")
    page.goto(f"{base}/")
    expect(overdue).to_have_text("1")  # only yesterday's guest now
    # the live report moves, the snapshot does not
    page.goto(f"{base}/reports/?{NOV}")
    assert _total(page, "table-stays_notified")[:5] == ["3", "2", "1", "0", "66.7%"]
    page.goto(snapshot_url)
    expect(page.locator("#snapshot-version")).to_have_text("1")
    assert _total(page, "table-stays_notified")[:4] == ["3", "1", "1", "1"]
    assert _cells(page, "table-stays_notified", "481")[:5] == ["3", "1", "1", "1", "33.3%"]
    page.screenshot(path="/tmp/central-roles-snapshot.png", full_page=True)
    # personal data: the link opens only the purpose form; both fields are required
    page.goto(f"{base}/stays/?site=ks-phu-vang&from=01/11/2026&to=30/11/2026")
    page.locator("tbody tr", has_text="TB-2026-7").get_by_role(
        "link", name="Xem thông tin cá nhân").click()
    expect(page.locator("#purpose-form")).to_be_visible()
    expect(page.locator("dl.kv")).to_have_count(0)
    purpose = page.locator("#purpose-form")
    purpose.get_by_role("button", name="Mở thông tin cá nhân").click()
    assert purpose.locator("select[name=reason]").evaluate("e => e.validity.valueMissing")
    expect(page.locator("#purpose-form")).to_be_visible()  # the browser kept the form
    purpose.evaluate("f => f.noValidate = true")  # a client without the browser's checks
    purpose.get_by_role("button", name="Mở thông tin cá nhân").click()
    expect(page.locator("p.error")).to_have_text("Yêu cầu không hợp lệ.")
    expect(page.locator("code")).to_contain_text("reason:")
    expect(page.locator("code")).to_contain_text("note:")
    expect(page.locator("dl.kv")).to_have_count(0)
    page.go_back()
    purpose = page.locator("#purpose-form")
    purpose.locator("select[name=reason]").select_option("guest-request")
    purpose.locator("input[name=note]").fill("Khách yêu cầu bản sao 13/11")
    purpose.get_by_role("button", name="Mở thông tin cá nhân").click()
    expect(page.locator("dl.kv")).to_contain_text("Phạm Thị Thử")
    expect(page.locator("dl.kv")).to_contain_text("TB-2026-7")
    expect(page.locator("dl.kv")).to_contain_text("người đánh dấu tinh")
    expect(page.locator("dl.kv")).to_contain_text("Đã thông báo đúng hạn")
    with world.maker() as db:
        views = list(db.scalars(select(AuditLog).where(
            AuditLog.action == "stay.personal.view", AuditLog.target == STAY_C)))
    assert len(views) == 1 and views[0].detail is not None
    assert views[0].detail["reason"] == "guest-request"
    officer.close()

    # the auditor: the log and nothing else
    auditor = browser.new_context(viewport={"width": 1280, "height": 1100})
    page = _login(auditor, base, "kiemtra")
    expect(page.get_by_role("heading", name="Nhật ký truy cập")).to_be_visible()
    refused = ("/", "/reports/", "/stays/", "/security", "/devices",
               f"/stays/{STAY_A}/personal", "/admin/users", "/people/search",
               "/api/v1/sites")
    for path in refused:
        response = page.goto(base + path)
        assert response is not None and response.status == 403, path
    page.goto(f"{base}/audit/")
    page.get_by_label("Hành động").fill("stay.personal.view")
    page.get_by_label("Đối tượng").fill(STAY_C)
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#audit-total")).to_have_text("1")
    row = page.locator("section.card tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("tinh")
    expect(row).to_contain_text("guest-request")
    expect(row).to_contain_text("Khách yêu cầu bản sao 13/11")
    page.get_by_label("Hành động").fill("stays.export.xlsx")
    page.get_by_label("Đối tượng").fill("")
    page.get_by_label("Người thực hiện").fill("tinh")
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#audit-total")).to_have_text("1")
    expect(page.locator("section.card tbody tr")).to_contain_text(STAY_C)
    page.get_by_label("Hành động").fill("access.denied")
    page.get_by_label("Người thực hiện").fill("kiemtra")
    page.get_by_role("button", name="Lọc").click()
    expect(page.locator("#audit-total")).to_have_text(str(len(refused)))
    expect(page.locator("section.card tbody")).not_to_contain_text(STAY_B)
    page.screenshot(path="/tmp/central-roles-audit.png", full_page=True)
    auditor.close()


def test_admin_refuses_a_bad_close_time(served: tuple[World, str],
                                        context: BrowserContext) -> None:
    world, base = served
    page = _login(context, base, "admin")
    page.goto(f"{base}/admin/sites")
    form = page.locator("form.filters").first
    form.locator("input[name=id]").fill("hue-dai-noi")
    form.locator("input[name=name]").fill("Đại Nội Huế")
    form.locator("select[name=unit_id]").select_option(str(world.units["19927"]))
    form.locator("input[name=close_time]").fill("5pm")
    form.get_by_role("button", name="Lưu").click()
    close = form.locator("input[name=close_time]")
    assert close.evaluate("e => e.validity.patternMismatch")
    assert close.evaluate("e => e.validationMessage")  # the browser's bubble, with the title
    expect(close).to_have_attribute("title", "HH:MM (00:00–23:59)")
    assert page.url == f"{base}/admin/sites"  # the browser kept the form
    form.evaluate("f => f.noValidate = true")  # the server checks it too
    form.get_by_role("button", name="Lưu").click()
    expect(page.locator("p.error")).to_have_text("Yêu cầu không hợp lệ.")
    expect(page.locator("code")).to_contain_text(
        "close_time: expected HH:MM on the 24-hour clock")
    with world.maker() as db:
        site = db.get(Site, "hue-dai-noi")
        assert site is not None and site.close_time == "17:30"  # nothing saved
    page.goto(f"{base}/admin/sites")
    row = page.locator("tr", has=page.locator("code", has_text="hue-dai-noi"))
    expect(row.locator("td").last).to_have_text("17:30")

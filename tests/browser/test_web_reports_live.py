"""Headless Chromium walks a provincial officer through the reports on the November 2026 data
set (figures worked out by hand in tests/integration/test_web_report_handset.py): the
province's rows add up on screen, drill-down to a district, dd/mm/yyyy dates typed in the form,
a submitted report frozen as version 1. Chromium missing = failure."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from tests.browser.chromium import launch_chromium
from tests.web_support import PASSWORD, World, make_world, seed_november


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    world = make_world(tmp_path)
    seed_november(world)
    server = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield world, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


def _cells(page: Page, table: str, code: str) -> list[str]:
    row = page.locator(f'#{table} tr[data-code="{code}"]')
    return [t.strip() for t in row.locator("td.num").all_inner_texts()]


def test_provincial_officer_report_walk(served: tuple[World, str], browser: Browser) -> None:
    _world, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    page.goto(f"{base}/login")
    page.get_by_label("Tên đăng nhập").fill("tinh")
    page.get_by_label("Mật khẩu").fill(PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.goto(f"{base}/reports/")
    page.locator('select[name="period"]').select_option("custom")
    page.locator('form.filters input[name="from"]').fill("01/11/2026")
    page.locator('form.filters input[name="to"]').fill("30/11/2026")
    page.get_by_role("button", name="Xem báo cáo").click()
    expect(page.locator("#period-label")).to_have_text("01/11/2026 – 30/11/2026")
    expect(page.locator('form.filters input[name="from"]')).to_have_value("01/11/2026")
    heritage = "table-heritage_cccd"
    assert _cells(page, heritage, "474")[:2] == ["16", "10"]
    assert _cells(page, heritage, "481")[:2] == ["0", "0"]
    assert _cells(page, heritage, "lang-tu-duc")[:2] == ["7", "5"]
    total = page.locator(f"#{heritage} tr.total td.num").all_inner_texts()
    assert [t.strip() for t in total[:3]] == ["23", "15", "65.2%"]  # 16 + 0 + 7
    stays = page.locator("#table-stays_notified tr.total td.num").all_inner_texts()
    assert [t.strip() for t in stays[:4]] == ["3", "1", "1", "1"]  # on time, late, overdue
    page.screenshot(path="/tmp/central-report-province.png", full_page=True)
    page.locator(f'#{heritage} tr[data-code="474"] a').click()
    expect(page.locator("#report-title")).to_have_text("Thành phố Huế")
    assert _cells(page, heritage, "19927")[:2] == ["16", "10"]
    assert _cells(page, "table-hospital_cccd", "bv-hue")[:3] == ["5", "4", "80.0%"]
    expect(page.locator("#report-path")).to_contain_text("Thừa Thiên Huế")
    page.locator("#report-path a", has_text="Thừa Thiên Huế").click()
    expect(page.locator("#report-title")).to_have_text("Thừa Thiên Huế")
    page.locator("#submit-report").click()
    expect(page.locator("#snapshot-version")).to_have_text("1")
    expect(page.locator("#period-label")).to_have_text("01/11/2026 – 30/11/2026")
    frozen = page.locator('#table-heritage_cccd tr.total td.num').all_inner_texts()
    assert [t.strip() for t in frozen[:2]] == ["23", "15"]
    page.screenshot(path="/tmp/central-report-snapshot.png", full_page=True)

"""Headless Chromium against the real app on 127.0.0.1: login, the live dashboard following a
new rollup over server-sent events, and an export download. Chromium missing = failure."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect
from werkzeug.serving import make_server

from central.db.models import Rollup, SiteOccupancy
from central.web.timeutil import day_start_utc
from tests.browser.chromium import launch_chromium
from tests.web_support import PASSWORD, World, make_world, now_utc


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, str]]:
    world = make_world(tmp_path, SSE_POLL_SECONDS=0.3, SSE_MAX_SECONDS=60)
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


def _login(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/login")  # type: ignore[attr-defined]
    page.get_by_label("Tên đăng nhập").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Mật khẩu").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Đăng nhập").click()  # type: ignore[attr-defined]


def test_login_and_live_dashboard(served: tuple[World, str], browser: Browser) -> None:
    world, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    _login(page, base, "tinh")
    expect(page.get_by_role("heading", name="Tổng quan trực tiếp")).to_be_visible()
    expect(page.locator("#total-entries")).to_have_text("190")
    expect(page.locator(".live-dot.on")).to_be_visible(timeout=10_000)
    with world.maker() as db:
        db.add(Rollup(site_id="hue-dai-noi", hour=day_start_utc(world.today)
                      + timedelta(hours=6), kind="entry", method="vneid-qr", age_band="",
                      sex="", birth_province="", people=12, events=12))
        occ = db.get(SiteOccupancy, "hue-dai-noi")
        assert occ is not None
        occ.occupancy = 99
        occ.updated_at = now_utc()
        db.commit()
    expect(page.locator("#total-entries")).to_have_text("202", timeout=10_000)
    expect(page.locator("#occ-hue-dai-noi")).to_have_text("99")
    page.screenshot(path="/tmp/central-dashboard.png", full_page=True)
    page.goto(f"{base}/lang/en?next=/")
    expect(page.get_by_role("heading", name="Live dashboard")).to_be_visible()
    page.screenshot(path="/tmp/central-dashboard-en.png", full_page=True)


def test_export_download(served: tuple[World, str], browser: Browser) -> None:
    _world, base = served
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
    _login(page, base, "tinh")
    page.goto(f"{base}/stays/")
    expect(page.get_by_text("********1234")).to_be_visible()
    page.screenshot(path="/tmp/central-stays.png", full_page=True)
    form = page.locator("#export-form")
    form.locator("select[name=reason]").select_option("police-notice")
    form.locator("input[name=note]").fill("Thông báo lưu trú ngày hôm nay")
    with page.expect_download() as info:
        page.locator("#export-xlsx").click()
    download = info.value
    assert download.suggested_filename == "tblt_vn_import.xlsx"
    data = Path(download.path()).read_bytes()
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["DS_KHACH_VIET_NAM_LUU_TRU"]
    assert wb.active.max_row == 6  # 4 header rows + the 2 guests not yet notified
    page.goto(f"{base}/reports/?period=stat_month")
    page.screenshot(path="/tmp/central-reports.png", full_page=True)


def test_live_dashboard_leaves_when_the_user_is_deactivated(
        served: tuple[World, str], browser: Browser) -> None:
    """The open stream ends with its session and the page goes to the login form."""
    from sqlalchemy import select

    from central.db.models import User
    from central.web.app import end_user_sessions

    world, base = served
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _login(page, base, "tinh")
    expect(page.locator(".live-dot.on")).to_be_visible(timeout=10_000)
    with world.maker() as db:
        user = db.scalar(select(User).where(User.username == "tinh"))
        assert user is not None
        user.active = False
        end_user_sessions(db, user.id)
        db.commit()
    expect(page.get_by_label("Mật khẩu")).to_be_visible(timeout=10_000)
    assert "/login" in page.url

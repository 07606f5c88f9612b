"""End to end on loopback, with faults: the centre's counts are exact, in Chromium and the API.

The whole system of the main job, in production shape: mosquitto with TLS and the per-device
ACL, PostgreSQL, two ingest workers on the shared subscription, the web, five agent processes
reading simulated chips through nfcpy's UDP transport and QR codes through pty serial scanners.
During the traffic the broker is restarted, an agent is killed with SIGKILL and an ingest worker
too (each comes back). Afterwards the counts the gates accepted must equal, exactly, what the
centre stored, what its JSON API reports (checked inside ``run_system``), and what the
dashboard shows in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from firmware_sim.demo.system import Outcome, run_system
from tests.integration.broker_fixtures import free_port
from tests.integration.pg_fixtures import fresh_database, start_postgres, stop_postgres

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def dashboard_shows(outcome: Outcome) -> int:
    """Log in as the administrator and read today's entries and exits per site."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is required for the browser tests"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{outcome.web_url}/login")
            page.get_by_label("Tên đăng nhập").fill("admin")
            page.get_by_label("Mật khẩu").fill(outcome.password)
            page.get_by_role("button", name="Đăng nhập").click()
            expect(page.get_by_role("heading", name="Tổng quan trực tiếp")).to_be_visible()
            site = "hue-dai-noi"
            expect(page.locator(f"#entries-{site}")).to_have_text(
                str(outcome.expected[(site, "entry")]))
            expect(page.locator(f"#exits-{site}")).to_have_text(
                str(outcome.expected[(site, "exit")]))
            page.screenshot(path="/tmp/e2e-dashboard.png", full_page=True)
        finally:
            browser.close()
    return 0


def test_exact_counts_after_faults(tmp_path: Path) -> None:
    server = start_postgres()
    try:
        result = run_system(root=tmp_path / "system", duration=36, check=True,
                            web_port=free_port(), visitors=60,
                            database_url=fresh_database(server), ingest_workers=2,
                            faults=True, after_check=dashboard_shows)
    finally:
        stop_postgres(server)
    assert result == 0

"""End to end on loopback, with faults: the centre's counts are exact, in Chromium and the API.

The whole system of the main job, in production shape: mosquitto with TLS and the per-device
ACL, PostgreSQL, two ingest workers on the shared subscription, the web, six agent processes
reading simulated chips through pcscd with the vpcd virtual reader (one entry gate) and through
nfcpy's UDP transport (two more), and QR codes through pty serial scanners.
During the traffic the broker is restarted, an agent is killed with SIGKILL and an ingest worker
too (each comes back). Afterwards the counts the gates accepted must equal, exactly, what the
centre stored, what its JSON API reports (checked inside ``run_system``), and what the
dashboard shows in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from demo.system import Outcome, run_system
from tests.browser.chromium import ARGS, CHROMIUM
from tests.hil.issued import IssuedCards
from tests.hil.pcsc_fixtures import Bridge, PcscStack, pcsc_cards, pcsc_stack
from tests.integration.broker_fixtures import free_port
from tests.integration.pg_fixtures import fresh_database, start_postgres, stop_postgres

__all__ = ["pcsc_cards", "pcsc_stack"]  # fixtures used by this module


class BridgeSlot:
    """The vpcd bridge (inside pcscd's namespace) as the traffic generator's card slot."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    def put(self, card_dir: Path) -> None:
        self.bridge.command(f"card {card_dir}")

    def present_card(self) -> None:
        self.bridge.insert()

    def remove_card(self) -> None:
        self.bridge.remove()



def dashboard_shows(outcome: Outcome) -> int:
    """Log in as the administrator and read today's entries and exits per site."""
    # Every gate and desk worked, the PC/SC one (gate-ngo-mon-3) included.
    assert all(outcome.by_station[name] > 0 for name in (
        "gate-ngo-mon-1", "gate-ngo-mon-2", "gate-ngo-mon-3", "gate-hien-nhon", "reception-1",
        "ward-noi-3")), outcome.by_station
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


def test_exact_counts_after_faults(tmp_path: Path, pcsc_stack: PcscStack,
                                   pcsc_cards: IssuedCards) -> None:
    if pcsc_stack.pcscd is None or pcsc_stack.pcscd.poll() is not None:
        pcsc_stack.start_pcscd()
    bridge = pcsc_stack.bridge(pcsc_cards.card(1), "--removed")
    server = start_postgres()
    try:
        result = run_system(root=tmp_path / "system", duration=40, check=True,
                            web_port=free_port(), visitors=60,
                            database_url=fresh_database(server), ingest_workers=2,
                            faults=True, pcsc_slot=BridgeSlot(bridge),
                            after_check=dashboard_shows)
    finally:
        stop_postgres(server)
        bridge.stop()
    assert result == 0

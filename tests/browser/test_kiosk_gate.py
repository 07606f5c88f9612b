"""The kiosk page in headless Chromium at 800×480: the VÀO / RA choice of a both-way gate and the
CAN pad of a tap-first presentation, through the page's own buttons and its POSTs (custom-header
CSRF defence), with the state pushed back over server-sent events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from werkzeug.serving import make_server

from edge_agent.kiosk import KioskState, VerdictView, create_app
from edge_agent.kiosk.app import ALLOWED_HOSTS, loopback_hosts
from tests.browser.chromium import launch_chromium


class Gate:
    """What the agent does with the kiosk's POSTs, recorded."""

    def __init__(self) -> None:
        self.state = KioskState(device_name="Cổng Ngọ Môn 2", site_name="hue-dai-noi",
                                direction="entry", choose_direction=True)
        self.cans: list[tuple[str, str]] = []

    def choose(self, direction: str) -> dict[str, Any]:
        if direction not in ("entry", "exit"):
            raise ValueError("direction must be entry or exit")
        self.state.update(direction=direction)
        return {"direction": direction}

    def can(self, lane: str, digits: str) -> dict[str, Any]:
        self.cans.append((lane, digits))
        self.state.update(can_lane=None, verdict=VerdictView(accepted=True, title="Mời vào",
                                                             masked_id="********3820"))
        return {"lane": lane}


@pytest.fixture
def served() -> Iterator[tuple[Gate, str]]:
    gate = Gate()
    app = create_app(gate.state, keepalive_s=1.0, can=gate.can, choose_direction=gate.choose)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config[ALLOWED_HOSTS] = loopback_hosts("127.0.0.1", server.server_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gate, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


def test_direction_choice_and_can_pad(served: tuple[Gate, str], browser: Browser) -> None:
    gate, base = served
    page = browser.new_page(viewport={"width": 800, "height": 480})
    page.goto(base + "/")
    entry = page.locator('button[data-direction="entry"]')
    exit_ = page.locator('button[data-direction="exit"]')
    expect(entry).to_have_text("VÀO")
    expect(entry).to_have_class("dir chosen")
    exit_.click()
    expect(exit_).to_have_class("dir chosen", timeout=5000)
    expect(entry).to_have_class("dir")
    assert gate.state.snapshot.direction == "exit"
    box = exit_.bounding_box()
    assert box is not None and box["height"] >= 60 and box["x"] + box["width"] <= 800

    # A card lies on the reader without keys: the pad appears; six digits read the chip.
    pad = page.locator("#canpad")
    expect(pad).to_be_hidden()
    gate.state.update(can_lane="1", verdict=VerdictView(
        accepted=False, title="Nhập 6 số cuối CCCD", reason="no-key-material", warning=True))
    expect(pad).to_be_visible(timeout=5000)
    for digit in "833820":
        page.locator(f'button.key[data-key="{digit}"]').click()
    expect(page.locator("#can-digits")).to_have_text("••••••")
    ok = page.locator('button.key[data-key="ok"]')
    ok_box = ok.bounding_box()
    assert ok_box is not None and ok_box["y"] + ok_box["height"] <= 480  # fits the screen
    ok.click()
    expect(pad).to_be_hidden(timeout=5000)
    expect(page.locator("#verdict-title")).to_have_text("Mời vào")
    assert gate.cans == [("1", "833820")]
    page.close()


def serve(state: KioskState) -> tuple[Any, str]:
    app = create_app(state, keepalive_s=1.0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config[ALLOWED_HOSTS] = loopback_hosts("127.0.0.1", server.server_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_assurance_in_words_and_colours_and_near_capacity(browser: Browser) -> None:
    state = KioskState(site_kind="heritage-gate", occupancy=50, capacity=100)
    server, base = serve(state)
    try:
        page = browser.new_page(viewport={"width": 800, "height": 480})
        page.goto(base + "/")
        occupancy = page.locator("#occupancy")
        expect(occupancy).to_have_text("50 / 100")
        expect(occupancy).to_have_class("big")
        state.update(occupancy=95)
        expect(occupancy).to_have_class("big near", timeout=5000)
        state.update(occupancy=100)
        expect(occupancy).to_have_class("big full", timeout=5000)
        badge = page.locator("#verdict-assurance")
        words = {}
        for assurance in ("chip-anchored", "chip-signed", "qr", "vneid-qr"):
            state.show(VerdictView(accepted=True, title="Mời vào", masked_id="********3820",
                                   assurance=assurance))
            expect(badge).to_have_class(f"assurance {assurance}", timeout=5000)
            expect(badge).to_be_visible()
            words[assurance] = badge.inner_text()
        assert words["chip-anchored"] == "Chip đã xác thực"
        assert words["chip-signed"] == "Chip — chưa rõ nơi cấp"
        assert len(set(words.values())) == 4  # distinct words for each
        state.show(VerdictView(accepted=False, title="Từ chối", reason="qr-invalid"))
        expect(badge).to_be_hidden(timeout=5000)
        page.close()
    finally:
        server.shutdown()


def test_hospital_desk_shows_visits_and_stays(browser: Browser) -> None:
    state = KioskState(site_kind="hospital-reception", visits_today=3, open_stays=2)
    server, base = serve(state)
    try:
        page = browser.new_page(viewport={"width": 800, "height": 480})
        page.goto(base + "/")
        expect(page.locator("#visits")).to_have_text("3")
        expect(page.locator("#stays")).to_have_text("2")
        assert page.locator("#entries").count() == 0
        state.update(visits_today=4)
        expect(page.locator("#visits")).to_have_text("4", timeout=5000)
        page.close()
    finally:
        server.shutdown()

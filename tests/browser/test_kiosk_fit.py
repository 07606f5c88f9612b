"""Every kiosk and desk message fits an 800×480 screen: each verdict text of the flows (both
languages, placeholders filled with long values), the agent's prompts, every assurance and
outcome colour, the training banner, and the desk pages of a hospital and an accommodation desk
with a long open-stay list, rendered in headless Chromium; no element may reach beyond the
viewport horizontally (nothing cut off, no sideways scrolling)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from edge_agent.agent import PROMPTS
from edge_agent.flows import messages
from edge_agent.flows.messages import Text
from edge_agent.kiosk import KioskState, VerdictView, create_app
from edge_agent.kiosk.app import ALLOWED_HOSTS, loopback_hosts
from tests.browser.chromium import launch_chromium

WIDTH, HEIGHT = 800, 480
LONG_NAME = "Nguyễn Thị Hoàng Phương Khánh Linh"
FILL = {"room": "Khoa Hồi sức tích cực", "departure": "31/12/2026", "fields":
        "id_number, date_of_birth, full_name, sex", "flags": "card-expired, issue-date-future",
        "occupancy": "1000", "capacity": "1000", "count": "1000", "reason": "capacity-full"}

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5)) {
      bad.push(el.tagName + "#" + el.id + "." + el.className + " " +
               Math.round(r.left) + ".." + Math.round(r.right));
    }
  }
  if (document.documentElement.scrollWidth > width) { bad.push("page scrolls sideways"); }
  return bad;
}"""


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "Khoa Hồi sức tích cực"


def all_texts() -> list[str]:
    """Every kiosk text of the flows in both languages, and the agent's prompts."""
    found: list[Text] = []
    for value in vars(messages).values():
        items = value.values() if isinstance(value, dict) else [value]
        found += [item for item in items if isinstance(item, Text)]
    texts = {getattr(t, lang).format_map(_Fill(FILL)) for t in found for lang in ("vi", "en")}
    for title, message, _ in PROMPTS.values():
        texts |= {title, message}
    return sorted(t for t in texts if t)


def serve(state: KioskState, **kw: Any) -> tuple[Any, str]:
    app = create_app(state, keepalive_s=1.0, **kw)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config[ALLOWED_HOSTS] = loopback_hosts("127.0.0.1", server.server_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def browser() -> Iterator[Browser]:
    with launch_chromium() as browser:
        yield browser


def overflowing(page: Page) -> list[str]:
    return list(page.evaluate(OVERFLOW))


def test_every_verdict_fits_800_by_480(browser: Browser) -> None:
    texts = all_texts()
    assert len(texts) > 60  # the flows' texts in two languages, and the prompts
    longest = max(texts, key=len)
    state = KioskState(site_kind="heritage-gate", device_name="Cổng Ngọ Môn số 2 phía Đông",
                       site_name="hue-dai-noi-khu-di-tich", occupancy=999, capacity=1000,
                       backlog=12345, training=True, choose_direction=True, direction="entry")
    server, base = serve(state)
    try:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(base + "/")
        expect(page.locator("#training")).to_have_text("ĐÀO TẠO / TRAINING")
        # The check sees an element wider than the screen (so a pass means something).
        page.evaluate("""() => { const d = document.createElement("div"); d.id = "probe";
            d.style.width = "900px"; d.textContent = "x"; document.body.appendChild(d); }""")
        assert any("probe" in line for line in overflowing(page))
        page.evaluate("() => document.getElementById('probe').remove()")
        assert overflowing(page) == []
        outcomes = [(True, False, "chip-anchored"), (True, True, "chip-signed"),
                    (True, False, "qr"), (True, False, "vneid-qr"), (True, True, "manual"),
                    (False, False, None)]
        cases = [(title, longest, o) for title in texts for o in outcomes[:1]]
        cases += [(max(texts, key=len)[:40], message, o) for message in texts
                  for o in outcomes[-1:]]
        cases += [("Không thực hiện được", longest, o) for o in outcomes]
        failures: dict[str, list[str]] = {}
        for i, (title, message, (accepted, warning, assurance)) in enumerate(cases):
            state.show(VerdictView(accepted=accepted, title=f"{i} {title}", message=message,
                                   masked_id="********1234", name=LONG_NAME, warning=warning,
                                   assurance=assurance,
                                   reason=None if accepted else "capacity-full"))
            expect(page.locator("#verdict-title")).to_have_text(f"{i} {title}", timeout=5000)
            bad = overflowing(page)
            if bad:
                failures[f"{title!r} / {message!r}"] = bad
        assert failures == {}, failures
        page.close()
    finally:
        server.shutdown()


STAYS = [{"stay_id": f"5f0c6f0e-4d1a-4e7b-9b1a-0e8d7c6b5a4{i}", "ward_or_room":
          "Khoa Hồi sức tích cực 1", "expected_departure": "2026-12-31",
          "reason_code": "caregiver", "started_at": "2026-12-01T08:00+07:00",
          "masked_id": "********1234" if i % 2 else None, "name": LONG_NAME if i % 2 else None,
          "without_card": bool(i % 2)} for i in range(6)]


@pytest.mark.parametrize("actions", [("manual", "admit", "discharge", "next"),
                                     ("check_in", "check_out")])
def test_desk_fits_800_by_480(browser: Browser, actions: tuple[str, ...]) -> None:
    state = KioskState(site_kind="hospital-reception", training=True)
    server, base = serve(state, desk=lambda action, fields: {"title": "Đã ghi nhận"},
                         desk_actions=actions,
                         selected=lambda: {"masked_id": "********1234", "name": LONG_NAME,
                                           "age_s": 12.0},
                         stays=lambda: STAYS, desk_pin="2468",
                         training=lambda on: {"training": on})
    try:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(base + "/desk")
        assert overflowing(page) == []  # the PIN pad
        page.fill('input[name="pin"]', "2468")
        page.click("#desk-unlock button")
        expect(page.locator("#desk-training")).to_be_visible(timeout=5000)
        expect(page.locator("#desk-selected")).to_contain_text("********1234", timeout=5000)
        expect(page.locator("#desk-stays button.stay")).to_have_count(6, timeout=5000)
        expect(page.locator("#training")).to_be_visible()
        assert overflowing(page) == []
        page.close()
    finally:
        server.shutdown()

"""The running agent at a hospital reception and an accommodation desk, through the kiosk's
loopback HTTP API and the real serial scanner driver: a card shown for a stay action records no
second visit, the desk lists the open stays and ends one without the card, an insurance answer
that comes late is recorded ``unknown`` and followed up, a failed read at an accommodation
desk says so, and training mode marks every event."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from edge_agent.agent import create_agent
from edge_agent.cccd.dates import BirthDate
from edge_agent.config import load_config
from edge_agent.insurance import InsuranceState, InsuranceStatus
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port
from tests.integration.test_agent_desk import QR, post, scan, stored_after_stop
from wire.schemas import validate


class SlowThenValid:
    """A gateway whose first answer comes after the visit stopped waiting, then ``valid``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        self.calls += 1
        if self.calls == 1:
            self.release.wait(10)
            return InsuranceStatus.unknown("timeout")
        return InsuranceStatus(InsuranceState.VALID, "synthetic")


def start(tmp_path: Path, kind: str, scanner: PtySerialScanner, *, training: bool = False,
          insurance: Any = None, pin: str | None = None) -> Any:
    write_device_keys(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "desk-01"
site_id = "bv-trung-uong-hue"
site_kind = "{kind}"
training = {str(training).lower()}

{KEYS_TOML}
[scanners]
uris = ["serial:{scanner.path}?terminator=cr"]

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
{f'desk_pin = "{pin}"' if pin else ""}
""", encoding="utf-8")
    agent = create_agent(load_config(config), insurance=insurance,
                         insurance_retry_s=(0.05, 0.05, 0.05))
    agent.start()
    return agent


def get(agent: Any, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{agent.kiosk_port}{path}",
                                timeout=5) as response:
        return dict(json.loads(response.read()))


def test_stay_card_records_no_visit_and_the_list_discharges_without_card(
        tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    gateway = SlowThenValid()
    agent = start(tmp_path, "hospital-reception", pty, insurance=gateway)
    try:
        status, body = post(agent, "next", {"for": "visit", "department": "Khoa Nội"})
        assert status == 200 and body["next"] == "visit"
        scan(agent, pty, QR)  # the visit: the gateway is slow, so "đang kiểm tra BHYT"
        assert "Đang kiểm tra BHYT" in agent.kiosk.snapshot.verdict.message
        gateway.release.set()
        deadline = time.monotonic() + 10
        while agent.outbox.last_seq() < 2:  # the follow-up of the re-check
            assert time.monotonic() < deadline, "no insurance follow-up"
            time.sleep(0.05)
        assert post(agent, "next", {"for": "admit"})[0] == 200
        departure = (date.today() + timedelta(days=3)).isoformat()
        status, body = post(agent, "admit", {"room": "Khoa Nội", "expected_departure":
                                             departure, "reason_code": "caregiver"})
        assert status == 200 and body["accepted"], body
        stays = get(agent, "/desk/stays")["stays"]
        assert [(s["masked_id"], s["reason_code"], s["without_card"]) for s in stays] == [
            ("********1234", "caregiver", True)]
        assert get(agent, "/desk/selected")["selected"]["masked_id"] == "********1234"
        assert post(agent, "discharge", {"stay_id": "not-a-uuid"})[0] == 422
        status, body = post(agent, "discharge", {"stay_id": stays[0]["stay_id"]})
        assert status == 200 and body["accepted"], body
        assert get(agent, "/desk/stays")["stays"] == []
    finally:
        agent.stop()
        pty.close()
    events = stored_after_stop(tmp_path)
    assert [e["kind"] for e in events] == ["visit", "visit.insurance", "stay.start",
                                           "stay.end"]
    for event in events:
        validate("event", event)
        assert "training" not in event
    assert events[0]["details"] == {"insurance": "unknown", "department": "Khoa Nội"}
    assert events[1]["details"] == {"insurance": "valid",
                                    "visit_event_id": events[0]["event_id"]}
    assert events[2]["details"]["reason_code"] == "caregiver"


def test_accommodation_desk_says_a_bad_read_and_training_marks_events(tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    agent = start(tmp_path, "accommodation-desk", pty, training=True)
    try:
        html = urllib.request.urlopen(f"http://127.0.0.1:{agent.kiosk_port}/",
                                      timeout=5).read().decode()
        assert 'role="status">ĐÀO TẠO / TRAINING' in html  # the banner, not hidden
        scan(agent, pty, "079303001234||Nguyễn Thị Mai|1505")  # a damaged QR
        verdict = agent.kiosk.snapshot.verdict
        assert verdict is not None and not verdict.accepted
        scan(agent, pty, QR)
        verdict = agent.kiosk.snapshot.verdict
        assert verdict.accepted and verdict.masked_id == "********1234"
        departure = (date.today() + timedelta(days=2)).isoformat()
        status, body = post(agent, "check_in", {"room": "204", "expected_departure": departure,
                                                "reason_code": "business"})
        assert status == 200 and body["accepted"], body
    finally:
        agent.stop()
        pty.close()
    events = stored_after_stop(tmp_path)
    assert [e["kind"] for e in events] == ["stay.start"]
    validate("event", events[0])
    assert events[0]["training"] is True and events[0]["details"]["reason_code"] == "business"


def test_training_toggle_needs_the_desk_pin_and_marks_what_follows(tmp_path: Path) -> None:
    import http.cookiejar

    pty = PtySerialScanner(terminator=b"\r")
    agent = start(tmp_path, "hospital-reception", pty, pin="2468")
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    base = f"http://127.0.0.1:{agent.kiosk_port}"

    def send(path: str, body: dict[str, Any]) -> int:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                         method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "X-Kiosk-Desk": "1"})
        try:
            with opener.open(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    try:
        assert send("/desk/training", {"on": True}) == 403  # locked: the PIN first
        assert send("/desk/unlock", {"pin": "2468"}) == 200
        assert send("/desk/training", {"on": "yes"}) == 400
        assert send("/desk/training", {"on": True}) == 200
        assert agent.kiosk.snapshot.training
        scan(agent, pty, QR)
        assert send("/desk/training", {"on": False}) == 200
        assert send("/desk/manual", {"reason": "child"}) == 200
    finally:
        agent.stop()
        pty.close()
    events = stored_after_stop(tmp_path)
    assert [(e["kind"], e.get("training")) for e in events] == [("visit", True),
                                                                 ("manual", None)]


def test_the_days_visits_survive_a_restart(tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    agent = start(tmp_path, "hospital-reception", pty)
    try:
        scan(agent, pty, QR)
        verdict = agent.kiosk.snapshot.verdict
        assert verdict is not None and verdict.title == "Đã tiếp nhận"
    finally:
        agent.stop()
    agent = create_agent(load_config(tmp_path / "agent.toml"))
    agent.start()
    try:
        scan(agent, pty, QR)  # the dedupe memory is gone: only the restored visit stops it
        verdict = agent.kiosk.snapshot.verdict
        assert verdict is not None and verdict.title == "Đã chọn người bệnh"
    finally:
        agent.stop()
        pty.close()
    assert [e["kind"] for e in stored_after_stop(tmp_path)] == ["visit"]

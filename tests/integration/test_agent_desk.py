"""Desk actions of the running agent through the kiosk's loopback HTTP API.

The broker is absent here (the uplink keeps retrying): events stay in the outbox, where the test
reads them back. What crosses the wire is covered by test_agent.py.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.agent import Agent
from edge_agent.config import load_config
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port
from wire import validate
from wire.sealing import SealedBox, open_sealed

QR = "079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh|20082021"


def make_agent(tmp_path: Path, kind: str,
               scanner: PtySerialScanner | None = None) -> tuple[Agent, X25519PrivateKey]:
    centre = write_device_keys(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "desk-01"
site_id = "bv-trung-uong-hue"
site_kind = "{kind}"

{KEYS_TOML}
[scanners]
uris = ["serial:{scanner.path if scanner else '/dev/null'}?terminator=cr"]

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
    agent = Agent(load_config(config))
    agent.start()
    return agent, centre


def post(agent: Agent, action: str, fields: dict[str, Any], *,
         header: bool = True) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{agent.kiosk_port}/desk/{action}",
        data=json.dumps(fields).encode(), method="POST",
        headers={"Content-Type": "application/json", **({"X-Kiosk-Desk": "1"} if header else {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body) if body.startswith(b"{") else {}


def scan(agent: Agent, pty: PtySerialScanner, payload: str) -> None:
    """Scan through the real serial driver; wait until the agent has handled it."""
    deadline = time.monotonic() + 10
    while not agent.scanners:  # bytes sent before the port is open are lost (pyserial)
        assert time.monotonic() < deadline, "the scanner did not open"
        time.sleep(0.02)
    before = agent.kiosk.snapshot.verdict
    pty.scan(payload.encode("utf-8"))
    while agent.kiosk.snapshot.verdict is before:
        assert time.monotonic() < deadline, "the scan did not reach the agent"
        time.sleep(0.02)


def test_hospital_visit_admission_discharge_and_manual(tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    agent, centre = make_agent(tmp_path, "hospital-reception", pty)
    try:
        status, body = post(agent, "admit", {"room": "Khoa Nội", "expected_departure": "2030-01-01"})
        assert status == 422 and "Tap or scan the card first" in body["error"]
        scan(agent, pty, QR)  # the visit check-in, and the patient is now selected
        departure = (date.today() + timedelta(days=3)).isoformat()
        assert post(agent, "admit", {"room": "Khoa Nội", "expected_departure": departure},
                    header=False)[0] == 403
        status, body = post(agent, "admit", {"room": "Khoa Nội", "expected_departure": departure})
        assert status == 200 and body["accepted"], body
        status, body = post(agent, "manual", {"reason": "paper-insurance", "count": "2"})
        assert status == 422 and "heritage gates only" in body["error"]  # a visit is one person
        status, body = post(agent, "manual", {"reason": "paper-insurance"})
        assert status == 200 and body["accepted"]
        status, body = post(agent, "discharge", {})
        assert status == 200 and body["accepted"], body
        assert post(agent, "manual", {"reason": "bogus"})[0] == 422
        assert post(agent, "check_in", {})[0] == 404
    finally:
        agent.stop()
        pty.close()
    events = stored_after_stop(tmp_path)
    assert [e["kind"] for e in events] == ["visit", "stay.start", "manual", "stay.end"]
    for event in events:
        validate("event", event)
        outside = json.dumps({k: v for k, v in event.items() if k != "sealed"},
                             ensure_ascii=False)
        assert not re.search(r"\d{12}", outside) and "Nguyễn" not in outside
    start = events[1]
    personal = open_sealed(SealedBox.from_json(start["sealed"]), centre,
                           f"{start['event_id']}|desk-01".encode())
    assert personal["id_number"] == "079303001234"
    assert events[2]["count"] == 1 and events[2]["reason"] == "paper-insurance"


def test_accommodation_desk_selects_then_checks_in(tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    agent, _ = make_agent(tmp_path, "accommodation-desk", pty)
    try:
        scan(agent, pty, QR)
        assert agent.outbox.last_seq() == 0  # selecting the guest records nothing
        departure = (date.today() + timedelta(days=2)).isoformat()
        status, body = post(agent, "check_in", {"room": "204", "expected_departure": departure})
        assert status == 200 and body["accepted"], body
        status, body = post(agent, "check_out", {})
        assert status == 200 and body["accepted"], body
        assert post(agent, "manual", {"reason": "child"})[0] == 404
    finally:
        agent.stop()
        pty.close()
    assert [e["kind"] for e in stored_after_stop(tmp_path)] == ["stay.start", "stay.end"]


def stored_after_stop(tmp_path: Path) -> list[dict[str, Any]]:
    from edge_agent.outbox import Outbox

    with Outbox(tmp_path / "outbox.sqlite3") as outbox:
        return [json.loads(entry.payload) for entry in outbox.pending(limit=100)]


def test_desk_page_lists_only_this_desks_actions(tmp_path: Path) -> None:
    agent, _ = make_agent(tmp_path, "hospital-reception")
    try:
        html = urllib.request.urlopen(f"http://127.0.0.1:{agent.kiosk_port}/desk",
                                      timeout=5).read().decode()
    finally:
        agent.stop()
    assert "Nhập viện / Admit" in html and "Ra viện / Discharge" in html
    assert "Nhận phòng" not in html


def test_live_kiosk_refuses_a_foreign_host_and_hides_its_version(tmp_path: Path) -> None:
    """DNS rebinding against the real server: a foreign Host gets 421 and no desk action."""
    import http.client

    agent, _ = make_agent(tmp_path, "hospital-reception")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", agent.kiosk_port, timeout=5)
        conn.request("POST", "/desk/manual", body=b'{"count": 1000}',
                     headers={"Host": f"rebind.evil.example:{agent.kiosk_port}",
                              "X-Kiosk-Desk": "1", "Content-Type": "application/json"})
        refused = conn.getresponse()
        refused.read()
        conn.request("GET", "/desk", headers={"Host": f"127.0.0.1:{agent.kiosk_port}"})
        page = conn.getresponse()
        page.read()
        conn.close()
    finally:
        agent.stop()
    assert refused.status == 421
    assert page.status == 200
    assert page.getheader("X-Frame-Options") == "DENY"
    assert "frame-ancestors 'none'" in (page.getheader("Content-Security-Policy") or "")
    assert "Werkzeug" not in (page.getheader("Server") or "")
    assert "Python" not in (page.getheader("Server") or "")


def test_open_stays_survive_a_restart(tmp_path: Path) -> None:
    pty = PtySerialScanner(terminator=b"\r")
    agent, _ = make_agent(tmp_path, "accommodation-desk", pty)
    departure = (date.today() + timedelta(days=2)).isoformat()
    try:
        scan(agent, pty, QR)
        assert post(agent, "check_in", {"room": "204", "expected_departure": departure})[0] == 200
    finally:
        agent.stop()
    # A new agent process on the same outbox: the guest can still check out.
    config = load_config(tmp_path / "agent.toml")
    again = Agent(config)
    again.start()
    try:
        scan(again, pty, QR)
        status, body = post(again, "check_out", {})
        assert status == 200 and body["accepted"], body
    finally:
        again.stop()
        pty.close()
    assert [e["kind"] for e in stored_after_stop(tmp_path)] == ["stay.start", "stay.end"]

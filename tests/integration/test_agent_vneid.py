"""The running agent with ``[vneid] adapter = "http"`` against the simulated identity platform:
a VNeID token scanned through the real serial driver at a hospital desk, the admission of the
held patient, and the platform going down (the kiosk asks for the card)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.config import load_config
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.identity_platform import IdentityPlatform
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port
from tests.integration.test_agent_desk import post, scan, stored_after_stop
from wire import validate


def test_vneid_token_at_a_hospital_desk(tmp_path: Path) -> None:
    write_device_keys(tmp_path)
    pty = PtySerialScanner(terminator=b"\r")
    with IdentityPlatform(hang_s=2.0) as platform:
        config = tmp_path / "agent.toml"
        config.write_text(f"""
[device]
id = "desk-01"
site_id = "bv-trung-uong-hue"
site_kind = "hospital-reception"

{KEYS_TOML}
[scanners]
uris = ["serial:{pty.path}?terminator=cr"]

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}

[vneid]
adapter = "http"
url = "{platform.url}"
""", encoding="utf-8")
        agent = Agent(load_config(config))
        agent.start()
        try:
            scan(agent, pty, platform.issue("079303001234"))
            shown = agent.kiosk.snapshot.verdict
            assert shown is not None and shown.accepted and shown.masked_id == "********1234"
            status, body = post(agent, "admit", {"room": "Khoa Nội",
                                                 "expected_departure": "2030-01-01"})
            assert status == 200 and body["accepted"], body
            platform.go_down("refuse")
            scan(agent, pty, platform.issue("001058424242"))
            shown = agent.kiosk.snapshot.verdict
            assert shown is not None and not shown.accepted
            assert "VNeID" in shown.message and "CCCD" in shown.message
        finally:
            agent.stop()
            pty.close()
    events = stored_after_stop(tmp_path)
    assert [(e["kind"], e["method"], e["reason"]) for e in events] == [
        ("visit", "vneid-qr", None), ("stay.start", "vneid-qr", None),
        ("rejected", "vneid-qr", "vneid-unavailable")]
    for event in events:
        validate("event", event)

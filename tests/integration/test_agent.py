"""The whole agent against a real mosquitto (TLS, ACL): scan-then-tap, QR alone, the kiosk.

A heritage entry gate with a simulated chip reader and a pseudo-terminal serial scanner. The
events reach the collector's subscriber signed, schema-valid, in order, and without personal
data; the kiosk shows the counts; ``edge-agent run`` rejects a bad configuration by key name.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge_agent.agent import Agent
from edge_agent.config import load_config
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from firmware_sim.sim_reader import SimCardReader
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    free_port,
    make_pki,
    running_broker,
)
from wire import validate
from wire.signing import verify_event

DEVICE = "gate-01"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=(DEVICE,))
    with running_broker(tmp_path / "broker", pki) as running:
        yield running


def write_config(tmp_path: Path, broker: Broker, card: Path, trust: Path, scanner: str) -> Path:
    write_device_keys(tmp_path)
    ca, cert, key = broker.pki.tls(DEVICE)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "{DEVICE}"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "entry"
name = "Cổng Ngọ Môn 1"

{KEYS_TOML}
[readers]
uris = ["sim:{card}"]

[scanners]
uris = ["{scanner}"]

[chip]
trust_dir = "{trust}"

[broker]
url = "{broker.url}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
heartbeat_s = 5

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
    return config


def wait(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def test_scan_then_tap_and_qr_alone_reach_the_collector(tmp_path: Path, broker: Broker) -> None:
    issue_cards(tmp_path / "cards", 2, seed=5)
    card1, card2 = (tmp_path / "cards" / "cards" / f"000{n}" for n in (1, 2))
    info1 = json.loads((card1 / "card.json").read_text("utf-8"))
    info2 = json.loads((card2 / "card.json").read_text("utf-8"))
    pty = PtySerialScanner(terminator=b"\r")
    recorder = Recorder(broker).start()
    config = load_config(write_config(tmp_path, broker, card1, tmp_path / "cards" / "trust",
                                      f"serial:{pty.path}?terminator=cr"))
    agent = Agent(config, tap_window_s=1.0)
    agent.start()
    try:
        uri = config.readers[0]
        wait(lambda: uri in agent.readers)
        reader = agent.readers[uri]
        assert isinstance(reader, SimCardReader)
        # The card lay on the reader at start: no key material, so nothing is recorded.
        wait(lambda: agent.kiosk.snapshot.verdict is not None)
        assert agent.kiosk.snapshot.verdict is not None
        assert agent.kiosk.snapshot.verdict.reason == "no-key-material"
        reader.remove_card()
        wait(lambda: "serial" in str(agent.health_state) or bool(agent.scanners))

        # Scan-then-tap: the QR arms the chip read, the tap records a chip-anchored entry.
        pty.scan(info1["qr"].encode("utf-8"))
        wait(lambda: agent.kiosk.snapshot.verdict is not None
             and agent.kiosk.snapshot.verdict.title == "Mời chạm thẻ")
        reader.present_card()
        wait(lambda: agent.flow.counts.entries == 1)

        # A QR with no tap after it is recorded alone when the tap window closes.
        pty.scan(info2["qr"].encode("utf-8"))
        wait(lambda: agent.flow.counts.entries == 2, timeout=5)
        assert agent.uplink.wait_idle(10)
        assert recorder.wait_for(lambda msgs: len([m for m in msgs
                                                   if m.topic.endswith("/events")]) == 2, 10)
        state = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{agent.kiosk_port}/state", timeout=5).read())
        assert state["entries_today"] == 2 and state["online"] is True
    finally:
        agent.stop()
        recorder.stop()
        pty.close()

    events = [m for m in recorder.snapshot() if m.topic == f"checkin/v1/{DEVICE}/events"]
    bodies = [m.json() for m in events]
    for body in bodies:
        validate("event", body)
    public = serialization.load_pem_private_key(
        (tmp_path / "keys" / "device.pem").read_bytes(), None).public_key()
    assert isinstance(public, type(Ed25519PrivateKey.generate().public_key()))
    for body in bodies:
        verify_event(body, public)
    assert [b["seq"] for b in bodies] == [1, 2]
    # Every status the agent published (online heartbeats, the clean stop) is signed with the
    # device key and follows status.v1; the broker's will is the only unsigned one.
    statuses = [m.json() for m in recorder.snapshot()
                if m.topic == f"checkin/v1/{DEVICE}/status" and m.payload]
    published = [s for s in statuses if s.get("reason") != "connection-lost"]
    assert published and any(s["state"] == "online" for s in published)
    for status in published:
        validate("status", status)
        verify_event(status, public)
    assert [(b["kind"], b["method"], b["assurance"]) for b in bodies] == [
        ("entry", "chip", "chip-anchored"), ("entry", "card-qr", "qr")]
    for message in recorder.snapshot():
        text = message.payload.decode("utf-8")
        assert not re.search(r"\d{12}", text), message.topic
        for info in (info1, info2):
            assert info["person"]["full_name"] not in text


def test_run_rejects_bad_configuration_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[device]\nid = "g"\nsite_id = "s"\nsite_kind = "heritage-gate"\n'
                      'direction = "sideways"\n', encoding="utf-8")
    script = Path(sys.executable).with_name("edge-agent")
    done = subprocess.run([str(script), "run", "--config", str(config)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("edge-agent: device.direction:")

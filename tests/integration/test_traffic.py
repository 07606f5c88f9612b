"""The traffic generator drives real agents through nfcpy's UDP reader and a pty scanner."""

from __future__ import annotations

import time
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.config import load_config
from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from firmware_sim.traffic import Station, TrafficGenerator, UdpSlot, visitors_from
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port


def agent_for(tmp_path: Path, name: str, direction: str, readers: list[str], scanner: str,
              kiosk_port: int, trust: Path) -> Agent:
    folder = tmp_path / name
    folder.mkdir()
    write_device_keys(folder)
    (folder / "agent.toml").write_text(f"""
[device]
id = "{name}"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "{direction}"

{KEYS_TOML}
[readers]
uris = {readers!r}

[scanners]
uris = ["{scanner}"]

[chip]
trust_dir = "{trust}"

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{folder / 'outbox.sqlite3'}"

[kiosk]
port = {kiosk_port}
""".replace("'", '"'), encoding="utf-8")
    return Agent(load_config(folder / "agent.toml"))


def test_visitors_enter_by_chip_and_leave_by_qr(tmp_path: Path) -> None:
    issue_cards(tmp_path / "cards", 6, seed=21)
    people = visitors_from(tmp_path / "cards")
    tag = UdpTagBridge(people[0].card_dir).start()
    tag.remove_card()
    entry_scanner, exit_scanner = PtySerialScanner(), PtySerialScanner()
    entry_port, exit_port = free_port(), free_port()
    trust = tmp_path / "cards" / "trust"
    entry = agent_for(tmp_path, "gate-in", "entry", [f"nfc:{tag.path}"],
                      f"serial:{entry_scanner.path}?terminator=cr", entry_port, trust)
    exit_gate = agent_for(tmp_path, "gate-out", "exit", [],
                          f"serial:{exit_scanner.path}?terminator=cr", exit_port, trust)
    entry.start()
    exit_gate.start()
    try:
        deadline = time.monotonic() + 10
        while not (entry.scanners and exit_gate.scanners and entry.readers):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stations = [Station("gate-in", "hue-dai-noi", "entry", entry_port, entry_scanner,
                            UdpSlot(tag)),
                    Station("gate-out", "hue-dai-noi", "exit", exit_port, exit_scanner)]
        generator = TrafficGenerator(stations, people, seed=3)
        for _ in range(4):
            generator.step(stations[0])
        for _ in range(2):
            generator.step(stations[1])
    finally:
        entry.stop()
        exit_gate.stop()
        tag.stop()
        entry_scanner.close()
        exit_scanner.close()
    assert generator.failures == []
    assert generator.generated == {("hue-dai-noi", "entry"): 4, ("hue-dai-noi", "exit"): 2}
    assert entry.flow.counts.entries == 4 and exit_gate.flow.counts.exits == 2
    chip_events = [e for e in entry.verdicts if e.drafts]
    assert all(d.method.value == "chip" and d.assurance.value == "chip-anchored"
               for v in chip_events for d in v.drafts)

"""The running agent at a both-way gate, built by ``create_agent`` with simulated outputs: the
gatekeeper's VÀO / RA choice through the kiosk, tap first with the CAN pad, a card already on
the reader read when the QR arrives, the relay on a repeat tap, a QR decided at once where no
chip is expected, and health that fits status.v1 when a reader is missing.

Real parts: the simulated chip behind the reader driver (firmware_sim/sim_reader.py, ICAO secure messaging),
a pseudo-terminal serial scanner, the outbox, the kiosk's HTTP server. The broker is absent (the
uplink keeps retrying): events stay in the outbox, read back here.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.outputs import SimulatedOutputs
from edge_agent.agent import Agent, create_agent
from edge_agent.config import load_config
from edge_agent.uplink.status import online_status
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from firmware_sim.sim_reader import SimCardReader
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import free_port
from wire import parse_message


def wait(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def post(agent: Agent, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{agent.kiosk_port}{path}", data=json.dumps(body).encode(),
        method="POST", headers={"Content-Type": "application/json", "X-Kiosk-Desk": "1"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def outbox_events(agent: Agent) -> list[dict[str, Any]]:
    return [json.loads(entry.payload) for entry in agent.outbox.pending(1000)]


@pytest.fixture
def cards(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    issue_cards(tmp_path / "cards", 1, seed=11)
    card = tmp_path / "cards" / "cards" / "0001"
    return card, json.loads((card / "card.json").read_text("utf-8"))


def config_file(tmp_path: Path, *, readers: list[str], scanner: str, direction: str = "both",
                extra: str = "", dg2: bool = False) -> Path:
    write_device_keys(tmp_path)
    path = tmp_path / "agent.toml"
    path.write_text(f"""
[device]
id = "gate-02"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "{direction}"

{KEYS_TOML}
{'[readers]' if readers else ''}
{'uris = ' + json.dumps(readers) if readers else ''}

[scanners]
uris = ["{scanner}"]

[chip]
trust_dir = "{tmp_path / 'cards' / 'trust'}"
tap_window_s = 60
dg2 = {str(dg2).lower()}

[broker]
url = "mqtt://127.0.0.1:{free_port()}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
{extra}
""", encoding="utf-8")
    return path


@pytest.fixture
def pty() -> Iterator[PtySerialScanner]:
    scanner = PtySerialScanner(terminator=b"\r")
    yield scanner
    scanner.close()


def test_both_way_gate_can_pad_direction_choice_and_relay_on_repeat(
        tmp_path: Path, cards: tuple[Path, dict[str, Any]], pty: PtySerialScanner) -> None:
    card, info = cards
    outputs = SimulatedOutputs()
    config = load_config(config_file(tmp_path, readers=[f"sim:{card}"],
                                     scanner=f"serial:{pty.path}?terminator=cr"))
    agent = create_agent(config, outputs=outputs)
    agent.start()
    try:
        uri = config.readers[0]
        wait(lambda: uri in agent.readers and bool(agent.scanners))
        reader = agent.readers[uri]
        assert isinstance(reader, SimCardReader)
        assert agent.kiosk.snapshot.choose_direction and agent.kiosk.snapshot.direction == "entry"

        # Tap first: the card lies on the reader; the kiosk offers the CAN pad.
        wait(lambda: agent.kiosk.snapshot.can_lane == "1")
        assert post(agent, "/can", {"lane": "1", "can": "12345"})[0] == 200
        wait(lambda: agent.kiosk.snapshot.verdict is not None
             and agent.kiosk.snapshot.verdict.reason == "bad-can")
        assert post(agent, "/can", {"lane": "1", "can": info["can"]})[0] == 200
        wait(lambda: agent.flow.counts.entries == 1)
        assert agent.kiosk.snapshot.can_lane is None  # the pad went away with the read
        reader.remove_card()

        # The gatekeeper turns the gate to RA; the QR then the tap record an exit.
        assert post(agent, "/direction", {"direction": "sideways"})[0] == 422
        assert post(agent, "/direction", {"direction": "exit"}) == (200, {"direction": "exit"})
        assert agent.kiosk.snapshot.direction == "exit"
        pty.scan(info["qr"].encode("utf-8"))
        wait(lambda: agent.kiosk.snapshot.verdict is not None
             and agent.kiosk.snapshot.verdict.title == "Mời chạm thẻ")
        reader.present_card()
        wait(lambda: agent.flow.counts.exits == 1)
        reader.remove_card()

        # The same card again inside the dedupe window: counted once, the relay pulses again.
        pty.scan(info["qr"].encode("utf-8"))
        wait(lambda: agent.kiosk.snapshot.verdict is not None
             and agent.kiosk.snapshot.verdict.title == "Mời chạm thẻ")
        reader.present_card()
        wait(lambda: len(agent.verdicts) == 3)
        assert agent.verdicts[-1].outcome.value == "already-counted"
        assert agent.flow.counts.exits == 1
        assert [(k, d) for k, d in outputs.calls() if k == "relay"] == [("relay", "pulse")] * 3
        assert ("signal", "accept") in outputs.calls()
        events = [e for e in outbox_events(agent) if e["kind"] in ("entry", "exit")]
    finally:
        agent.stop()
    assert [(e["kind"], e["method"], e["assurance"]) for e in events] == [
        ("entry", "chip", "chip-anchored"), ("exit", "chip", "chip-anchored")]


def test_card_on_the_reader_is_read_when_the_qr_arrives(
        tmp_path: Path, cards: tuple[Path, dict[str, Any]], pty: PtySerialScanner) -> None:
    card, info = cards
    config = load_config(config_file(tmp_path, readers=[f"sim:{card}"], direction="entry",
                                     scanner=f"serial:{pty.path}?terminator=cr", dg2=True))
    agent = create_agent(config, outputs=SimulatedOutputs())
    agent.start()
    try:
        wait(lambda: agent.kiosk.snapshot.can_lane == "1" and bool(agent.scanners))
        pty.scan(info["qr"].encode("utf-8"))  # tap window is 60 s: only the chip read is quick
        wait(lambda: agent.flow.counts.entries == 1)
        verdict = agent.kiosk.snapshot.verdict
        assert verdict is not None and verdict.assurance == "chip-anchored"
        # DG2 was read: the face is shown for the gatekeeper, from memory, behind its URL.
        assert verdict.photo is not None and verdict.photo.startswith("/photo/")
        with urllib.request.urlopen(f"http://127.0.0.1:{agent.kiosk_port}{verdict.photo}",
                                    timeout=5) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert response.read()[:2] == b"\xff\xd8"  # a JPEG
            assert response.headers["Cache-Control"] == "no-store"
        chosen = agent.selected()  # what the desk page shows as selected: masked
        assert chosen is not None and chosen["masked_id"] == verdict.masked_id
        assert chosen["masked_id"].endswith(info["person"]["id_number"][-4:])
        assert info["person"]["id_number"][:8] not in str(chosen)
        (event,) = outbox_events(agent)
    finally:
        agent.stop()
    assert (event["kind"], event["method"], event["assurance"]) == (
        "entry", "chip", "chip-anchored")


def test_qr_decided_at_once_without_a_reader_and_health_of_a_missing_reader(
        tmp_path: Path, cards: tuple[Path, dict[str, Any]], pty: PtySerialScanner) -> None:
    _card, info = cards
    scanner = f"serial:{pty.path}?terminator=cr"
    missing = f"sim:{tmp_path / 'no-such-card'}"
    config = load_config(config_file(
        tmp_path, readers=[missing], direction="entry", scanner=scanner,
        extra=f'\n[[lanes]]\nname = "a"\nscanners = ["{scanner}"]\n'
              f'\n[[lanes]]\nname = "b"\nreaders = ["{missing}"]\n'))
    agent = create_agent(config, outputs=SimulatedOutputs())
    agent.start()
    try:
        wait(lambda: bool(agent.scanners))
        # Lane "a" has no reader: with a 60 s tap window, the QR is still decided at once.
        pty.scan(info["qr"].encode("utf-8"))
        wait(lambda: agent.flow.counts.entries == 1, timeout=10)
        verdict = agent.kiosk.snapshot.verdict
        assert verdict is not None and verdict.assurance == "qr"  # shown as QR-only
        pty.scan(b"not a card")
        wait(lambda: agent.flow.counts.rejected == 1, timeout=10)
        wait(lambda: f"reader {missing}" in agent.health_state)
        health = agent._health()
        kinds = [(e["kind"], e["method"]) for e in outbox_events(agent)]
    finally:
        agent.stop()
    status = parse_message("status.v1", online_status(
        device_id="gate-02", version="1.0", outbox_depth=0, oldest_undelivered_at=None,
        health=health, at=agent.clock()))
    assert status["readers"][missing]["state"] == "absent"
    assert status["scanners"][scanner] == "ok"
    assert kinds == [("entry", "card-qr"), ("rejected", "card-qr")]

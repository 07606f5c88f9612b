"""The centre's runtime configuration end to end (docs/protocol.md §8): ``central device-config``
publishes, retained, through the real broker (TLS, dynamic security); the running agent applies
it live (kiosk /state, the flow's dedupe window, the heartbeat), keeps it across a restart,
ignores a lower revision, and never sees a configuration forged by another device.

Real parts: mosquitto with the test PKI, the central command line against a SQLite registry,
the agent built by ``create_agent`` with its uplink, outbox and kiosk HTTP server; card QRs from
the card simulator.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.cli import main as central_main
from central.db.models import AuditLog
from central.registry import revoke_device
from drivers.outputs import SimulatedOutputs
from edge_agent.agent import Agent, create_agent
from edge_agent.config import load_config
from edge_agent.flows.model import Outcome
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    free_port,
    make_pki,
    raw_device_client,
    running_broker,
    tls_context,
)
from tests.integration.pg_fixtures import migrated_engine, seed

GATE = "gate-07"
NEIGHBOUR = "gate-08"
OLD = "gate-old"
DESK = "desk-01"
SITE = "hue-dai-noi"
CONFIG_TOPIC = f"checkin/v1/{GATE}/config"


def wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Broker, Any, Path]]:
    pki = make_pki(tmp_path / "pki", devices=(GATE, NEIGHBOUR),
                   collectors=("collector", "collector-2", "collector-config"))
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    engine = migrated_engine(url)
    seed(engine, sites={SITE: "heritage", "bv-cho-ray": "hospital"},
         devices={GATE: SITE, NEIGHBOUR: SITE, OLD: SITE, DESK: "bv-cho-ray"})
    with Session(engine) as s, s.begin():
        revoke_device(s, OLD)
    config = tmp_path / "central.toml"
    with running_broker(tmp_path / "broker", pki) as broker:
        config.write_text(f'database_url = "{url}"\n\n[broker]\nurl = "{broker.url}"\n'
                          f'ca = "{pki.ca}"\nclient_id = "collector"\n', encoding="utf-8")
        yield broker, engine, config


@pytest.fixture
def pty() -> Iterator[PtySerialScanner]:
    scanner = PtySerialScanner(terminator=b"\r")
    yield scanner
    scanner.close()


def agent_toml(tmp_path: Path, broker: Broker, scanner: str) -> Path:
    write_device_keys(tmp_path)
    ca, cert, key = broker.pki.tls(GATE)
    path = tmp_path / "agent.toml"
    path.write_text(f"""
[device]
id = "{GATE}"
site_id = "{SITE}"
site_kind = "heritage-gate"
direction = "entry"

{KEYS_TOML}
[scanners]
uris = ["{scanner}"]

[capacity]
dedupe_window_s = 0

[broker]
url = "{broker.url}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
heartbeat_s = 600

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
    return path


def kiosk_state(agent: Agent) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{agent.kiosk_port}/state",
                                timeout=5) as response:
        state: dict[str, Any] = json.loads(response.read())
    return state


def device_config(config: Path, broker: Broker, *args: str) -> int:
    ident = broker.pki.collector("collector-config")
    return central_main(["device-config", "--config", str(config), "--cert", str(ident.cert),
                         "--key", str(ident.key), *args])


def published_revision(capsys: pytest.CaptureFixture[str]) -> int:
    """The revision the command just printed (``device-config: ID revision N: {…}``)."""
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"device-config: {GATE} revision ")
    return int(line.split()[3].rstrip(":"))


def retained(broker: Broker) -> dict[str, Any]:
    """The retained configuration as a new subscriber receives it."""
    recorder = Recorder(broker, (CONFIG_TOPIC,), name="collector-2").start()
    try:
        assert recorder.wait_for(bool, 10)
        message: dict[str, Any] = recorder.on(CONFIG_TOPIC)[0].json()
        return message
    finally:
        recorder.stop()


def scan(agent: Agent, pty: PtySerialScanner, qr: str) -> Outcome:
    """Scan the card's QR at the gate (no reader: decided at once); the verdict's outcome."""
    shown = len(agent.verdicts)
    pty.scan(qr.encode("utf-8"))
    wait(lambda: len(agent.verdicts) > shown)
    return agent.verdicts[-1].outcome


def test_device_config_applies_live_survives_restart_and_ignores_lower_or_forged(
        world: tuple[Broker, Any, Path], tmp_path: Path, pty: PtySerialScanner,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    broker, engine, config = world
    caplog.set_level(logging.INFO)
    issue_cards(tmp_path / "cards", 1, seed=7)
    qr = json.loads((tmp_path / "cards" / "cards" / "0001" / "card.json")
                    .read_text("utf-8"))["qr"]
    toml = agent_toml(tmp_path, broker, f"serial:{pty.path}?terminator=cr")
    status = Recorder(broker, (f"checkin/v1/{GATE}/status",)).start()

    # The registry decides who may be configured.
    assert device_config(config, broker, "gate-99", "--language", "en") == 2
    assert device_config(config, broker, OLD, "--language", "en") == 2
    assert device_config(config, broker, DESK, "--direction", "exit") == 2
    assert device_config(config, broker, GATE) == 2  # nothing to set
    ingest = broker.pki.collector("collector-2")  # an ingest worker's session is not taken
    assert central_main(["device-config", "--config", str(config), "--cert", str(ingest.cert),
                         "--key", str(ingest.key), GATE, "--language", "en"]) == 2
    assert "ingest worker's name" in capsys.readouterr().err

    agent = create_agent(load_config(toml), outputs=SimulatedOutputs())
    agent.start()
    try:
        wait(lambda: agent.uplink.stats().connected)
        # Local configuration: no dedupe window, an entry gate in Vietnamese.
        assert scan(agent, pty, qr) is Outcome.ACCEPTED
        assert scan(agent, pty, qr) is Outcome.ACCEPTED
        assert agent.flow.counts.entries == 2
        assert kiosk_state(agent)["language"] == "vi"

        # Revision 1: English and an hour's dedupe window.
        assert device_config(config, broker, GATE, "--language", "en",
                             "--dedupe-window-s", "3600") == 0
        first = published_revision(capsys)
        wait(lambda: agent.runtime_revision == first)
        state = kiosk_state(agent)
        assert (state["language"], state["direction"], state["choose_direction"]) == (
            "en", "entry", False)
        assert scan(agent, pty, qr) is Outcome.ALREADY_COUNTED
        assert agent.flow.counts.entries == 2

        # Revision 2 changes the direction only: the language and window are kept.
        assert device_config(config, broker, GATE, "--direction", "exit") == 0
        second = published_revision(capsys)
        assert second > first
        got = retained(broker)
        assert (got["device_id"], got["revision"], got["settings"]) == (
            GATE, second, {"direction": "exit", "language": "en", "dedupe_window_s": 3600})
        wait(lambda: agent.runtime_revision == second)
        state = kiosk_state(agent)
        assert (state["language"], state["direction"]) == ("en", "exit")
        assert scan(agent, pty, qr) is Outcome.ACCEPTED
        assert scan(agent, pty, qr) is Outcome.ALREADY_COUNTED
        assert (agent.flow.counts.entries, agent.flow.counts.exits) == (2, 1)

        # A gatekeeper-chosen direction at "both".
        assert device_config(config, broker, GATE, "--direction", "both") == 0
        third = published_revision(capsys)
        wait(lambda: agent.runtime_revision == third)
        state = kiosk_state(agent)
        assert (state["language"], state["choose_direction"]) == ("en", True)
    finally:
        agent.stop()

    runtime_file = agent.runtime_path
    assert runtime_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(runtime_file.read_text("utf-8"))["revision"] == third

    # Restart: applied from the saved revision before the broker is even reached.
    agent = create_agent(load_config(toml), outputs=SimulatedOutputs())
    assert agent.runtime_revision == third
    assert agent.config.capacity.dedupe_window_s == 3600
    agent.start()
    try:
        state = kiosk_state(agent)
        assert (state["language"], state["choose_direction"]) == ("en", True)
        wait(lambda: agent.uplink.stats().connected)

        # A lower revision from a collector: ignored, with the reason logged.
        collector = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="collector-config",
                                protocol=mqtt.MQTTv5)
        collector.tls_set_context(tls_context(broker.pki,
                                              broker.pki.collector("collector-config")))
        collector.connect("127.0.0.1", broker.port)
        collector.loop_start()
        try:
            lower = {"v": 1, "device_id": GATE, "revision": third - 1,
                     "at": "2026-12-06T03:00:00.000+00:00", "settings": {"language": "vi"}}
            collector.publish(CONFIG_TOPIC, json.dumps(lower), qos=1,
                              retain=True).wait_for_publish(10)
            wait(lambda: f"revision {third - 1} is not above the revision held ({third})"
                 in caplog.text)
            # Malformed, and addressed to another device: ignored with their reasons.
            for bad, reason in (
                    (dict(lower, revision=third + 5, settings={"broker": "mqtt://elsewhere"}),
                     "not a valid config.v1 message: $.settings"),
                    (dict(lower, revision=third + 6, device_id=NEIGHBOUR),
                     f"addressed to device '{NEIGHBOUR}', not to this device '{GATE}'")):
                collector.publish(CONFIG_TOPIC, json.dumps(bad), qos=1,
                                  retain=True).wait_for_publish(10)
                wait(lambda reason=reason: f"configuration message ignored: {reason}"
                     in caplog.text)
        finally:
            collector.disconnect()
            collector.loop_stop()
        assert agent.runtime_revision == third
        assert kiosk_state(agent)["language"] == "en"

        # Another device forges this gate's configuration: the broker refuses it.
        forger = raw_device_client(broker, NEIGHBOUR)
        acks: list[Any] = []
        forger.on_publish = lambda _c, _u, _mid, reason, _p: acks.append(reason)
        forger.connect("127.0.0.1", broker.port)
        forger.loop_start()
        try:
            forged = dict(lower, revision=third + 10**6, settings={"language": "vi"})
            forger.publish(CONFIG_TOPIC, json.dumps(forged), qos=1,
                           retain=True).wait_for_publish(10)
        finally:
            forger.disconnect()
            forger.loop_stop()
        assert [reason.value for reason in acks] == [0x87]  # not authorised
        # The command publishes after it (--reset: the retained message, another device's, is
        # replaced whole) and sets the heartbeat: the agent applies it, never having seen the
        # forgery.
        assert device_config(config, broker, GATE, "--reset", "--language", "en",
                             "--heartbeat-s", "5") == 0
        fourth = published_revision(capsys)
        assert third < fourth < third + 10**6
        wait(lambda: agent.runtime_revision == fourth)
        assert kiosk_state(agent)["language"] == "en"
        assert agent.config.broker.heartbeat_s == 5
        assert agent.config.capacity.dedupe_window_s == 0  # reset: back to the TOML value
        # The status goes out at once with the new heartbeat.
        wait(lambda: any(m.json().get("heartbeat_s") == 5 for m in status.snapshot()))
    finally:
        agent.stop()
        status.stop()
    assert f"revision {third + 10**6}" not in caplog.text
    with Session(engine) as s:
        audited = s.scalars(select(AuditLog).where(AuditLog.action == "device.config")).all()
    assert [(row.target, row.detail["revision"] if row.detail else None) for row in audited] \
        == [(GATE, first), (GATE, second), (GATE, third), (GATE, fourth)]

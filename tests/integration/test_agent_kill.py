"""SIGKILL the real ``edge-agent run`` at random moments: every accepted scan is delivered.

A heritage entry gate with a serial QR scanner (pseudo-terminal) runs as a child process
against mosquitto (TLS, ACL). Synthetic visitors scan one after another; a scan is *accepted*
when the kiosk showed its green verdict, which the agent does only after the outbox commit. The
child is killed with SIGKILL between scans or right after one, then restarted. In the end every
accepted visit reached the collector, and a duplicate only ever repeats the same event_id.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.cccd import mask_id
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    env_for_child,
    free_port,
    make_pki,
    running_broker,
)
from wire.sealing import open_subject_box

DEVICE = "gate-k1"
CENTRE: list[X25519PrivateKey] = []
"""The centre's key of the running test (it opens the sealed subjects)."""
ROUNDS = 15


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=(DEVICE,))
    with running_broker(tmp_path / "broker", pki) as running:
        yield running


def visitors(count: int, seed: int) -> list[tuple[str, str]]:
    """(id number, card QR) of synthetic visitors, all distinct."""
    rng = random.Random(seed)
    people = []
    for n in range(count):
        year = rng.randrange(1950, 2005)
        sex_digit = rng.choice((0, 1)) + (2 if year >= 2000 else 0)
        id_number = f"0{rng.randrange(1, 96):02d}{sex_digit}{year % 100:02d}{n:06d}"
        sex = "Nam" if sex_digit % 2 == 0 else "Nữ"
        name = f"Khách Thử {chr(65 + n % 26)}{chr(65 + n // 26)}"  # names hold no digits
        qr = f"{id_number}||{name}|{rng.randrange(1, 28):02d}0{rng.randrange(1, 9)}{year}" \
             f"|{sex}|Số {n} Đường Lê Lợi, Huế|01012022"
        people.append((id_number, qr))
    return people


def opened(event: dict[str, Any]) -> str:
    """The ID number the centre opens from an event's sealed subject."""
    return open_subject_box(event["subject_sealed"], CENTRE[-1], event["event_id"],
                            event["device_id"])


def write_config(tmp_path: Path, broker: Broker, scanner: str, kiosk_port: int) -> Path:
    CENTRE.append(write_device_keys(tmp_path))
    ca, cert, key = broker.pki.tls(DEVICE)
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "{DEVICE}"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "entry"

{KEYS_TOML}
[scanners]
uris = ["{scanner}"]

[broker]
url = "{broker.url}"
ca = "{ca}"
cert = "{cert}"
key = "{key}"

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"

[kiosk]
port = {kiosk_port}
""", encoding="utf-8")
    return config


class Child:
    """``edge-agent run`` as a child process."""

    def __init__(self, config: Path, kiosk_port: int, pty: PtySerialScanner) -> None:
        self.config, self.port, self.pty = config, kiosk_port, pty
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        script = Path(sys.executable).with_name("edge-agent")
        self.proc = subprocess.Popen([str(script), "run", "--config", str(self.config),
                                      "--log-level", "WARNING"], env=env_for_child(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.state() is not None and self._scanner_open():
                return
            assert self.proc.poll() is None, "edge-agent run exited"
            time.sleep(0.05)
        raise AssertionError("edge-agent run did not come up")

    def _scanner_open(self) -> bool:
        """pyserial drops what arrives before it opens the port: wait for the open tty."""
        assert self.proc is not None
        slave = os.path.realpath(self.pty.path)
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        try:
            return any(os.path.realpath(fd) == slave for fd in fd_dir.iterdir())
        except OSError:
            return False

    def state(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/state",
                                        timeout=1) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except OSError:
            return None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def test_every_accepted_scan_survives_sigkill(tmp_path: Path, broker: Broker) -> None:
    rng = random.Random(2026)
    people = visitors(ROUNDS * 5, seed=7)
    pty = PtySerialScanner(terminator=b"\r")
    kiosk_port = free_port()
    config = write_config(tmp_path, broker, f"serial:{pty.path}?terminator=cr", kiosk_port)
    recorder = Recorder(broker).start()
    child = Child(config, kiosk_port, pty)
    accepted: list[str] = []
    people_iter = iter(people)
    try:
        for _ in range(ROUNDS):
            child.start()
            for _scan in range(rng.randrange(2, 6)):
                id_number, qr = next(people_iter)
                before = (child.state() or {}).get("verdict")
                pty.scan(qr.encode("utf-8"))
                if rng.random() < 0.3:
                    break  # killed right after the scan: it may or may not have been accepted
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    verdict = (child.state() or {}).get("verdict")
                    if verdict != before and verdict and verdict["masked_id"] == mask_id(
                            id_number):
                        assert verdict["accepted"], verdict
                        accepted.append(id_number)
                        break
                    time.sleep(0.01)
            child.kill()
        child.start()  # a last run drains what is left
        wanted = set(accepted)

        def delivered(messages: list[Any]) -> bool:
            seen = {opened(json.loads(m.payload)) for m in messages
                    if m.topic.endswith("/events")}
            return wanted <= seen

        assert recorder.wait_for(delivered, timeout=30), "accepted events missing"
    finally:
        child.stop()
        recorder.stop()
        pty.close()
    assert len(accepted) >= ROUNDS, "too few accepted scans to mean anything"
    events = [json.loads(m.payload) for m in recorder.snapshot() if m.topic.endswith("/events")]
    by_seq: dict[int, str] = {}
    by_id: dict[str, bytes] = {}
    for message in recorder.snapshot():
        if not message.topic.endswith("/events"):
            continue
        body = json.loads(message.payload)
        assert by_seq.setdefault(body["seq"], body["event_id"]) == body["event_id"]
        assert by_id.setdefault(body["event_id"], message.payload) == message.payload
    assert sorted(by_seq) == list(range(1, len(by_seq) + 1)), "a seq is missing"
    assert {opened(e) for e in events} >= set(accepted)

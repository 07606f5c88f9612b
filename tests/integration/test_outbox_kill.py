"""The agent killed with SIGKILL at random moments, many times: every event it reported as
committed (accepted) is delivered, and a duplicate always carries the same event_id."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.broker_fixtures import (
    Broker,
    Pki,
    Recorder,
    env_for_child,
    make_pki,
    running_broker,
)

ROUNDS = 15
DEVICE = "gate-kill"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki", devices=(DEVICE,))


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


class Child:
    def __init__(self, broker: Broker, db: Path, *extra: str) -> None:
        ca, cert, key = broker.pki.tls(DEVICE)
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.kill_child", "--db", str(db),
             "--url", broker.url, "--ca", str(ca), "--cert", str(cert), "--key", str(key),
             "--device", DEVICE, "--site", "site-1", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_child(),
            cwd=Path(__file__).resolve().parents[2], text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.strip()
            if line == "READY":
                self.ready.set()
            self.lines.append(line)

    def committed(self) -> dict[int, str]:
        out = {}
        for line in self.lines:
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit():
                out[int(parts[0])] = parts[1]
        return out

    def finish(self) -> None:
        self.proc.wait(30)
        self._reader.join(5)


def test_sigkill_many_times_loses_nothing(tmp_path: Path, broker: Broker) -> None:
    rng = random.Random(20260501)
    recorder = Recorder(broker).start()
    db = tmp_path / "agent" / "outbox.db"
    db.parent.mkdir()
    accepted: dict[int, str] = {}
    for _ in range(ROUNDS):
        child = Child(broker, db)
        assert child.ready.wait(20), child.proc.stderr.read() if child.proc.stderr else ""
        time.sleep(rng.uniform(0.02, 0.6))
        child.proc.send_signal(signal.SIGKILL)
        child.finish()
        assert child.proc.returncode == -signal.SIGKILL
        for seq, event_id in child.committed().items():
            assert accepted.setdefault(seq, event_id) == event_id, "seq reused"
    assert len(accepted) > ROUNDS * 5, "too few events committed to mean anything"

    final = Child(broker, db, "--drain-only")
    final.finish()
    assert "DRAINED" in final.lines, final.proc.stderr.read() if final.proc.stderr else ""

    topic = f"checkin/v1/{DEVICE}/events"

    def all_seen(msgs: list) -> bool:  # type: ignore[type-arg]
        seen = {json.loads(m.payload)["event_id"] for m in msgs if m.topic == topic}
        return set(accepted.values()) <= seen

    assert recorder.wait_for(all_seen, 20), "accepted events missing at the collector"
    received = recorder.on(topic)
    recorder.stop()

    by_seq: dict[int, set[str]] = {}
    by_id: dict[str, set[bytes]] = {}
    first_seen: list[int] = []
    for m in received:
        event = json.loads(m.payload)
        by_seq.setdefault(event["seq"], set()).add(event["event_id"])
        if event["event_id"] not in by_id:
            first_seen.append(event["seq"])
        by_id.setdefault(event["event_id"], set()).add(m.payload)
    # every accepted event arrived, with the id the agent reported
    for seq, event_id in accepted.items():
        assert by_seq.get(seq) == {event_id}
    # a seq is never carried by two different events; duplicates are byte-identical copies
    assert all(len(ids) == 1 for ids in by_seq.values())
    assert all(len(payloads) == 1 for payloads in by_id.values())
    # first copies arrive in seq order, without gaps
    assert first_seen == sorted(first_seen)
    assert first_seen == list(range(1, max(first_seen) + 1))
    duplicates = len(received) - len(by_id)
    print(f"{ROUNDS} kills, {len(accepted)} accepted, {len(by_id)} delivered, "
          f"{duplicates} duplicates")
    # the broker published the last will after the kills
    statuses = [json.loads(m.payload) for m in recorder.on(f"checkin/v1/{DEVICE}/status")]
    assert any(s["state"] == "offline" and s["reason"] == "connection-lost" for s in statuses)

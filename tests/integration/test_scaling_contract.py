"""The broker contract the collector relies on beyond one machine (docs/scaling.md §1), shown on
this machine's mosquitto: two ``central ingest`` worker processes on one MQTT 5 shared
subscription with persistent sessions, two real agent uplinks draining their outboxes, one
worker SIGKILLed mid-traffic (its session keeps queueing in the broker), then the broker
restarted while that session is offline, then the worker started again once every event had
reached the broker. The returning worker handles the events its session queued while it was
dead (mosquitto kept them across its restart); every event the gates committed is stored
exactly once, each device's seqs are complete, nothing is rejected.

The broker is stopped with SIGTERM (mosquitto saves its sessions): a broker crash that loses
what it holds in memory is harmless only with end-to-end receipts (docs/scaling.md §1.3;
docs/protocol.md, "Receipts"), and belongs to the chaos suite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.db.models import Device, Event, IngestRejection
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.integration.broker_fixtures import (
    Broker,
    free_port,
    ingest_config,
    make_pki,
    running_broker,
    spawn_ingest,
)
from tests.integration.pg_fixtures import (  # noqa: F401
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)

ROOT = Path(__file__).resolve().parents[2]
SITE = "hue-dai-noi"
GATES = ("gate-ngo-mon-01", "gate-ngo-mon-02")
WORKERS = ("collector", "collector-2")
PER_GATE = 240


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=GATES, collectors=WORKERS,
                   sites=dict.fromkeys(GATES, SITE))
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


def _connections(broker: Broker, name: str) -> int:
    text = broker.log_path.read_text(errors="replace") if broker.log_path.exists() else ""
    return len(re.findall(rf"New client connected .* as {re.escape(name)} ", text))


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _handled(port: int) -> float:
    """Events the worker behind this metrics port stored or dropped as duplicates."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return -1.0
    return sum(float(m.group(1)) for m in re.finditer(
        r"^central_ingest_(?:events_stored|duplicates)_total (\S+)$", text, re.MULTILINE))


def _stored(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Event)) or 0)


def _commit(outbox: Outbox, device: FakeDevice, i: int) -> str:
    kind = EventKind.ENTRY if i % 2 == 0 else EventKind.EXIT
    draft = EventDraft(kind, Method.CHIP, EventAssurance.CHIP_ANCHORED, datetime.now(UTC),
                       subject=f"{i // 2:032x}", demographics=Demographics("15-24", "F", "079"))
    entry = outbox.commit(draft, payload_builder(draft, device_id=device.device_id,
                                                 site_id=SITE, signing_key=device.key,
                                                 centre_key=device.centre_public))
    return str(entry.event_id)


def test_two_workers_on_a_shared_subscription_across_a_broker_restart_store_each_event_once(
        broker: Broker, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    (tmp_path / "centre.key").write_bytes(centre.private_bytes_raw())
    (tmp_path / "data.key").write_bytes(os.urandom(32))
    devices = seed(engine, sites={SITE: "heritage"}, devices=dict.fromkeys(GATES, SITE),
                   centre_key=centre)
    configs = [ingest_config(tmp_path, broker, db_url, n) for n in WORKERS]
    logs = [tmp_path / f"{n}.log" for n in WORKERS]
    workers = [spawn_ingest(c, log) for c, log in zip(configs, logs, strict=True)]
    outboxes = {g: Outbox(tmp_path / f"{g}.db") for g in GATES}
    uplinks = {g: Uplink(g, SITE, broker.url, broker.pki.tls(g), outboxes[g],
                         backoff=(0.05, 0.5), retry_no_subscriber_s=0.2) for g in GATES}
    committed: list[str] = []
    lock = threading.Lock()
    progress = threading.Event()

    def gate(device_id: str) -> None:
        for i in range(PER_GATE):
            event_id = _commit(outboxes[device_id], devices[device_id], i)
            with lock:
                committed.append(event_id)
                if len(committed) >= len(GATES) * PER_GATE // 3:
                    progress.set()
            uplinks[device_id].wake()
            time.sleep(0.004)

    producers = [threading.Thread(target=gate, args=(g,)) for g in GATES]
    try:
        assert _wait(lambda: all(_connections(broker, n) >= 1 for n in WORKERS), 30), \
            broker.log_tail()
        for up in uplinks.values():
            up.start()
        for p in producers:
            p.start()
        assert progress.wait(60)
        workers[0].send_signal(signal.SIGKILL)  # its persistent session keeps queueing
        workers[0].wait(10)
        time.sleep(0.3)
        broker.restart()  # SIGTERM: the offline session and its queue are saved and reloaded
        for p in producers:
            p.join(120)
        for up in uplinks.values():
            assert up.wait_idle(60), up.stats()  # every event has reached the broker
        port = free_port()
        workers[0] = spawn_ingest(ingest_config(tmp_path, broker, db_url, WORKERS[0], port),
                                  logs[0])
        assert len(committed) == len(GATES) * PER_GATE
        assert _wait(lambda: _stored(engine) >= len(committed), 90), (
            _stored(engine), len(committed), broker.log_tail(),
            logs[0].read_text()[-2000:], logs[1].read_text()[-2000:])
        # Every event had reached the broker before it came back: what it handled came from its
        # session, queued while it was dead and kept across the broker's restart.
        assert _wait(lambda: _handled(port) > 0, 30), (_handled(port), broker.log_tail())
        assert all(up.stats().connects >= 2 for up in uplinks.values())  # the outage was seen
        time.sleep(1.0)  # a late duplicate would be an extra row: there must be none
        with Session(engine) as s:
            stored = s.scalars(select(Event.event_id)).all()
            assert len(stored) == len(committed)
            assert sorted(str(e) for e in stored) == sorted(committed)
            assert s.scalar(select(func.count()).select_from(IngestRejection)) == 0
            for device_id in GATES:
                dev = s.get(Device, device_id)
                assert dev is not None
                assert (dev.contiguous_seq, dev.last_seq) == (PER_GATE, PER_GATE)
    finally:
        for up in uplinks.values():
            up.stop()
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(10)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait(5)
        for outbox in outboxes.values():
            outbox.close()
        engine.dispose()

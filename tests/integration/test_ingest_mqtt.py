"""The ingest worker against the real mosquitto (TLS client certificates, ACL), on SQLite and
PostgreSQL: events published by a device client (bytes from edge_agent's own payload builder),
by ``mosquitto_pub`` exactly as docs/protocol.md §10.1 documents, bad messages each rejected
with its reason, duplicates stored once, two workers on the shared subscription with one killed
mid-way, and the retained occupancy (docs/protocol.md §7)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.db.models import Device, Event, IngestRejection
from central.ingest.worker import IngestWorker
from central.occupancy_publisher import OccupancyPublisher
from central.registry import enrol_device
from central.settings import BrokerSettings, CentralSettings, Retention
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox.builder import payload_builder, wire_bytes
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    ingest_config,
    make_pki,
    raw_device_client,
    running_broker,
    spawn_ingest,
)
from tests.integration.pg_fixtures import (  # noqa: F401
    _UUID7,
    VN,
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)

ROOT = Path(__file__).resolve().parents[2]
GATE, GATE2, DESK = "gate-ngo-mon-01", "gate-ngo-mon-02", "ks-song-huong-le-tan"
STRANGER = "gate-unknown"
RFC8032_PRIVATE = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=(GATE, GATE2, DESK, STRANGER))
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


def settings_for(broker: Broker, url: str, name: str = "collector", **kw: Any) -> \
        CentralSettings:
    ident = broker.pki.collector(name)
    return CentralSettings(
        database_url=url, broker=BrokerSettings(
            url=broker.url, ca=broker.pki.ca, cert=ident.cert, key=ident.key, client_id=name,
            group="ingest", session_expiry_s=3600), **kw)


def device_client(broker: Broker, device_id: str) -> mqtt.Client:
    client = raw_device_client(broker, device_id)
    client.connect("127.0.0.1", broker.port, keepalive=10)
    client.loop_start()
    return client


def publish(client: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(10)


def wait_until(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def total(engine: Engine, model: Any) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_worker_stores_valid_rejects_bad_and_publishes_occupancy(broker: Broker,
                                                                 db_url: str) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    devices = seed(engine, centre_key=centre)
    worker = IngestWorker(settings_for(broker, db_url), engine, centre_key=centre,
                          data_key=bytes(32), periodic_s=3600).start()
    recorder = Recorder(broker, ("checkin/v1/sites/+/occupancy",), name="collector-2").start()
    publisher = OccupancyPublisher(engine, worker.client)
    gate = devices[GATE]
    client = device_client(broker, GATE)
    try:
        topic = f"checkin/v1/{GATE}/events"
        # Valid events: the agent's own builder (what the outbox stores and publishes).
        for i in range(5):
            draft = EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                               datetime.now(VN), f"{i:032x}", 1,
                               Demographics("25-44", "M", "001"))
            build = payload_builder(draft, device_id=GATE, site_id="hue-dai-noi",
                                    signing_key=gate.key, centre_key=centre.public_key())
            payload = build(i + 1, _UUID7())
            publish(client, topic, payload)
            if i == 0:
                publish(client, topic, payload)  # QoS 1 duplicate: stored once
        gate.seq = 5
        replay = gate.event(seq=3)
        tampered = dict(gate.event(seq=6), count=7)
        other = devices[GATE2].event()
        schema = dict(gate.event(seq=7), method="telepathy")
        bad = [b"{oops", wire_bytes(schema), wire_bytes(tampered), wire_bytes(replay),
               wire_bytes(other), b"[" + b"0," * 9000 + b"0]"]
        for payload in bad:
            publish(client, topic, payload)
        stranger = device_client(broker, STRANGER)
        ghost = FakeDevice(STRANGER, "hue-dai-noi", Ed25519PrivateKey.generate(),
                           centre.public_key()).event()
        publish(stranger, f"checkin/v1/{STRANGER}/events", wire_bytes(ghost))
        stranger.disconnect()
        assert wait_until(lambda: total(engine, IngestRejection) == 7), \
            total(engine, IngestRejection)
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Event)) == 5
            reasons = sorted(s.scalars(select(IngestRejection.reason)).all())
            assert reasons == sorted(["malformed-json", "schema", "bad-signature", "replay",
                                      "topic-device-mismatch", "oversize", "unknown-device"])
        assert publisher.tick() == ["hue-dai-noi", "ks-song-huong"]
        assert publisher.tick() == []  # unchanged, and not a minute old
        assert recorder.wait_for(lambda ms: any(
            m.topic.endswith("hue-dai-noi/occupancy") and m.json()["occupancy"] == 5
            for m in ms), 10)
        msg = next(m for m in recorder.snapshot() if m.topic.endswith("hue-dai-noi/occupancy"))
        from wire import validate

        validate("occupancy.v1", msg.json())
    finally:
        client.disconnect()
        client.loop_stop()
        recorder.stop()
        worker.stop()
        engine.dispose()


def _worked_example_publishes(broker: Broker, device_dir: Path) -> str:
    """The device's two mosquitto_pub commands of docs/protocol.md §10.1, pointed at the TLS
    test broker (the doc's broker is anonymous plain MQTT on loopback)."""
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    block = doc.split("<!-- worked-example: shell -->", 1)[1].split("```sh", 1)[1]
    block = block.split("```", 1)[0]
    device_part = block.split("# Device gate-ngo-mon-01", 1)[1].split("# The centre", 1)[0]
    device_part = device_part.split("\n", 1)[1]
    ident = broker.pki.device(GATE)
    tls = (f'--cafile {broker.pki.ca} --cert {ident.cert} --key {ident.key}')
    assert device_part.count('-h 127.0.0.1 -p "$PORT"') == 2
    return device_part.replace('-h 127.0.0.1 -p "$PORT"', f'-h 127.0.0.1 -p "$PORT" {tls}')


def test_mosquitto_pub_worked_example_is_ingested(broker: Broker, db_url: str,  # noqa: F811
                                                  tmp_path: Path) -> None:
    engine = migrated_engine(db_url)
    seed(engine, devices={GATE2: "hue-dai-noi"})
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_PRIVATE))
    with Session(engine) as s, s.begin():
        enrol_device(s, GATE, "hue-dai-noi", key.public_key(),
                     cert_pem=broker.pki.device(GATE).cert.read_bytes())
    # The example is dated 2025-04-30 (its signature fixes the date): older than the default
    # horizon of ingest (retention.events_days, docs/protocol.md §4.10), so the horizon is
    # widened as §10.1 tells a reader replaying it to.
    wide = Retention(events=timedelta(days=36500))
    worker = IngestWorker(settings_for(broker, db_url, retention=wide), engine,
                          periodic_s=3600).start()
    try:
        script = "set -eu\n" + _worked_example_publishes(broker, tmp_path)
        done = subprocess.run(["bash", "-c", script], env={**os.environ,
                              "PORT": str(broker.port)}, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert wait_until(lambda: total(engine, Event) == 1)
        with Session(engine) as s:
            ev = s.scalars(select(Event)).one()
            assert (ev.event_id, ev.seq, ev.kind) == ("01968479-e1cb-735b-9c5c-5c5c5c5c5c5c", 1,
                                                      "entry")
            assert wait_until(lambda: (s.get(Device, GATE, populate_existing=True)
                                       or Device()).state == "online")
            dev = s.get(Device, GATE)
            assert dev is not None and dev.version == "0.1.0" and dev.outbox_depth == 2
            assert total(engine, IngestRejection) == 0
    finally:
        worker.stop()
        engine.dispose()


def test_two_workers_one_killed_every_event_stored_exactly_once(
        broker: Broker, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    (tmp_path / "centre.key").write_bytes(centre.private_bytes_raw())
    (tmp_path / "data.key").write_bytes(os.urandom(32))
    devices = seed(engine, centre_key=centre)
    configs = [ingest_config(tmp_path, broker, db_url, n) for n in ("collector", "collector-2")]
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [spawn_ingest(c, log) for c, log in zip(configs, logs, strict=True)]
    n_per_device = 300
    try:
        assert wait_until(lambda: _subscribed(broker) >= 2, 20), broker.log_tail()
        time.sleep(0.5)
        clients = {d: device_client(broker, d) for d in (GATE, GATE2, DESK)}
        sent: list[str] = []
        killed = False
        for i in range(n_per_device):
            for device_id, client in clients.items():
                kind = "stay.start" if device_id == DESK else ("entry" if i % 2 else "exit")
                body = devices[device_id].event(kind, subject=f"{i:032x}")
                client.publish(f"checkin/v1/{device_id}/events", wire_bytes(body), qos=1)
                sent.append(body["event_id"])
            if i == n_per_device // 3 and not killed:
                workers[0].send_signal(signal.SIGKILL)  # mid-way: unacknowledged in flight
                workers[0].wait(10)
                killed = True
            if i == 2 * n_per_device // 3:
                workers[0] = spawn_ingest(configs[0], logs[0])  # back: its session is redelivered
        assert wait_until(lambda: total(engine, Event) >= len(sent), 90), (
            total(engine, Event), len(sent), logs[0].read_text()[-2000:],
            logs[1].read_text()[-2000:])
        time.sleep(1.0)  # anything extra would be a duplicate row: there must be none
        with Session(engine) as s:
            stored = s.scalars(select(Event.event_id)).all()
            assert sorted(stored) == sorted(sent)
            assert s.scalar(select(func.count()).select_from(IngestRejection)) == 0
            for device_id in (GATE, GATE2, DESK):
                dev = s.get(Device, device_id)
                assert dev is not None
                assert (dev.contiguous_seq, dev.last_seq) == (n_per_device, n_per_device)
        for client in clients.values():
            client.disconnect()
            client.loop_stop()
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
                try:
                    w.wait(10)
                except subprocess.TimeoutExpired:
                    w.kill()
        engine.dispose()


def _subscribed(broker: Broker) -> int:
    text = broker.log_path.read_text(errors="replace") if broker.log_path.exists() else ""
    return len(re.findall(r"New client connected .* as collector", text))


def test_a_flood_of_bad_messages_is_counted_not_written_and_valid_events_all_stored(
        broker: Broker, db_url: str, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """3,000 bad messages from one gate as fast as mosquitto takes them, with valid events of
    the same gate and of the desk in between: every message gets an outcome (and is counted),
    the gate costs at most 20 rejection rows and log lines in the interval plus one summary
    row and line when it ends, and every valid event is stored."""
    import logging
    from datetime import UTC

    from central.ingest import metrics

    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    devices = seed(engine, centre_key=centre)
    handled: list[int] = []
    worker = IngestWorker(settings_for(broker, db_url), engine, centre_key=centre,
                          data_key=bytes(32), periodic_s=3600,
                          on_batch=lambda r: handled.append(len(r.outcomes))).start()
    gate_client, desk_client = device_client(broker, GATE), device_client(broker, DESK)
    before = sum(metrics.REJECTIONS.labels(r)._value.get()
                 for r in ("malformed-json", "schema"))
    valid: list[str] = []
    caplog.set_level(logging.WARNING, logger="central.ingest")
    try:
        infos = []
        for i in range(3000):
            infos.append(gate_client.publish(f"checkin/v1/{GATE}/events",
                                             b"{oops" if i % 2 else b'{"v":1}', qos=1))
            if i % 300 == 0:
                for device_id, client in ((GATE, gate_client), (DESK, desk_client)):
                    kind = "entry" if device_id == GATE else "stay.start"
                    event = devices[device_id].event(kind)
                    valid.append(event["event_id"])
                    infos.append(client.publish(f"checkin/v1/{device_id}/events",
                                                wire_bytes(event), qos=1))
        for info in infos:
            info.wait_for_publish(30)
        assert wait_until(lambda: sum(handled) >= 3000 + len(valid), 60), sum(handled)
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(IngestRejection)) == 20
            assert set(s.scalars(select(Event.event_id)).all()) == set(valid)
        after = sum(metrics.REJECTIONS.labels(r)._value.get()
                    for r in ("malformed-json", "schema"))
        assert after - before == 3000
        lines = [r for r in caplog.records if r.getMessage().startswith("rejected ")]
        assert len(lines) == 20
        worker.periodic(datetime.now(UTC) + timedelta(seconds=61))  # the interval ends
        with Session(engine) as s:
            summary = s.scalars(select(IngestRejection.detail).where(
                IngestRejection.reason == "rate-limited")).one()
        assert summary is not None and "2980 further rejections" in summary
        assert len([r for r in caplog.records if "rate limit on" in r.getMessage()]) == 1
    finally:
        for client in (gate_client, desk_client):
            client.disconnect()
            client.loop_stop()
        worker.stop()
        engine.dispose()

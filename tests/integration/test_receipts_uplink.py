"""Receipts end to end on the real broker (docs/protocol.md §4.11): the collector's receipts
settle committed and rejected-for-good events in the agent's outbox; without a receipt the
agent resends after its timeout, on the same connection; only collector identities may write a
device's receipts topic."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.models import Event, IngestRejection
from central.ingest.worker import IngestWorker
from central.settings import BrokerSettings, CentralSettings
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    make_pki,
    raw_device_client,
    running_broker,
)
from tests.integration.pg_fixtures import (  # noqa: F401
    VN,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)

GATE = "gate-ngo-mon-01"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    pki = make_pki(tmp_path / "pki", devices=(GATE,))
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


def _draft(i: int) -> EventDraft:
    return EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                      datetime.now(VN), f"{i:032x}", 1, Demographics("25-44", "M", "001"))


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]


def test_collector_receipts_settle_committed_and_rejected_events(
        broker: Broker, db_url: str, tmp_path: Path) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    gate = seed(engine, centre_key=centre)[GATE]
    ident = broker.pki.collector("collector")
    settings = CentralSettings(database_url=db_url, broker=BrokerSettings(
        url=broker.url, ca=broker.pki.ca, cert=ident.cert, key=ident.key,
        client_id="collector", group="ingest", session_expiry_s=3600))
    worker = IngestWorker(settings, engine, centre_key=centre, data_key=bytes(32),
                          periodic_s=3600).start()
    outbox = Outbox(tmp_path / "outbox.db")
    uplink = Uplink(GATE, gate.site_id, broker.url, broker.pki.tls(GATE), outbox,
                    heartbeat_s=5, receipt_timeout_s=30)
    forger = Ed25519PrivateKey.generate()  # not the registered key: bad-signature, for good
    try:
        uplink.start()
        for i in range(10):
            key = forger if i in (3, 7) else gate.key
            outbox.commit(_draft(i), payload_builder(
                _draft(i), device_id=GATE, site_id=gate.site_id, signing_key=key,
                centre_key=centre.public_key()))
            uplink.wake()
        assert uplink.wait_receipted(30), (outbox.counts(), uplink.stats())
        receipts = Counter(outbox.get(seq).receipt for seq in range(1, 11))  # type: ignore[union-attr]
        assert receipts == {"committed": 8, "rejected:bad-signature": 2}
        assert outbox.get(4).receipt == outbox.get(8).receipt == "rejected:bad-signature"  # type: ignore[union-attr]
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Event)) == 8
            assert s.scalars(select(IngestRejection.reason)).all() == ["bad-signature"] * 2
        assert uplink.stats().resent == 0  # settled without a single resend
    finally:
        uplink.stop()
        outbox.close()
        worker.stop()
        engine.dispose()


def test_no_receipt_means_resend_after_the_timeout_until_one_comes(
        broker: Broker, tmp_path: Path) -> None:
    recorder = Recorder(broker, (f"checkin/v1/{GATE}/events",)).start()
    outbox = Outbox(tmp_path / "outbox.db")
    uplink = Uplink(GATE, "hue-dai-noi", broker.url, broker.pki.tls(GATE), outbox,
                    heartbeat_s=5, receipt_timeout_s=1.0)
    ids = []
    try:
        uplink.start()
        for i in range(5):
            entry = outbox.commit(_draft(i), lambda seq, eid: json.dumps(
                {"seq": seq, "event_id": str(eid)}).encode())
            ids.append(str(entry.event_id))
            uplink.wake()

        def copies() -> Counter[str]:
            return Counter(m.json()["event_id"] for m in recorder.snapshot())

        # PUBACKed by the broker, but no collector receipts them: each goes out again.
        assert _wait(lambda: all(copies()[i] >= 2 for i in ids), 30), (copies(), uplink.stats())
        assert uplink.stats().connects == 1  # resent by the timeout, not by a reconnect
        assert outbox.unreceipted() == 5
        # The collector's receipt (as a collector identity): committed through seq 5.
        receipt = {"v": 2, "device_id": GATE, "at": datetime.now(UTC).isoformat(),
                   "committed_through": 5, "committed": [], "rejected": []}
        info = recorder.client.publish(f"checkin/v1/{GATE}/receipts", json.dumps(receipt),
                                       qos=1, retain=True)
        info.wait_for_publish(10)
        assert uplink.wait_receipted(10), (outbox.counts(), uplink.stats())
        resent = uplink.stats().resent
        time.sleep(3.0)  # beyond the timeout: settled events are never requeued
        assert uplink.stats().resent == resent
        assert all(outbox.get(s).receipt == "committed" for s in range(1, 6))  # type: ignore[union-attr]
    finally:
        uplink.stop()
        outbox.close()
        recorder.stop()


def test_only_collectors_write_receipts_and_a_device_reads_its_own(broker: Broker) -> None:
    """A device forging its own receipt (to have events dropped) is refused by the ACL; the
    collector's receipt reaches the device."""
    topic = f"checkin/v1/{GATE}/receipts"
    recorder = Recorder(broker, ("checkin/v1/+/receipts",)).start()
    device = raw_device_client(broker, GATE)
    got: list[bytes] = []
    subscribed = threading.Event()
    device.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    device.on_subscribe = lambda *_a: subscribed.set()
    try:
        device.connect("127.0.0.1", broker.port, keepalive=10)
        device.loop_start()
        device.subscribe(topic, qos=1)
        assert subscribed.wait(10)
        forged = json.dumps({"v": 2, "device_id": GATE, "at": datetime.now(UTC).isoformat(),
                             "committed_through": 99, "committed": [], "rejected": []})
        device.publish(topic, forged, qos=1).wait_for_publish(10)
        real = json.dumps({"v": 2, "device_id": GATE, "at": datetime.now(UTC).isoformat(),
                           "committed_through": 1, "committed": [], "rejected": []})
        recorder.client.publish(topic, real, qos=1).wait_for_publish(10)
        assert recorder.wait_for(lambda ms: any(m.payload == real.encode() for m in ms), 10)
        assert _wait(lambda: real.encode() in got, 10)
        # The forged one was PUBLISHed first and would have been forwarded first.
        assert [m.payload for m in recorder.snapshot()] == [real.encode()]
        assert got == [real.encode()]
    finally:
        device.disconnect()
        device.loop_stop()
        recorder.stop()

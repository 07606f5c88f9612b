"""Property: no message stops or stalls ingest (docs/protocol.md §4.10).

Generated schema-valid and schema-invalid messages (events and statuses, signed with the
enrolled devices' own keys, plus byte noise and values at and past every schema bound) are
published through the real mosquitto to the REAL worker, on SQLite and PostgreSQL. After each
example: the worker still runs, every message got an outcome, no schema-valid message failed the
store (no ``dead-letter``), and every valid event is stored exactly once.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.db.models import Event
from central.ingest.store import BatchReport
from central.ingest.worker import IngestWorker
from central.settings import BrokerSettings, CentralSettings
from tests.integration.broker_fixtures import Broker, make_pki, raw_device_client, running_broker
from tests.integration.pg_fixtures import (  # noqa: F401
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import sign_event, wire_bytes

GATE, DESK = "gate-ngo-mon-01", "ks-song-huong-le-tan"
BAD_TIMES = ["2026-02-31T10:00:00+07:00", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+23:00",
             "9999-12-31T23:59:59-23:00", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]


class Rig:
    """A broker, a migrated database, a running worker and one MQTT client per device."""

    def __init__(self, broker: Broker, url: str) -> None:
        self.engine: Engine = migrated_engine(url)
        centre = X25519PrivateKey.generate()
        self.devices: dict[str, FakeDevice] = seed(self.engine, centre_key=centre)
        ident = broker.pki.collector("collector")
        cfg = CentralSettings(database_url=url, broker=BrokerSettings(
            url=broker.url, ca=broker.pki.ca, cert=ident.cert, key=ident.key,
            client_id="collector", group="ingest", session_expiry_s=3600))
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.handled = 0
        self.worker = IngestWorker(cfg, self.engine, centre_key=centre, data_key=bytes(32),
                                   periodic_s=3600, on_batch=self._count).start()
        self.clients: dict[str, mqtt.Client] = {}
        for device_id in (GATE, DESK):
            client = raw_device_client(broker, device_id)
            client.connect("127.0.0.1", broker.port, keepalive=10)
            client.loop_start()
            self.clients[device_id] = client

    def _count(self, report: BatchReport) -> None:
        with self.lock:
            self.handled += len(report.outcomes)
            self.outcomes.update(o.rejection.reason.value if o.rejection else o.result
                                 for o in report.outcomes)

    def publish(self, device_id: str, kind: str, payload: bytes) -> None:
        info = self.clients[device_id].publish(f"checkin/v1/{device_id}/{kind}", payload,
                                               qos=1)
        info.wait_for_publish(10)

    def wait_handled(self, target: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.handled >= target:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()
        self.worker.stop()
        self.engine.dispose()


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:  # noqa: F811
    pki = make_pki(tmp_path / "pki", devices=(GATE, DESK))
    with running_broker(tmp_path / "broker", pki) as broker:
        r = Rig(broker, db_url)
        try:
            yield r
        finally:
            r.close()


# -- what a device may send: (kind of message, parameters); built inside the test --------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80),
                      st.text(max_size=50))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=8), kids, max_size=3)),
    max_leaves=8)
top_member = st.sampled_from(["seq", "count", "occurred_at", "subject", "site_id", "method",
                              "reason", "details", "demographics", "kind", "assurance"])
valid_version = st.from_regex(r"[0-9A-Za-z.+-]{1,40}", fullmatch=True)

message = st.one_of(
    st.tuples(st.just("entry"), st.integers(1, 1000), st.sampled_from(["entry", "exit"])),
    st.tuples(st.just("stay"), st.text(st.characters(blacklist_categories=("Cc", "Cs")),
                                       min_size=1, max_size=32), st.booleans()),
    st.tuples(st.just("bad-time"), st.sampled_from(BAD_TIMES)),
    st.tuples(st.just("huge-int"), st.sampled_from(["seq", "count"]),
              st.one_of(st.integers(2**53, 2**70).map(str), st.just("9" * 5001))),
    st.tuples(st.just("long-room"), st.integers(33, 200)),
    st.tuples(st.just("wrong-kind"), st.sampled_from(["entry", "visit"])),
    st.tuples(st.just("mutated"), top_member, json_value),
    st.tuples(st.just("noise"), st.binary(max_size=64)),
    st.tuples(st.just("status"), valid_version, st.integers(0, 2**31 - 1),
              st.integers(0, 2**53 - 1)),
    st.tuples(st.just("bad-status"), st.one_of(
        st.tuples(st.just("outbox_depth"), st.integers(2**31, 2**70)),
        st.tuples(st.just("version"), st.from_regex(r"[0-9A-Za-z.+-]{41,60}", fullmatch=True)),
        st.tuples(st.just("at"), st.sampled_from(BAD_TIMES)))),
)


def _stay_details(room: str) -> dict[str, Any]:
    return {"stay_id": str(uuid.uuid4()), "ward_or_room": room,
            "expected_departure": "2026-12-31", "reason_code": "tourism"}


def _status(device: FakeDevice, **changes: Any) -> bytes:
    body = {"v": 1, "state": "online", "device_id": device.device_id,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"), "version": "0.1.0",
            "outbox_depth": 0, "oldest_undelivered_at": None, "readers": {}, "scanners": {}}
    return wire_bytes(sign_event(body | changes, device.key))


def _build(rig: Rig, spec: tuple[Any, ...]) -> tuple[list[tuple[str, str, bytes]], list[str]]:
    """(device, topic kind, payload) to publish, and the event_ids that must be stored."""
    gate, desk = rig.devices[GATE], rig.devices[DESK]
    tag = spec[0]
    if tag == "entry":
        event = gate.event(spec[2], count=spec[1], subject=uuid.uuid4().hex)
        payload = wire_bytes(event)
        return [(GATE, "events", payload), (GATE, "events", payload)], [event["event_id"]]
    if tag == "stay":
        details = _stay_details(spec[1])
        start = desk.event("stay.start", details=details)
        out = [(DESK, "events", wire_bytes(start))]
        ids = [start["event_id"]]
        if spec[2]:
            end = desk.event("stay.end", details=details)
            out.append((DESK, "events", wire_bytes(end)))
            ids.append(end["event_id"])
        return out, ids
    base = gate.event()
    unsigned = {k: v for k, v in base.items() if k != "sig"}
    if tag == "bad-time":
        return [(GATE, "events", wire_bytes(sign_event(unsigned | {"occurred_at": spec[1]},
                                                       gate.key)))], []
    if tag == "huge-int":
        text = wire_bytes(base)
        member = spec[1].encode()
        text = re.sub(rb'"%s":\d+' % member, b'"%s":%s' % (member, spec[2].encode()), text)
        return [(GATE, "events", text)], []
    if tag == "long-room":
        event = desk.event("stay.start", details=_stay_details("x" * spec[1]))
        return [(DESK, "events", wire_bytes(event))], []
    if tag == "wrong-kind":
        details = {"insurance": "valid"} if spec[1] == "visit" else {}
        return [(DESK, "events", wire_bytes(desk.event(spec[1], details=details)))], []
    if tag == "mutated":
        body = sign_event(unsigned | {spec[1]: spec[2]}, gate.key)
        return [(GATE, "events", wire_bytes(body))], []  # valid or not: not asserted stored
    if tag == "noise":
        return [(GATE, "events", spec[1]), (DESK, "status", spec[1])], []
    if tag == "status":
        return [(GATE, "status", _status(gate, version=spec[1], outbox_depth=spec[2],
                                         uptime_s=spec[3], outbox_bytes=spec[3]))], []
    member, value = spec[1]
    if member == "outbox_depth":
        payload = re.sub(rb'"outbox_depth":\d+', b'"outbox_depth":%d' % value, _status(gate))
        return [(GATE, "status", payload)], []
    return [(GATE, "status", _status(gate, **{member: value}))], []


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(message, min_size=1, max_size=10))
def test_no_message_stops_or_stalls_ingest(rig: Rig, specs: list[tuple[Any, ...]]) -> None:
    sent = 0
    expected: list[str] = []
    with rig.lock:
        target = rig.handled
    for spec in specs:
        messages, ids = _build(rig, spec)
        for device_id, kind, payload in messages:
            rig.publish(device_id, kind, payload)
            sent += 1
        expected.extend(ids)
    assert rig.wait_handled(target + sent), (rig.handled, target + sent)
    assert not rig.worker.stopping.is_set()
    assert all(t.is_alive() for t in rig.worker._threads)
    with rig.lock:
        assert rig.outcomes["dead-letter"] == 0 and rig.outcomes["internal-error"] == 0, \
            rig.outcomes
    with Session(rig.engine) as s:
        copies = dict(s.execute(select(Event.event_id, func.count()).where(
            Event.event_id.in_(expected)).group_by(Event.event_id)).all())
    assert all(copies.get(event_id) == 1 for event_id in expected), (expected, copies)

"""The uplink against a real mosquitto with TLS client certificates and ACLs."""

from __future__ import annotations

import functools
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import DeviceHealth, Uplink, UplinkConfigError
from tests.integration.broker_fixtures import (
    Broker,
    Pki,
    Received,
    Recorder,
    make_pki,
    raw_device_client,
    running_broker,
)
from tests.integration.kill_child import draft_for, visitors

SITE = "site-1"
WIRE = Path(__file__).resolve().parents[2] / "wire"


@functools.cache
def validator(name: str) -> Any:
    """A validator of the shared wire contract (wire/<name>.v1.schema.json)."""
    schema = json.loads((WIRE / f"{name}.v1.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
SIGNING = Ed25519PrivateKey.generate()
CENTRE = X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), devices=("gate-01", "gate-02"),
                    sites={"gate-01": SITE, "gate-02": SITE})


@pytest.fixture
def broker(tmp_path: Path, pki: Pki) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker", pki) as b:
        yield b


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    rec = Recorder(broker).start()
    yield rec
    rec.stop()


def commit(outbox: Outbox, device: str, d: EventDraft | None = None) -> Any:
    d = d or EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                        datetime.now(UTC), subject="0f" * 16)
    return outbox.commit(d, payload_builder(d, device_id=device, site_id=SITE,
                                            signing_key=SIGNING,
                                            centre_key=CENTRE.public_key()))


def uplink(broker: Broker, outbox: Outbox, device: str = "gate-01", cert_of: str | None = None,
           **kw: Any) -> Uplink:
    kw.setdefault("backoff", (0.05, 0.5))
    return Uplink(device, SITE, broker.url, broker.pki.tls(cert_of or device), outbox, **kw)


def first_copies(messages: list[Received]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for m in messages:
        event = m.json()
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            out.append(event)
    return out


def test_delivers_in_order_with_status_and_clean_stop(tmp_path: Path, broker: Broker,
                                                      recorder: Recorder) -> None:
    outbox = Outbox(tmp_path / "o.db")
    entries = [commit(outbox, "gate-01") for _ in range(120)]  # a backlog before connecting
    health = DeviceHealth(readers={"pcsc:0": "ok"}, scanners={"serial:ttyACM0": "absent"})
    up = uplink(broker, outbox, status_provider=lambda: health, inflight=8)
    up.start()
    for _ in range(30):
        entries.append(commit(outbox, "gate-01"))
        up.wake()
    assert up.wait_idle(15), up.stats()
    topic = "checkin/v1/gate-01/events"
    assert recorder.wait_for(lambda ms: len([m for m in ms if m.topic == topic]) >= 150, 10)
    got = recorder.on(topic)
    assert [m.payload for m in got] == [e.payload for e in entries]  # exact bytes, in order
    stats = up.stats()
    assert stats.connected and stats.delivered == 150 and stats.inflight == 0
    online = [m.json() for m in recorder.on("checkin/v1/gate-01/status")]
    assert online[0]["state"] == "online" and online[0]["readers"] == {"pcsc:0": "ok"}
    assert online[0]["version"] and "outbox_depth" in online[0] and "at" in online[0]
    up.stop()
    assert recorder.wait_for(
        lambda ms: any(m.topic.endswith("/status") and m.json()["state"] == "offline"
                       for m in ms), 5)
    for m in recorder.on("checkin/v1/gate-01/status"):  # the shared wire contract
        validator("status").validate(m.json())
    last = recorder.on("checkin/v1/gate-01/status")[-1].json()
    assert last["state"] == "offline" and last["reason"] == "stopped"
    assert not up.stats().connected
    # retained: a newcomer sees the latest status at once
    late = Recorder(broker, ("checkin/v1/gate-01/status",), name="collector-2").start()
    try:
        assert late.wait_for(bool, 5)
        assert late.snapshot()[0].retain and late.snapshot()[0].json()["state"] == "offline"
    finally:
        late.stop()
    outbox.close()


def test_heartbeat_reports_backlog_and_subscriptions_deliver_config(
        tmp_path: Path, broker: Broker, recorder: Recorder) -> None:
    # central side publishes retained config and occupancy before the device connects
    for topic, body in (("checkin/v1/gate-01/config", {"capacity": 500}),
                        (f"checkin/v1/sites/{SITE}/occupancy", {"inside": 42})):
        info = recorder.client.publish(topic, json.dumps(body), qos=1, retain=True)
        info.wait_for_publish(5)
    configs: list[dict[str, Any]] = []
    occupancy: list[dict[str, Any]] = []
    outbox = Outbox(tmp_path / "o.db")
    up = uplink(broker, outbox, heartbeat_s=0.3, on_config=configs.append,
                on_occupancy=occupancy.append)
    with up:
        deadline = time.monotonic() + 5
        while (not configs or not occupancy) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert configs == [{"capacity": 500}] and occupancy == [{"inside": 42}]
        recorder.client.publish(f"checkin/v1/sites/{SITE}/occupancy",
                                json.dumps({"inside": 43}), qos=1, retain=True)
        assert recorder.wait_for(lambda ms: len([m for m in ms if m.topic.endswith(
            "/status")]) >= 3, 5)
        time.sleep(0.2)
        assert occupancy[-1] == {"inside": 43}
    beats = [m.json() for m in recorder.on("checkin/v1/gate-01/status")]
    assert all(b["outbox_depth"] == 0 and b["oldest_undelivered_at"] is None
               for b in beats if b["state"] == "online")


def test_acl_refuses_another_devices_topic_and_the_uplink_keeps_working(
        tmp_path: Path, broker: Broker, recorder: Recorder) -> None:
    outbox = Outbox(tmp_path / "o.db")
    with uplink(broker, outbox) as up:
        commit(outbox, "gate-01")
        up.wake()
        assert up.wait_idle(10)
        # gate-02's certificate trying gate-01's topic: PUBACK 0x87, nothing forwarded
        acks: list[Any] = []
        done = threading.Event()
        rogue = raw_device_client(broker, "gate-02")

        def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            acks.append(reason)
            done.set()

        rogue.on_publish = on_publish
        rogue.connect("127.0.0.1", broker.port)
        rogue.loop_start()
        rogue.publish("checkin/v1/gate-01/events", b'{"forged":true}', qos=1)
        assert done.wait(5)
        assert acks[0].is_failure and acks[0].value == 0x87  # Not authorized
        rogue.disconnect()
        rogue.loop_stop()
        # the real uplink is untouched and keeps delivering
        for _ in range(5):
            commit(outbox, "gate-01")
        up.wake()
        assert up.wait_idle(10)
        assert up.stats().connected and up.stats().failed_acks == 0
    assert recorder.wait_for(lambda ms: len([m for m in ms if m.topic.endswith("/events")]) >= 6,
                             5)
    assert all(b"forged" not in m.payload for m in recorder.snapshot())

    # a device misconfigured with another device's id: refused, kept, reported, still connected
    wrong = Outbox(tmp_path / "wrong.db")
    commit(wrong, "gate-02")
    with uplink(broker, wrong, device="gate-02", cert_of="gate-01",
                retry_failed_s=0.2) as bad:
        deadline = time.monotonic() + 5
        while bad.stats().failed_acks < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = bad.stats()
        assert stats.failed_acks >= 2  # retried after retry_failed_s
        assert "Not authorized" in (stats.last_error or "")
        assert stats.connected and wrong.depth() == 1
    assert not recorder.on("checkin/v1/gate-02/events")


def test_broker_stopped_during_traffic_then_restarted(tmp_path: Path, broker: Broker,
                                                      recorder: Recorder) -> None:
    outbox = Outbox(tmp_path / "o.db")
    total = 600
    committed: list[Any] = []
    with uplink(broker, outbox) as up:
        def produce() -> None:
            for _ in range(total):
                committed.append(commit(outbox, "gate-01"))
                up.wake()
                time.sleep(0.002)

        producer = threading.Thread(target=produce)
        producer.start()
        while len(committed) < 150:
            time.sleep(0.005)
        broker.stop()
        down_at = len(committed)
        time.sleep(1.5)
        assert not up.stats().connected
        broker.start()
        producer.join()
        assert up.wait_idle(20), up.stats()
        assert up.stats().connects >= 2
        assert up.stats().no_subscribers == 0  # the collector's session survived the restart
    assert down_at < total
    topic = "checkin/v1/gate-01/events"
    recorder.wait_for(lambda ms: len(first_copies([m for m in ms if m.topic == topic]))
                      >= total, 15)
    firsts = first_copies(recorder.on(topic))
    missing = sorted(set(range(1, total + 1)) - {e["seq"] for e in firsts})
    assert not missing, (down_at, len(missing), missing[:5])
    assert [e["seq"] for e in firsts] == list(range(1, total + 1))  # all, in order, none lost
    assert [e["event_id"] for e in firsts] == [str(c.event_id) for c in committed]
    outbox.close()


ID12 = re.compile(rb"\d{12}")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_no_personal_data_on_the_wire(tmp_path: Path, broker: Broker,
                                      recorder: Recorder) -> None:
    rng = random.Random(7)
    people = visitors(rng, 40)
    outbox = Outbox(tmp_path / "o.db")
    drafts = [draft_for(rng.choice(people), rng) for _ in range(200)]
    assert any(d.kind.is_stay for d in drafts) and any(not d.kind.is_stay for d in drafts)
    with uplink(broker, outbox, status_provider=lambda: DeviceHealth({"r": "ok"}, {"s": "ok"})) \
            as up:
        for d in drafts:
            commit(outbox, "gate-01", d)
        up.wake()
        assert up.wait_idle(15)
        time.sleep(0.2)
    messages = recorder.snapshot()
    assert len([m for m in messages if m.topic.endswith("/events")]) >= 200
    names = {p.full_name.encode() for p in people} | {p.full_name.split()[-1].encode()
                                                        for p in people if
                                                        len(p.full_name.split()[-1]) > 3}
    ids = {p.id_number.encode() for p in people}
    sealed_count = 0
    for m in messages:
        # nowhere in the bytes, sealed box included: no ID number, no name, no date of birth
        assert not any(i in m.payload for i in ids), m.topic
        assert not any(n in m.payload for n in names), m.topic
        assert not any(p.born.isoformat().encode() in m.payload for p in people)
        body = m.json()
        validator("event" if m.topic.endswith("/events") else "status").validate(body)
        if body.get("sealed") is not None:
            sealed_count += 1
            assert body["kind"].startswith("stay.")
        # outside the sealed member: no 12-digit number anywhere (identifiers checked by form)
        outside = {k: v for k, v in body.items() if k not in ("sealed", "subject", "event_id",
                                                              "sig")}
        assert not ID12.search(json.dumps(outside).encode()), body
        if "subject" in body and body["subject"] is not None:
            assert HEX32.match(body["subject"])
        if "event_id" in body:
            assert UUID.match(body["event_id"])
    assert sealed_count == sum(d.kind.is_stay for d in drafts)
    # the edge disk holds no personal data in clear either
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("o.db*"))
    assert not any(i in disk for i in ids)


def test_configuration_errors(tmp_path: Path, pki: Pki) -> None:
    outbox = Outbox(tmp_path / "o.db")
    with pytest.raises(UplinkConfigError):
        Uplink("gate-01", SITE, "mqtts://127.0.0.1:1", None, outbox)
    with pytest.raises(UplinkConfigError):
        Uplink("gate/01", SITE, "mqtt://127.0.0.1:1", None, outbox)
    with pytest.raises(UplinkConfigError):
        Uplink("gate-01", SITE, "http://127.0.0.1", None, outbox)
    with pytest.raises(UplinkConfigError):
        Uplink("gate-01", SITE, "mqtts://127.0.0.1:1", (pki.ca, tmp_path / "no.crt",
                                                       tmp_path / "no.key"), outbox)


def test_unreachable_broker_backs_off_and_reports(tmp_path: Path, pki: Pki) -> None:
    outbox = Outbox(tmp_path / "o.db")
    up = Uplink("gate-01", SITE, "mqtts://127.0.0.1:9", pki.tls("gate-01"), outbox,
                backoff=(0.05, 0.2))
    with up:
        commit(outbox, "gate-01")
        up.wake()
        time.sleep(0.5)
        stats = up.stats()
        assert not stats.connected and "refused" in (stats.last_error or "").lower()
        assert outbox.depth() == 1
    assert isinstance(mqtt.MQTTv5, int)

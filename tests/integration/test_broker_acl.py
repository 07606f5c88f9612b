"""Every device-side attack on the broker, against the real mosquitto with the access rules that
``central broker-acl`` / ``central broker-sync`` generate from the registry (docs/protocol.md
§2, §3), while two honest gates publish to the real ingest worker: each attack is refused and
every one of the gates' events is stored, none lost.

The attacks: a device subscribing to the collector's share group ``$share/ingest/…`` (live, and
through a persistent session left behind), to ``#``, to other devices' and other sites' topics;
a device publishing as another device or as the centre (config, occupancy); a revoked device
and a never-enrolled certificate of the same CA; enrolling a device under a collector's name.
A revoked certificate is refused in the TLS handshake once the broker has reloaded the CRL that
``central broker-sync --crl`` rewrote; before that, and for a certificate the CRL cannot name,
it connects but is granted nothing.
"""

from __future__ import annotations

import json
import socket
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.broker_acl import wanted
from central.cli import main as central_main
from central.db.models import Event, IngestRejection, Site
from central.enrol import DeviceCA, EnrolmentError, enrol, issue_certificate
from central.ingest.worker import IngestWorker
from central.registry import RegistryError, enrol_device, revoke_device
from central.revocation import certificate_serial, listed
from central.settings import BrokerSettings, CentralSettings
from tests.integration.broker_fixtures import Broker, make_pki, running_broker, tls_context
from tests.integration.pg_fixtures import FakeDevice, migrated_engine, seed
from wire.signing import wire_bytes

HERITAGE, HOSPITAL = "hue-dai-noi", "bv-trung-uong-hue"
GATES = ("gate-ngo-mon-01", "gate-ngo-mon-02")
EVIL, OLD, OTHER, STRANGER = "gate-evil", "gate-old", "reception-1", "gate-stranger"
SHARE = "$share/ingest/checkin/v1/+/events"
NOT_AUTHORIZED = 0x87
PER_PHASE = 15


@dataclass
class Dev:
    """A device certificate's raw MQTT client with synchronous subscribe/publish results."""

    broker: Broker
    name: str
    persistent: bool = False
    connack: int | None = None
    messages: list[str] = field(default_factory=list)
    disconnected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._acks: dict[int, Any] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.name,
                                  protocol=mqtt.MQTTv5)
        self.client.tls_set_context(tls_context(self.broker.pki,
                                                self.broker.pki.devices[self.name]))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_ack
        self.client.on_publish = self._on_ack
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append(m.topic)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            self.connack = reason.value
            self._cond.notify_all()

    def _on_ack(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = reasons
            self._cond.notify_all()

    def connect(self) -> Dev:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600 if self.persistent else 0
        self.disconnected.clear()
        self.connack = None
        self.client.connect("127.0.0.1", self.broker.port, keepalive=10,
                            clean_start=not self.persistent, properties=props)
        self.client.loop_start()
        with self._cond:
            assert self._cond.wait_for(lambda: self.connack is not None, 10), "no CONNACK"
        return self

    def _wait(self, mid: int) -> Any:
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self._acks, 10), f"no ack for {mid}"
            return self._acks.pop(mid)

    def subscribe(self, topic: str) -> int:
        """The SUBACK reason code (0-2 granted QoS, 0x87 not authorised)."""
        _rc, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        codes = self._wait(mid)
        return int(codes[0].value)

    def publish(self, topic: str, payload: bytes = b"{}", retain: bool = False) -> int:
        """The PUBACK reason code (0 accepted, 0x10 no subscribers, 0x87 not authorised)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        code = self._wait(info.mid)
        return int(getattr(code, "value", code))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def handshake(broker: Broker, name: str) -> str:
    """A TLS handshake and an MQTT 5 CONNECT with ``name``'s certificate: "ok" when the broker
    answers the CONNECT, else why the connection failed."""
    ctx = tls_context(broker.pki, broker.pki.devices[name])
    try:
        with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            client_id = name.encode()
            body = (b"\x00\x04MQTT\x05\x02\x00\x0a\x00" + len(client_id).to_bytes(2, "big")
                    + client_id)
            tls.sendall(bytes([0x10, len(body)]) + body)
            answer = tls.recv(4)
            return "ok" if answer[:1] == b"\x20" else f"answer {answer!r}"
    except (ssl.SSLError, OSError) as exc:
        return str(exc)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Broker, Any, dict[str, FakeDevice], Path]]:
    devices = {g: HERITAGE for g in GATES} | {EVIL: HERITAGE, OLD: HERITAGE, OTHER: HOSPITAL}
    pki = make_pki(tmp_path / "pki", devices=(*devices, STRANGER), sites=devices)
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    engine = migrated_engine(url)
    fakes = seed(engine, sites={HERITAGE: "heritage", HOSPITAL: "hospital"}, devices=devices)
    # gate-old's certificate as central.enrol issues it: its serial follows from its signing
    # key, so the CRL can name it after the revocation.
    ca = DeviceCA(pki.ca_cert, pki.ca_key)
    raw = fakes[OLD].key.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_certificate(ca, OLD, tls_key.public_key(), datetime.now(UTC),
                             serial=certificate_serial(raw))
    pki.devices[OLD].cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.devices[OLD].key.write_bytes(tls_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    config = tmp_path / "central.toml"
    with running_broker(tmp_path / "broker", pki) as broker:
        config.write_text(f'database_url = "{url}"\n\n[broker]\nurl = "{broker.url}"\n'
                          f'ca = "{pki.ca}"\nclient_id = "collector"\n', encoding="utf-8")
        yield broker, engine, fakes, config


def stored(engine: Any) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(Event.event_id)))


def test_every_device_attack_is_refused_and_no_event_is_lost(
        world: tuple[Broker, Any, dict[str, FakeDevice], Path]) -> None:
    broker, engine, fakes, config = world
    collector = broker.pki.collector("collector")
    settings = CentralSettings(database_url=str(engine.url), broker=BrokerSettings(
        url=broker.url, ca=broker.pki.ca, cert=collector.cert, key=collector.key,
        client_id="collector", group="ingest", session_expiry_s=3600))
    worker = IngestWorker(settings, engine, periodic_s=3600).start()
    gates = {g: Dev(broker, g).connect() for g in GATES}
    sent: list[str] = []

    def gates_publish() -> None:
        for _ in range(PER_PHASE):
            for g, dev in gates.items():
                event = fakes[g].event("entry")
                assert dev.publish(f"checkin/v1/{g}/events", wire_bytes(event)) == 0
                sent.append(event["event_id"])

    opened: list[Dev] = []
    try:
        gates_publish()
        # A retained occupancy for each site, from the centre (collector-2 is a collector).
        other = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="collector-2",
                            protocol=mqtt.MQTTv5)
        other.tls_set_context(tls_context(broker.pki, broker.pki.collector("collector-2")))
        other.connect("127.0.0.1", broker.port)
        other.loop_start()
        for site in (HERITAGE, HOSPITAL):
            other.publish(f"checkin/v1/sites/{site}/occupancy", b'{"v":1}', qos=1,
                          retain=True).wait_for_publish(10)
        other.disconnect()
        other.loop_stop()

        # 1. Live: the enrolled attacker tries the collector's share group and wider filters.
        evil = Dev(broker, EVIL).connect()
        opened.append(evil)
        assert evil.connack == 0
        refused = [SHARE, "$share/ingest/checkin/v1/+/status", "$share/x/checkin/v1/#",
                   f"$share/ingest/checkin/v1/{EVIL}/config", "#", "checkin/v1/#",
                   "checkin/v1/+/events", f"checkin/v1/{GATES[0]}/events",
                   f"checkin/v1/{GATES[0]}/config", f"checkin/v1/{GATES[0]}/status",
                   f"checkin/v1/sites/{HOSPITAL}/occupancy", "checkin/v1/sites/+/occupancy",
                   "$SYS/#", "$CONTROL/dynamic-security/v1/response"]
        assert {t: evil.subscribe(t) for t in refused} == {t: NOT_AUTHORIZED for t in refused}
        # ... while its own topics work (the rules are not simply "deny all").
        assert evil.subscribe(f"checkin/v1/{EVIL}/config") == 1
        assert evil.subscribe(f"checkin/v1/sites/{HERITAGE}/occupancy") == 1
        gates_publish()

        # 2. Publishing as another device, as the centre, or to the broker's control topic.
        forged = [f"checkin/v1/{GATES[0]}/events", f"checkin/v1/{GATES[1]}/status",
                  f"checkin/v1/{EVIL}/config", f"checkin/v1/{GATES[0]}/config",
                  f"checkin/v1/sites/{HERITAGE}/occupancy",
                  f"checkin/v1/sites/{HOSPITAL}/occupancy", "$CONTROL/dynamic-security/v1"]
        assert {t: evil.publish(t, retain=True) for t in forged} == \
            {t: NOT_AUTHORIZED for t in forged}
        assert evil.publish(f"checkin/v1/{EVIL}/status", b"{}") == 0
        evil.close()
        assert set(evil.messages) == {f"checkin/v1/sites/{HERITAGE}/occupancy"}

        # 3. A persistent session that subscribes and leaves: nothing to leave behind.
        ghost = Dev(broker, EVIL, persistent=True).connect()
        assert ghost.subscribe(SHARE) == NOT_AUTHORIZED
        assert ghost.subscribe(f"checkin/v1/{EVIL}/config") == 1
        ghost.close()
        gates_publish()

        # 4. Revocation: the registry revokes gate-old; broker-sync rewrites the CRL and drops
        # its broker identity (and that of a CA-signed certificate that was never enrolled).
        old = Dev(broker, OLD, persistent=True).connect()
        stranger = Dev(broker, STRANGER).connect()
        opened += [old, stranger]
        assert old.subscribe(f"checkin/v1/{OLD}/config") == 1
        with Session(engine) as s, s.begin():
            revoke_device(s, OLD)
        admin = broker.pki.admin()
        assert central_main(["broker-sync", "--config", str(config), "--cert", str(admin.cert),
                             "--key", str(admin.key), "--crl", str(broker.crl_path),
                             "--device-ca-cert", str(broker.pki.ca),
                             "--device-ca-key", str(broker.pki.root / "ca.key"),
                             "--collector", "collector", "--collector", "collector-2"]) == 0
        assert old.disconnected.wait(10) and stranger.disconnected.wait(10)
        old.close()
        stranger.close()
        # Until the broker reloads its CRL, and for a certificate the CRL cannot name (the
        # stranger's random serial), the handshake passes but nothing at all is granted.
        for name, persistent in ((OLD, True), (STRANGER, False)):
            again = Dev(broker, name, persistent=persistent).connect()
            opened.append(again)
            assert again.connack == 0
            for topic in (SHARE, f"checkin/v1/{name}/config", "#",
                          f"checkin/v1/sites/{HERITAGE}/occupancy"):
                assert again.subscribe(topic) == NOT_AUTHORIZED, (name, topic)
            for topic in (f"checkin/v1/{name}/events", f"checkin/v1/{name}/status"):
                assert again.publish(topic, b"{}") == NOT_AUTHORIZED, (name, topic)
            again.close()
            assert again.messages == [], name
        # After the reload (systemctl reload mosquitto = SIGHUP) the revoked certificate fails
        # the TLS handshake (the client sees the "certificate revoked" alert or just the close).
        broker.reload()
        mark = broker.log_path.stat().st_size
        assert handshake(broker, OLD) != "ok"
        deadline = time.monotonic() + 10  # the broker may log it just after closing
        while ("certificate verify failed" not in broker.log_path.read_text()[mark:]
               and time.monotonic() < deadline):
            time.sleep(0.05)
        assert "certificate verify failed" in broker.log_path.read_text()[mark:]
        assert handshake(broker, EVIL) == "ok"
        opened.append(Dev(broker, EVIL).connect())
        assert opened[-1].connack == 0  # the same CA's other certificates still connect
        gates_publish()

        # Everything the gates published is stored, each exactly once; nothing forged arrived.
        deadline = time.monotonic() + 30
        while len(stored(engine)) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sent) == 4 * PER_PHASE * len(GATES)
        assert stored(engine) == set(sent)
        with Session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Event)) == len(sent)
            # The only message that reached the ingest without being an honest gate's event is
            # the attacker's own (unsigned, invalid) status, on the one topic it may write.
            assert list(s.execute(select(IngestRejection.topic, IngestRejection.reason))) == \
                [(f"checkin/v1/{EVIL}/status", "schema")]
    finally:
        for dev in [*gates.values(), *opened]:
            dev.close()
        worker.stop()


def test_collector_names_cannot_be_enrolled(tmp_path: Path) -> None:
    engine = migrated_engine(f"sqlite:///{tmp_path / 'central.sqlite3'}")
    seed(engine, sites={HERITAGE: "heritage"}, devices={"gate-1": HERITAGE})
    ca = DeviceCA.create()
    names = ("collector", "collector-1", "collector-99", "broker-admin", "broker", "central",
             "sites")
    with Session(engine) as s:
        site = s.get(Site, HERITAGE)
        assert site is not None
        for name in names:
            with pytest.raises(EnrolmentError, match="reserved"):
                enrol(s, device_id=name, site=site, ca=ca, centre_public=b"\x01" * 32,
                      broker_url="mqtts://127.0.0.1:8883", now=datetime.now(UTC))
            with pytest.raises(RegistryError, match="reserved"):
                enrol_device(s, name, HERITAGE, Ed25519PrivateKey.generate().public_key())
        # A name that only starts like one is an ordinary device.
        enrolled = enrol(s, device_id="collectors-hall", site=site, ca=ca,
                         centre_public=b"\x01" * 32, broker_url="mqtts://127.0.0.1:8883")
        assert enrolled.device.id == "collectors-hall"
    # A registry row with a reserved name (enrolled before the rule) gets nothing at the broker.
    state = wanted([("collector-1", HERITAGE), ("gate-1", HERITAGE)], ["collector"])
    assert state.skipped == ("collector-1",)
    assert state.clients == {"collector": "collector", "broker-admin": "broker-admin",
                             "gate-1": "device-gate-1"}


def test_broker_acl_writes_the_first_start_files_from_the_registry(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
    engine = migrated_engine(url)
    fakes = seed(engine, sites={HERITAGE: "heritage"},
                 devices={"gate-1": HERITAGE, "gate-2": HERITAGE})
    with Session(engine) as s, s.begin():
        revoke_device(s, "gate-2")
    ca = DeviceCA.create()
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    config = tmp_path / "central.toml"
    config.write_text(f'database_url = "{url}"\n', encoding="utf-8")
    out, crl = tmp_path / "dynamic-security.json", tmp_path / "devices.crl"
    assert central_main(["broker-acl", "--config", str(config), "--output", str(out),
                         "--collector", "collector-1", "--collector", "collector-2",
                         "--crl", str(crl), "--device-ca-cert", str(tmp_path / "ca.crt"),
                         "--device-ca-key", str(tmp_path / "ca.key")]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [c["username"] for c in doc["clients"]] == ["broker-admin", "collector-1",
                                                       "collector-2", "gate-1"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(crl.stat().st_mode) == 0o644
    raw = fakes["gate-2"].key.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)
    assert listed(crl.read_bytes()) == frozenset({certificate_serial(raw)})

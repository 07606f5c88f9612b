"""A real mosquitto with TLS client certificates and ACLs, a test PKI, and a wire recorder.

* :func:`make_pki`: a CA, a broker certificate for 127.0.0.1 / localhost, device certificates
  (CN = device id) and collector certificates, all ECDSA P-256, made with ``cryptography``.
* :class:`Broker`: writes ``mosquitto.conf`` (TLS listener on a free 127.0.0.1 port,
  ``require_certificate``, ``use_identity_as_username`` so the certificate CN is the username,
  ``use_username_as_clientid`` so no device can take another's client id; persistence in the
  temp dir so a graceful restart keeps the collector's queued messages) and, as in
  deploy/mosquitto, the dynamic-security plugin with the identities that
  :mod:`central.broker_acl` generates from the PKI's devices (each at its site, revoked ones
  left out), collectors and ``broker-admin``; starts ``mosquitto -c``, waits until it listens,
  stops and restarts it **on the same port**.
* :class:`Recorder`: a paho subscriber with a collector certificate and a persistent session
  that records every message's topic and exact payload bytes.

A missing mosquitto FAILS the test (docs/design.md §5: never a silent skip).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from central.broker_acl import ADMIN, document, plugin_path, wanted
from central.broker_sync import SyncResult, sync
from central.revocation import build_crl
from central.settings import BrokerSettings

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if Path("/usr/sbin/mosquitto").exists() else None)

DEFAULT_SITE = "hue-dai-noi"


def require_mosquitto() -> str:
    if MOSQUITTO is None:
        pytest.fail("mosquitto is not installed (apt-get install mosquitto): the integration "
                    "tests need the real broker")
    return MOSQUITTO


# -- PKI -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    name: str
    cert: Path
    key: Path


@dataclass
class Pki:
    root: Path
    ca: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    broker: Identity
    devices: dict[str, Identity] = field(default_factory=dict)
    collectors: dict[str, Identity] = field(default_factory=dict)
    sites: dict[str, str] = field(default_factory=dict)
    """Device id → site id (the registry's view); :data:`DEFAULT_SITE` unless given."""
    revoked: set[str] = field(default_factory=set)
    """Devices the registry has revoked: the broker grants them nothing."""

    def tls(self, device_id: str) -> tuple[Path, Path, Path]:
        ident = self.device(device_id)
        return (self.ca, ident.cert, ident.key)

    def device(self, device_id: str, site: str | None = None) -> Identity:
        if device_id not in self.devices:
            self.devices[device_id] = _issue(self, device_id, server=False)
        if site is not None or device_id not in self.sites:
            self.sites[device_id] = site or DEFAULT_SITE
        return self.devices[device_id]

    def admin(self) -> Identity:
        """The ``broker-admin`` identity that sends dynamic-security commands."""
        return self.collector(ADMIN)

    def registry(self) -> list[tuple[str, str]]:
        """``(device_id, site_id)`` of every device not revoked."""
        return [(d, self.sites.get(d, DEFAULT_SITE)) for d in self.devices
                if d not in self.revoked]

    def collector(self, name: str = "collector") -> Identity:
        if name not in self.collectors:
            self.collectors[name] = _issue(self, name, server=False)
        return self.collectors[name]


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cccd-checkin test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(pki: Pki, cn: str, *, server: bool) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(pki.ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(
                   [ExtendedKeyUsageOID.SERVER_AUTH if server
                    else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(pki.ca_key, hashes.SHA256())
    cert_path, key_path = pki.root / f"{cn}.crt", pki.root / f"{cn}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
    return Identity(cn, cert_path, key_path)


def make_pki(root: Path, devices: tuple[str, ...] = (),
             collectors: tuple[str, ...] = ("collector", "collector-2"),
             sites: dict[str, str] | None = None) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_cert = (x509.CertificateBuilder().subject_name(_name("test CA"))
               .issuer_name(_name("test CA")).public_key(ca_key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    ca_path = root / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, root / "ca.key")
    pki = Pki(root, ca_path, ca_key, ca_cert, broker=Identity("", ca_path, ca_path))
    pki.broker = _issue(pki, "broker", server=True)
    for device in devices:
        pki.device(device, (sites or {}).get(device))
    for name in collectors:
        pki.collector(name)
    pki.admin()
    return pki


# -- broker ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Broker:
    """One mosquitto process on a fixed 127.0.0.1 port; restartable on the same port."""

    def __init__(self, root: Path, pki: Pki, port: int | None = None,
                 config: tuple[Path, Path] | None = None) -> None:
        """``config``: (configuration file, its log file) written elsewhere (the shipped
        configuration) instead of this class's own; ``port`` must be its listener."""
        self.binary = require_mosquitto()
        self.root = root
        self.pki = pki
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        self.log_path = root / "mosquitto.log"
        self.dynsec_path = root / "dynamic-security.json"
        self.conf_path = root / "mosquitto.conf"
        plugin = plugin_path()
        if plugin is None:
            pytest.fail("mosquitto's dynamic-security plugin is missing (Debian's mosquitto "
                        "package ships mosquitto_dynamic_security.so)")
        self.dynsec_path.write_text(json.dumps(document(self.wanted())))
        self.dynsec_path.chmod(0o600)
        self.crl_path = root / "devices.crl"
        self.crl_path.write_bytes(build_crl(pki.ca_cert, pki.ca_key, [],
                                            dt.datetime.now(dt.UTC)))
        self.conf_path.write_text(f"""\
per_listener_settings false
user {pwd.getpwuid(os.getuid()).pw_name}
allow_anonymous false
plugin {plugin}
plugin_opt_config_file {self.dynsec_path}
persistence true
persistence_location {root / "data"}/
autosave_interval 0
max_queued_messages 100000
log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true

listener {self.port} 127.0.0.1
cafile {pki.ca}
certfile {pki.broker.cert}
keyfile {pki.broker.key}
crlfile {self.crl_path}
require_certificate true
use_identity_as_username true
use_username_as_clientid true
tls_version tlsv1.2
""")
        if config is not None:
            self.conf_path, self.log_path = config

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"

    def wanted(self) -> Any:
        collectors = [n for n in self.pki.collectors if n != ADMIN]
        return wanted(self.pki.registry(), collectors)

    def sync(self) -> SyncResult:
        """``central broker-sync`` against this broker from the PKI's registry view."""
        admin = self.pki.admin()
        return sync(BrokerSettings(url=self.url, ca=self.pki.ca), admin.cert, admin.key,
                    self.wanted())

    def start(self, timeout: float = 10.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"mosquitto exited with {self.proc.returncode}: {err}\n"
                            f"{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        self.stop()
        pytest.fail(f"mosquitto did not listen on {self.port} within {timeout} s\n"
                    f"{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: mosquitto saves its persistence file and exits (SIGKILL: a crash)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def reload(self) -> None:
        """SIGHUP, as ``systemctl reload mosquitto``: mosquitto 2.0.11 reads its CRL again."""
        assert self.proc is not None and self.proc.poll() is None, "not running"
        mark = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if b"Reloading config" in self.log_path.read_bytes()[mark:]:
                return
            time.sleep(0.02)
        pytest.fail(f"mosquitto did not reload\n{self.log_tail()}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()


# -- raw clients -----------------------------------------------------------------------------


def tls_context(pki: Pki, ident: Identity) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(str(ident.cert), str(ident.key))
    return ctx


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """A collector-side subscriber that keeps every message it receives, byte for byte.

    It keeps a persistent session (Clean Start = 0 on every connect, Session Expiry 1 h,
    MQTT 5 §3.1.2.4 / §3.1.2.11.2) so messages queued while it reconnects after a broker restart
    still reach it, like the real ingest worker. Clean Start must be 0 from the FIRST connect:
    mosquitto 2.0.11 does not write a session that began with Clean Start = 1 to its
    persistence file, so after a restart the subscription is gone and the broker answers the
    devices' PUBLISHes with 0x10 "no matching subscribers" (observed in this suite).
    """

    def __init__(self, broker: Broker, topics: tuple[str, ...] = ("checkin/v1/#",),
                 name: str = "collector") -> None:
        self.broker = broker
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        ident = broker.pki.collector(name)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name,
                                  protocol=mqtt.MQTTv5)
        self.client.tls_set_context(tls_context(broker.pki, ident))
        self.client.reconnect_delay_set(0.05, 0.5)
        self._topics = topics

        def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
            if not reason.is_failure:
                client.subscribe([(t, SubscribeOptions(qos=1)) for t in self._topics])

        def on_subscribe(*args: Any) -> None:
            self._subscribed.set()

        def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain),
                                              time.monotonic()))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message

    def start(self, timeout: float = 10.0) -> Recorder:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.broker.port, keepalive=10,
                            clean_start=False, properties=props)
        self.client.loop_start()
        assert self._subscribed.wait(timeout), "recorder did not subscribe"
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.snapshot() if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.snapshot()):
                return True
            time.sleep(0.02)
        return predicate(self.snapshot())


def raw_device_client(broker: Broker, device_id: str) -> mqtt.Client:
    """A bare paho client holding ``device_id``'s certificate (for ACL tests)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv5)
    client.tls_set_context(tls_context(broker.pki, broker.pki.device(device_id)))
    return client


@contextlib.contextmanager
def running_broker(root: Path, pki: Pki) -> Iterator[Broker]:
    broker = Broker(root, pki)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def env_for_child() -> dict[str, str]:
    """Environment for agent child processes (the repository on the path)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ingest_config(tmp: Path, broker: Broker, url: str, name: str = "collector",
                  metrics_port: int = 0) -> Path:
    """A ``central ingest`` configuration for the collector identity ``name`` on ``broker``:
    the shared group ``ingest``, small quick batches, no occupancy publishing, and the centre's
    keys at ``tmp/centre.key`` and ``tmp/data.key`` (the caller writes them)."""
    ident = broker.pki.collector(name)
    path = tmp / f"{name}-{metrics_port}.toml"
    path.write_text(f"""\
database_url = "{url}"
[broker]
url = "{broker.url}"
ca = "{broker.pki.ca}"
cert = "{ident.cert}"
key = "{ident.key}"
client_id = "{name}"
group = "ingest"
session_expiry_s = 3600
[keys]
centre_private_key = "{tmp / 'centre.key'}"
data_key = "{tmp / 'data.key'}"
[ingest]
batch_size = 50
batch_ms = 20
publish_occupancy = false
metrics_port = {metrics_port}
""")
    return path


def spawn_ingest(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``central ingest`` as its own process (its command line), output appended to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "central.ingest", "ingest", "--config",
                             str(config)], env=env_for_child(),
                            cwd=Path(__file__).resolve().parents[2],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)

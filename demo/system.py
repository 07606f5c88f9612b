"""The whole system on one machine: the README's main job (``bash deploy/start.sh``, which runs
``cccd-demo``, :mod:`demo.cli`).

Starts a broker (mosquitto with TLS and the configuration of deploy/mosquitto: the
dynamic-security plugin that ``central broker-sync`` fills from the registry, the CRL), the
collector (SQLite, migrations, an administrator, enrolled devices, an ingest worker, the web),
five agent processes at two simulated sites — a heritage site with two entry gates and an
exit gate, a hospital with a reception desk and a ward admission desk — whose readers are
contactless tags on nfcpy's UDP transport and whose scanners are pseudo-terminals, and the
visitor-traffic generator that owns that simulated hardware. Agents and collector run as the
same programs an operator deploys; the generator never reaches into them.

``--duration S --check``: run for S seconds, stop the traffic, wait until every agent's outbox is
delivered, and exit 1 unless the centre's counts equal exactly what the gates accepted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from central.at_rest import new_data_key
from central.broker_acl import ADMIN, document, plugin_path, wanted
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import (
    ApiToken,
    Role,
    Rollup,
    Site,
    SiteKind,
    Stay,
    Unit,
    UnitLevel,
    User,
)
from central.enrol import DeviceCA, enrol, issue_certificate
from central.migrations import upgrade
from central.private_files import extract_private_zip, private_dir, write_private
from central.revocation import build_crl
from central.web.security import hash_password, token_hash
from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from firmware_sim.traffic import (
    CardSlot,
    Station,
    TrafficGenerator,
    UdpSlot,
    visitors_from,
)

HERITAGE, HOSPITAL = "hue-dai-noi", "bv-trung-uong-hue"


@dataclass(frozen=True)
class StationSpec:
    device_id: str
    site_id: str
    role: str
    chip: bool
    kind: str
    direction: str | None = None
    reader: str = "nfc"
    """``nfc``: a tag on nfcpy's UDP transport; ``pcsc``: the PC/SC reader of ``pcsc_slot``."""


STATIONS = (
    StationSpec("gate-ngo-mon-1", HERITAGE, "entry", True, "heritage-gate", "entry"),
    StationSpec("gate-ngo-mon-2", HERITAGE, "entry", False, "heritage-gate", "entry"),
    StationSpec("gate-hien-nhon", HERITAGE, "exit", True, "heritage-gate", "exit"),
    StationSpec("reception-1", HOSPITAL, "reception", True, "hospital-reception"),
    StationSpec("ward-noi-3", HOSPITAL, "ward", False, "hospital-reception"),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


@dataclass
class System:
    """Everything the demo started, to stop it again in reverse order."""

    root: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    scanners: list[PtySerialScanner] = field(default_factory=list)
    tags: list[UdpTagBridge] = field(default_factory=list)
    broker_argv: list[str] = field(default_factory=list)

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return next(proc for n, proc in reversed(self.processes) if n == name)

    def restart(self, name: str, argv: list[str], log_name: str, *,
                sig: int = signal.SIGKILL, pause: float = 2.0) -> subprocess.Popen[bytes]:
        """Kill a part (SIGKILL: a crash; SIGTERM: a stop) and start it again."""
        proc = self.process(name)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        time.sleep(pause)
        return self.spawn(name, argv, log_name)

    def spawn(self, name: str, argv: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / log_name).open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes.append((name, proc))
        return proc

    def stop(self) -> None:
        for _name, proc in reversed(self.processes):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for tag in self.tags:
            tag.stop()
        for scanner in self.scanners:
            scanner.close()


# -- PKI and keys ---------------------------------------------------------------------------------


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    write_private(path, key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))


def broker_certificate(ca: DeviceCA, pki: Path) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")]))
            .issuer_name(ca.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    (pki / "broker.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pki / "broker.key")
    return pki / "broker.crt", pki / "broker.key"


def client_certificate(ca: DeviceCA, pki: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_certificate(ca, name, key.public_key(), dt.datetime.now(dt.UTC))
    (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, pki / f"{name}.key")
    return pki / f"{name}.crt", pki / f"{name}.key"


# -- the parts ------------------------------------------------------------------------------------


DEPLOY_BROKER_CONF = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / \
    "cccd-checkin.conf"


def broker_config(deploy: str, local: dict[str, str], user: str,
                  added: dict[str, str] | None = None) -> str:
    """The deploy broker configuration with this machine's paths and port: every line whose
    option is in ``local`` gets that value instead (each must occur: a drifting deploy file
    fails here), everything else — access plugin, CRL check, limits — is kept as deployed.
    ``added``: options the deploy file leaves to the distribution's main configuration
    (Debian's ``mosquitto.conf`` sets ``persistence_location``), written first."""
    seen: set[str] = set()
    lines = [f"user {user}", *(f"{k} {v}" for k, v in (added or {}).items())]
    for line in deploy.splitlines():
        option = line.split(" ", 1)[0]
        if option in local and not line.startswith("#"):
            seen.add(option)
            lines.append(f"{option} {local[option]}")
        else:
            lines.append(line)
    missing = set(local) - seen
    if missing:
        raise SystemExit(f"{DEPLOY_BROKER_CONF}: no {', '.join(sorted(missing))} line")
    return "\n".join(lines) + "\n"


def start_broker(system: System, pki: Path, port: int, ca: DeviceCA,
                 collectors: tuple[str, ...] = ("collector",)) -> None:
    """mosquitto with the deploy configuration: the dynamic-security plugin holding the
    collectors and broker-admin (devices come with :func:`sync_broker` after enrolment) and
    the device CA's CRL."""
    mosquitto = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if mosquitto is None:
        raise SystemExit("mosquitto is not installed: bash deploy/start.sh installs it "
                         "(apt-get install mosquitto)")
    plugin = plugin_path()
    if plugin is None:
        raise SystemExit("mosquitto's dynamic-security plugin is missing (Debian's mosquitto "
                         "package ships mosquitto_dynamic_security.so)")
    broker = system.root / "broker"
    (broker / "data").mkdir(parents=True)
    dynsec = broker / "dynamic-security.json"
    dynsec.write_text(json.dumps(document(wanted([], collectors))), encoding="utf-8")
    dynsec.chmod(0o600)
    client_certificate(ca, pki, ADMIN)
    crl = broker / "devices.crl"
    crl.write_bytes(build_crl(ca.cert, ca.key, [], dt.datetime.now(dt.UTC)))
    conf = broker / "mosquitto.conf"
    conf.write_text(broker_config(DEPLOY_BROKER_CONF.read_text(encoding="utf-8"), {
        "plugin": str(plugin), "plugin_opt_config_file": str(dynsec),
        "log_dest": f"file {system.root / 'logs' / 'mosquitto.log'}",
        "listener": f"{port} 127.0.0.1", "cafile": str(pki / "ca.crt"),
        "certfile": str(pki / "broker.crt"), "keyfile": str(pki / "broker.key"),
        "crlfile": str(crl)}, pwd.getpwuid(os.getuid()).pw_name,
        added={"persistence_location": f"{broker / 'data'}/"}), encoding="utf-8")
    system.broker_argv = [mosquitto, "-c", str(conf)]
    system.spawn("mosquitto", system.broker_argv, "mosquitto.out")
    wait_port(port, "mosquitto")


def sync_broker(system: System, central_toml: Path, pki: Path) -> None:
    """``central broker-sync`` as the operator's timer runs it: the enrolled devices get their
    own topics at the broker; a rewritten CRL is followed by a reload (SIGHUP)."""
    crl = system.root / "broker" / "devices.crl"
    before = crl.read_bytes()
    central = Path(sys.executable).parent / "central"
    done = subprocess.run(
        [str(central), "broker-sync", "--config", str(central_toml),
         "--cert", str(pki / f"{ADMIN}.crt"), "--key", str(pki / f"{ADMIN}.key"),
         "--crl", str(crl), "--device-ca-cert", str(pki / "ca.crt"),
         "--device-ca-key", str(pki / "ca.key")],
        capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"central broker-sync failed: {done.stderr or done.stdout}")
    say(done.stdout.strip().splitlines()[-1])
    if crl.read_bytes() != before:
        system.process("mosquitto").send_signal(signal.SIGHUP)


def wait_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start (see var/demo/logs)")


def seed_collector(root: Path, database_url: str, ca: DeviceCA, centre: X25519PrivateKey,
                   broker_url: str, password: str,
                   stations: tuple[StationSpec, ...] = STATIONS) -> dict[str, Path]:
    """Migrate, create units, sites, the administrator, and enrol every device."""
    upgrade(database_url)
    sessions = make_sessionmaker(make_engine(database_url))
    bundles: dict[str, Path] = {}
    now = dt.datetime.now(dt.UTC)
    with sessions() as session, session.begin():
        province = Unit(code="46", name="Thừa Thiên Huế", level=UnitLevel.PROVINCE)
        session.add(province)
        session.flush()
        city = Unit(code="474", name="Thành phố Huế", level=UnitLevel.DISTRICT,
                    parent_id=province.id)
        session.add(city)
        session.flush()
        session.add_all([
            Site(id=HERITAGE, name="Hoàng thành Huế", kind=SiteKind.HERITAGE, unit_id=city.id,
                 capacity=5000),
            Site(id=HOSPITAL, name="Bệnh viện Trung ương Huế", kind=SiteKind.HOSPITAL,
                 unit_id=city.id, capacity=None),
            User(username="admin", password_hash=hash_password(password), role=Role.ADMIN,
                 created_at=now),
        ])
        session.flush()
        for spec in stations:
            site = session.get(Site, spec.site_id)
            assert site is not None
            enrolment = enrol(session, device_id=spec.device_id, site=site, ca=ca,
                              centre_public=centre.public_key().public_bytes(
                                  serialization.Encoding.Raw, serialization.PublicFormat.Raw),
                              broker_url=broker_url, direction=spec.direction, now=now)
            target = root / "devices"
            extract_private_zip(enrolment.bundle, target)  # keys 0600, folders 0700
            bundles[spec.device_id] = target / spec.device_id
    return bundles


def agent_config(folder: Path, spec: StationSpec, broker_url: str, reader_uri: str | None,
                 scanner: PtySerialScanner, kiosk_port: int, trust: Path) -> Path:
    readers = f'["{reader_uri}"]' if reader_uri else "[]"
    direction = f'direction = "{spec.direction}"\n' if spec.direction else ""
    config = folder / "demo-agent.toml"
    config.write_text(f"""[device]
id = "{spec.device_id}"
site_id = "{spec.site_id}"
site_kind = "{spec.kind}"
{direction}name = "{spec.device_id}"

[keys]
signing_key = "keys/device-ed25519.pem"
centre_public_key = "keys/centre-x25519.pub.pem"

[readers]
uris = {readers}

[scanners]
uris = ["serial:{scanner.path}?terminator=cr"]

[chip]
trust_dir = "{trust}"

[broker]
url = "{broker_url}"
ca = "tls/ca.pem"
cert = "tls/{spec.device_id}.crt"
key = "tls/{spec.device_id}.key"
heartbeat_s = 10

[outbox]
path = "{folder / 'outbox.sqlite3'}"

[kiosk]
port = {kiosk_port}
""", encoding="utf-8")
    return config


def wait_scanner_open(proc: subprocess.Popen[bytes], scanner: PtySerialScanner,
                      timeout: float = 60) -> None:
    """pyserial discards what arrives before it opens the port: wait for the open tty."""
    slave = os.path.realpath(scanner.path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("an agent exited at start (see var/demo/logs)")
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{proc.pid}/fd").iterdir()
            if any(os.path.realpath(fd) == slave for fd in fds):
                return
        time.sleep(0.05)
    raise SystemExit("an agent did not open its scanner (see var/demo/logs)")


def centre_counts(database_url: str) -> Counter[tuple[str, str]]:
    """The centre's figures for what the generator counts: people by site and kind."""
    sessions = make_sessionmaker(make_engine(database_url))
    counts: Counter[tuple[str, str]] = Counter()
    with sessions() as session:
        rows = session.execute(
            select(Rollup.site_id, Rollup.kind, func.sum(Rollup.people))
            .where(Rollup.kind.in_(("entry", "exit", "visit")))
            .group_by(Rollup.site_id, Rollup.kind)).all()
        for site_id, kind, people in rows:
            counts[(site_id, kind)] = int(people or 0)
        for site_id, started, ended in session.execute(
                select(Stay.site_id, func.count(), func.count(Stay.ended_at))
                .group_by(Stay.site_id)).all():
            counts[(site_id, "stay.start")] = int(started)
            counts[(site_id, "stay.end")] = int(ended)
    return counts


@dataclass(frozen=True)
class Outcome:
    """What a checked run hands to ``after_check`` before everything stops."""

    web_url: str
    password: str
    api_token: str
    expected: Counter[tuple[str, str]]
    by_station: Counter[str]


def make_api_token(database_url: str) -> str:
    """A read-only API token for the province (as an operations centre would hold)."""
    token = secrets.token_urlsafe(24)
    sessions = make_sessionmaker(make_engine(database_url))
    with sessions() as session, session.begin():
        province = session.scalars(select(Unit).where(Unit.level == UnitLevel.PROVINCE)).first()
        session.add(ApiToken(name="demo check", token_hash=token_hash(token),
                             unit_id=province.id if province else None,
                             created_at=dt.datetime.now(dt.UTC)))
    return token


def fault_schedule(system: System, stations: list[Station], agent_argv: dict[str, list[str]],
                   ingest_argv: dict[str, list[str]],
                   duration: float) -> list[tuple[float, Callable[[], None]]]:
    """Faults during the traffic: the broker restarted, an agent and an ingest worker killed.

    The agent is killed between two presentations (its station's lock is held), so every
    presentation either completed, verdict shown, or never started.
    """
    victim = next(s for s in stations if s.role == "entry")

    def broker() -> None:
        say("fault: restarting the broker")
        system.restart("mosquitto", system.broker_argv, "mosquitto.out", sig=signal.SIGTERM)

    def agent() -> None:
        say(f"fault: SIGKILL agent {victim.name}, then start it again")
        with victim.lock:
            proc = system.restart(victim.name, agent_argv[victim.name], f"{victim.name}.log")
            wait_scanner_open(proc, victim.scanner)

    def ingest() -> None:
        name = next(iter(ingest_argv))
        say(f"fault: SIGKILL ingest worker {name}, then start it again")
        system.restart(f"ingest {name}", ingest_argv[name], f"ingest-{name}.log")

    return [(duration * 0.25, broker), (duration * 0.5, agent), (duration * 0.75, ingest)]


CRASH_GAP_S = 12.0


def crash_schedule(system: System, ingest_argv: dict[str, list[str]],
                   duration: float) -> list[tuple[float, Callable[[], None]]]:
    """The broker crash with the collector down (docs/protocol.md §4.10): every ingest worker
    SIGKILLed during the traffic (their persistent sessions keep queueing in the broker, in
    memory), :data:`CRASH_GAP_S` later the broker SIGKILLed before any autosave, then the
    broker and the workers started again with their own command lines. Only the agents'
    outboxes still hold what the broker had queued; their receipts bring it back."""
    start = max(1.0, min(duration * 0.3, duration - CRASH_GAP_S - 3))

    def kill_ingest() -> None:
        for name in ingest_argv:
            say(f"crash: SIGKILL ingest worker {name}")
            proc = system.process(f"ingest {name}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    def kill_broker() -> None:
        say("crash: SIGKILL the broker, then start it and the ingest workers again")
        proc = system.process("mosquitto")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(1.0)
        system.spawn("mosquitto", system.broker_argv, "mosquitto.out")
        time.sleep(1.0)
        for name, argv in ingest_argv.items():
            system.spawn(f"ingest {name}", argv, f"ingest-{name}.log")

    return [(start, kill_ingest), (start + CRASH_GAP_S, kill_broker)]


def run_system(*, root: Path, duration: float | None, check: bool, web_port: int,
               visitors: int = 80, database_url: str | None = None, ingest_workers: int = 1,
               faults: bool = False, pcsc_slot: CardSlot | None = None, crash: bool = False,
               after_check: Callable[[Outcome], int] | None = None) -> int:
    if root.exists():
        shutil.rmtree(root)
    # Everything the demo and the processes it starts create in the work folder (databases
    # and their -wal/-shm, outboxes, keys, secrets, logs, broker state) is the running user's
    # alone: 0600 files, 0700 folders (docs/privacy.md, threat model). The writers below also
    # create their secrets 0600 themselves; the mask covers what they do not know about.
    old_umask = os.umask(0o077)
    try:
        return _run_system(root=root, duration=duration, check=check, web_port=web_port,
                           visitors=visitors, database_url=database_url,
                           ingest_workers=ingest_workers, faults=faults, pcsc_slot=pcsc_slot,
                           after_check=after_check, crash=crash)
    finally:
        os.umask(old_umask)


def _run_system(*, root: Path, duration: float | None, check: bool, web_port: int,
                visitors: int, database_url: str | None, ingest_workers: int, faults: bool,
                pcsc_slot: CardSlot | None,
                after_check: Callable[[Outcome], int] | None, crash: bool = False) -> int:
    private_dir(root / "logs")
    private_dir(root / "pki")
    system = System(root)
    bin_dir = Path(sys.executable).parent
    password = secrets.token_urlsafe(9)
    try:
        say("issuing synthetic cards and a test PKI")
        issue_cards(root / "cards", visitors, seed=2026)
        pki = root / "pki"
        ca = DeviceCA.create("CCCD demo CA")
        ca.save(pki / "ca.crt", pki / "ca.key")
        broker_certificate(ca, pki)
        collectors = tuple("collector" if n == 1 else f"collector-{n}"
                           for n in range(1, ingest_workers + 1))
        collector_files = {name: client_certificate(ca, pki, name) for name in collectors}
        centre = X25519PrivateKey.generate()
        write_private(root / "centre-x25519.key", centre.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
        new_data_key(root / "data.key")
        write_private(root / "web-secret", secrets.token_bytes(32))
        # The subject keys live at the centre only (docs/privacy.md §3): the province key
        # keys a sealed subject's legacy value, the centre subject key the stored one.
        write_private(root / "subject.key", secrets.token_bytes(32))
        write_private(root / "centre-subject.key", secrets.token_bytes(32))
        broker_port = free_port()
        broker_url = f"mqtts://127.0.0.1:{broker_port}"
        database_url = database_url or f"sqlite:///{root / 'central.sqlite3'}"
        configs: dict[str, Path] = {}
        for name, (cert, key) in collector_files.items():
            configs[name] = root / f"central-{name}.toml"
            configs[name].write_text(f"""database_url = "{database_url}"

[broker]
url = "{broker_url}"
ca = "{pki / 'ca.crt'}"
cert = "{cert}"
key = "{key}"
client_id = "{name}"

[keys]
centre_private_key = "{root / 'centre-x25519.key'}"
data_key = "{root / 'data.key'}"
subject_key = "{root / 'subject.key'}"
centre_subject_key = "{root / 'centre-subject.key'}"

[ingest]
publish_occupancy = {"true" if name == "collector" else "false"}
""", encoding="utf-8")
        central_toml = configs["collector"]
        say(f"starting mosquitto with TLS on 127.0.0.1:{broker_port}")
        start_broker(system, pki, broker_port, ca, collectors)
        say("collector: database, administrator, enrolled devices")
        stations_spec = STATIONS + ((StationSpec("gate-ngo-mon-3", HERITAGE, "entry", True,
                                                  "heritage-gate", "entry", reader="pcsc"),)
                                     if pcsc_slot is not None else ())
        bundles = seed_collector(root, database_url, ca, centre, broker_url, password,
                                 stations_spec)
        sync_broker(system, central_toml, pki)
        ingest_argv = {name: [str(bin_dir / "central"), "ingest", "--config", str(config)]
                       for name, config in configs.items()}
        for name, argv in ingest_argv.items():
            system.spawn(f"ingest {name}", argv, f"ingest-{name}.log")
        api_token = make_api_token(database_url)
        system.spawn("web", [str(bin_dir / "central"), "web", "--config", str(central_toml),
                             "--port", str(web_port), "--insecure-cookies",
                             "--secret-key-file", str(root / "web-secret"),
                             "--device-ca-cert", str(pki / "ca.crt"),
                             "--device-ca-key", str(pki / "ca.key")], "web.log")
        wait_port(web_port, "the collector's web")
        people = visitors_from(root / "cards")
        stations: list[Station] = []
        agents: list[tuple[subprocess.Popen[bytes], PtySerialScanner]] = []
        agent_argv: dict[str, list[str]] = {}
        for spec in stations_spec:
            scanner = PtySerialScanner(terminator=b"\r")
            system.scanners.append(scanner)
            tag: CardSlot | None = None
            reader_uri = None
            if spec.chip and spec.reader == "pcsc":
                tag, reader_uri = pcsc_slot, "pcsc"
            elif spec.chip:
                bridge = UdpTagBridge(people[0].card_dir).start()
                bridge.remove_card()
                system.tags.append(bridge)
                tag, reader_uri = UdpSlot(bridge), f"nfc:{bridge.path}"
            kiosk_port = free_port()
            config = agent_config(bundles[spec.device_id], spec, broker_url, reader_uri,
                                  scanner, kiosk_port, root / "cards" / "trust")
            agent_argv[spec.device_id] = [str(bin_dir / "edge-agent"), "run", "--config",
                                          str(config), "--log-level", "WARNING"]
            proc = system.spawn(spec.device_id, agent_argv[spec.device_id],
                                f"{spec.device_id}.log")
            agents.append((proc, scanner))
            stations.append(Station(spec.device_id, spec.site_id, spec.role, kiosk_port,
                                    scanner, tag))
        for proc, scanner in agents:
            wait_scanner_open(proc, scanner)
        say(f"dashboard: http://127.0.0.1:{web_port}/   login: admin / {password}")
        for station in stations:
            say(f"kiosk {station.name}: http://127.0.0.1:{station.kiosk_port}/")
        generator = TrafficGenerator(stations, people, seed=7)
        generator.start()
        started = time.monotonic()
        schedule = fault_schedule(system, stations, agent_argv, ingest_argv,
                                  duration) if faults and duration else []
        if crash and duration:
            schedule = sorted(schedule + crash_schedule(system, ingest_argv, duration),
                              key=lambda item: item[0])
        # Ctrl-C (SIGINT) and SIGTERM stop the run cleanly, even where a shell started this
        # program in the background with SIGINT ignored; installed before the line that tells
        # the user Ctrl-C works.
        interrupted = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: interrupted.set())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        say("visitors are arriving" + (f" for {duration:g} s" if duration else
                                       " (Ctrl-C stops everything)"))
        try:
            while duration is None or time.monotonic() - started < duration:
                while schedule and time.monotonic() - started >= schedule[0][0]:
                    schedule.pop(0)[1]()
                wait = min(5.0, max(0.1, (duration or 5) - (time.monotonic() - started)))
                if interrupted.wait(wait):
                    say("stopping")
                    break
                say(f"generated {sum(generator.generated.values())} accepted events; "
                    f"centre has {sum(centre_counts(database_url).values())}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        generator.stop()
        for _at, fault in schedule:  # a short run still applies every fault once
            fault()
        if not check:
            return 0
        result = verify(generator, stations, database_url, f"http://127.0.0.1:{web_port}",
                        api_token)
        if result == 0 and after_check is not None:
            expected = Counter({k: v for k, v in generator.generated.items() if v})
            result = after_check(Outcome(f"http://127.0.0.1:{web_port}", password, api_token,
                                         expected, Counter(generator.by_station)))
        return result
    finally:
        system.stop()
        say("stopped")


def api_counts(web_url: str, token: str) -> Counter[tuple[str, str]]:
    """Today's people by site and kind, as the collector's JSON API reports them."""
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    request = urllib.request.Request(  # noqa: S310 - the collector on loopback
        f"{web_url}/api/v1/counts?period=custom&from={today}&to={today}"
        "&group_by=site,kind",
        headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        rows = json.loads(response.read())["rows"]
    return Counter({(r.get("site_id") or r.get("site"), r["kind"]): int(r["people"])
                    for r in rows if r["kind"] in ("entry", "exit", "visit")})


def verify(generator: TrafficGenerator, stations: list[Station], database_url: str,
           web_url: str, api_token: str) -> int:
    """Wait for every backlog to drain, then compare the centre with the ground truth."""
    say("traffic stopped; waiting for every agent to deliver its outbox")
    deadline = time.monotonic() + 120
    expected = Counter({k: v for k, v in generator.generated.items() if v})
    got: Counter[tuple[str, str]] = Counter()
    while time.monotonic() < deadline:
        states = [station.state() or {} for station in stations]
        drained = all(s.get("online") and s.get("backlog") == 0 for s in states)
        got = Counter({k: v for k, v in centre_counts(database_url).items() if v})
        if drained and got == expected:
            break
        time.sleep(0.5)
    width = max(len(f"{s} {k}") for s, k in (expected | got)) if (expected or got) else 10
    print(f"{'site / kind':<{width}}  generated  centre")
    for key in sorted(expected | got):
        mark = "" if expected[key] == got[key] else "   <-- MISMATCH"
        print(f"{key[0] + ' ' + key[1]:<{width}}  {expected[key]:>9}  {got[key]:>6}{mark}")
    refused = Counter(f.split(" of ")[0].split(" (")[0] for f in generator.failures)
    for what, times in sorted(refused.items()):
        print(f"not accepted at the gate (a repeat visit or stay, by design): {what} × {times}")
    if got != expected or not expected:
        say("CHECK FAILED: the centre's counts differ from what the gates accepted")
        return 1
    via_api = api_counts(web_url, api_token)
    counted = Counter({k: v for k, v in expected.items() if k[1] in ("entry", "exit", "visit")})
    if via_api != counted:
        say(f"CHECK FAILED: the API reports {dict(via_api)}, the gates accepted {dict(counted)}")
        return 1
    say(f"CHECK PASSED: {sum(expected.values())} events, the centre's counts are exact")
    return 0


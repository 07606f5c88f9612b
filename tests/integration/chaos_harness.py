"""The chaos harness: the whole system on one machine with faults at random moments.

Shared by ``tests/integration/test_chaos.py`` (bounded, one round per fault) and ``bench/chaos.py``
(the long soak). What runs, all as the programs an operator deploys, each with its own command
line:

* mosquitto with the deploy configuration (dynamic-security plugin, CRL), its persistence on a
  small tmpfs of its own (the disk-full fault fills it), autosave every few seconds;
* a PostgreSQL cluster of its own (``pg_ctl``; the postmaster is the crash victim);
* one collector ingest worker (``central ingest``) and the web (``central web``);
* three agents (``edge-agent run``) at one heritage site: an entry gate with a chip reader on
  nfcpy's UDP transport, an entry gate with a QR scanner only, an exit gate with a QR scanner;
  each runs under libfaketime with a timestamp file of its own (``+0`` unless a clock fault
  steps it), so a device clock can be stepped while the process runs;
* the visitor-traffic generator (:mod:`firmware_sim.traffic`), the ground truth.

A round: traffic starts; at a random moment one fault strikes; traffic goes on; it stops; every
part that is down is started again with its own command line; the harness waits until every
agent's outbox is fully receipted (docs/protocol.md §4.11) and the database holds still; then
:meth:`World.check` compares, **cumulatively over all rounds**:

* each agent's outbox rows per kind with what the generator saw accepted at that station (what
  the gate committed is what the visitors were told; only where a visitor saw a failure — no
  verdict, a card-read error — may the gate have recorded one more, its reader retrying under
  load: such presentations are counted and bound the difference);
* the database's ``events`` rows per device and kind with what the gates recorded less the
  refusals the receipts made final (``rejected:<reason>`` in the outbox; by design,
  docs/protocol.md §4.10), exactly: none lost, none twice; no ``event_id`` twice;
* the rollup-based counts of the JSON API (``/api/v1/counts``) and the dashboard's figures
  (``/``, fetched over HTTP after a real login, numbers parsed) with the same truth; the
  occupancy of the API and the dashboard with the presences in the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.cookiejar
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from central.at_rest import new_data_key
from central.broker_acl import ADMIN, document, plugin_path, wanted
from central.db.models import Event, IngestRejection, Presence
from central.enrol import DeviceCA
from central.private_files import private_dir, write_private
from central.revocation import build_crl
from demo.system import (
    DEPLOY_BROKER_CONF,
    HERITAGE,
    StationSpec,
    System,
    agent_config,
    api_counts,
    broker_certificate,
    client_certificate,
    free_port,
    make_api_token,
    seed_collector,
    sync_broker,
    wait_port,
    wait_scanner_open,
)
from demo.system import broker_config as deploy_broker_config
from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import issue_cards
from firmware_sim.traffic import Station, TrafficGenerator, UdpSlot, visitors_from

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
FAKETIME_LIB = next((p for p in (Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"),
                                 Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"))
                     if p.exists()), None)
"""Debian's libfaketime (package ``libfaketime``): steps a device's clock under a running agent."""

STATIONS = (
    StationSpec("gate-ngo-mon-1", HERITAGE, "entry", True, "heritage-gate", "entry"),
    StationSpec("gate-ngo-mon-2", HERITAGE, "entry", False, "heritage-gate", "entry"),
    StationSpec("gate-hien-nhon", HERITAGE, "exit", False, "heritage-gate", "exit"),
)
KIND = {"entry": "entry", "exit": "exit", "reception": "visit"}
COUNTED = frozenset({"entry", "exit", "visit"})
"""The kinds the rollups count (an agent also records a refused presentation: ``rejected``)."""
CLOCK_VICTIM = "gate-ngo-mon-2"
"""The QR-only entry gate: a chip's document-signer certificate would not be valid yet on a clock
stepped days back, a card QR reads the same."""
MAX_FUTURE_SKEW_S = 30
EVENTS_DAYS = 1
BROKER_AUTOSAVE_S = 2
BROKER_DISK = "256k"
SETTLED_S = 20.0

FAULTS = ("broker-kill-collector-down", "broker-kill-collector-lagging", "ingest-kill",
          "postgres-kill", "broker-disk-full", "agent-kill", "clock-step")


class ChaosError(Exception):
    """The harness could not set up or restore the system (not a count mismatch)."""


def say(message: str) -> None:
    print(f"[chaos] {message}", flush=True)


# -- PostgreSQL of its own, so its postmaster can be killed -----------------------------------


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                          text=True, check=False, timeout=180)


@dataclass
class Postgres:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def argv(self) -> list[str]:
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=on -c max_connections=60 "
                "-c shared_buffers=32MB")
        return [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                "-o", opts, "-w", "-t", "120", "start"]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def create(cls) -> Postgres:
        """``synchronous_commit`` on, as in production: a receipt says the event is committed,
        and with it off PostgreSQL acknowledges commits whose WAL is still in its shared memory,
        which a crash of the postmaster loses (observed: 1 receipted event of 299). ``fsync``
        off only spares the disk: a killed process loses nothing already written to the
        kernel.

        A new cluster in a folder of its own under the system's temp dir (the postgres
        user must reach it; test folders are the running user's alone)."""
        import pwd
        import tempfile
        for tool in ("initdb", "pg_ctl"):
            if not (PG_BIN / tool).exists():
                raise ChaosError(f"PostgreSQL binary {PG_BIN / tool} missing (apt-get install "
                                 "postgresql-15)")
        pw = pwd.getpwnam("postgres")
        root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chmod(root, 0o700)
        done = _as_postgres(str(PG_BIN / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--no-locale")
        if done.returncode:
            raise ChaosError(f"initdb failed: {done.stderr}")
        pg = cls(root, free_port())
        pg.start()
        return pg

    def start(self) -> None:
        done = _as_postgres(*self.argv)
        if done.returncode:
            log = (self.root / "log").read_text(errors="replace")[-3000:]
            raise ChaosError(f"pg_ctl start failed: {done.stderr}\n{log}")

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 0)
            return pid
        return None

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash). Its backends notice and exit; the next start runs
        crash recovery."""
        pid = self.postmaster_pid()
        if pid is None:
            raise ChaosError("PostgreSQL is not running")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _children_of(pid):
            time.sleep(0.1)

    def ensure_running(self) -> bool:
        """Start it (with its own command line) if it is down; True if it had to."""
        if self.postmaster_pid() is not None:
            return False
        deadline = time.monotonic() + 60
        while True:
            try:
                self.start()
                return True
            except ChaosError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)  # orphaned backends still hold the shared memory

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                     "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
    return out


# -- the world ---------------------------------------------------------------------------------


@dataclass
class Round:
    """One fault at one moment; what it showed."""

    number: int
    fault: str
    at_s: float
    traffic_s: float
    generated: int = 0
    refused: int = 0
    converge_s: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class Check:
    """The cumulative comparison after a round."""

    truth: Counter[tuple[str, str]]
    """(device, kind) → events the gates accepted (the generator's ground truth)."""
    outbox: Counter[tuple[str, str]]
    refused: Counter[tuple[str, str]]
    """(device, kind) → refusals the centre's receipts made final."""
    refused_reasons: Counter[str]
    stored: Counter[tuple[str, str]]
    distinct_ids: int
    api: Counter[tuple[str, str]]
    dashboard: dict[str, int]
    api_occupancy: int
    db_occupancy: int
    rejections_logged: Counter[str]
    unsure: Counter[str]
    """Device → presentations the visitor saw fail (no verdict, a card-read error) although
    the gate may have recorded them a moment later (a reader retrying under load): the
    generator cannot know, the gate's outbox says."""

    @property
    def expected(self) -> Counter[tuple[str, str]]:
        """What the gates recorded (their outboxes) less what the centre refused for good."""
        out = Counter(self.outbox)
        out.subtract(self.refused)
        return Counter({k: v for k, v in out.items() if v})

    @property
    def lost(self) -> int:
        return sum(max(0, v - self.stored[k]) for k, v in self.expected.items())

    @property
    def doubled(self) -> int:
        extra = sum(max(0, v - self.expected[k]) for k, v in self.stored.items())
        return extra + (sum(self.stored.values()) - self.distinct_ids)

    def problems(self) -> list[str]:
        out = []
        exp = self.expected
        for key in set(self.outbox) | set(self.truth):
            # every accepted verdict is in the outbox; more only where a visitor saw a failure
            if not self.truth[key] <= self.outbox[key] <= self.truth[key] + self.unsure[key[0]]:
                out.append(f"outboxes hold {dict(self.outbox)}, the gates accepted "
                           f"{dict(self.truth)} (unsure presentations {dict(self.unsure)})")
                break
        if Counter({k: v for k, v in self.stored.items() if v}) != exp:
            out.append(f"database holds {dict(self.stored)}, expected {dict(exp)} "
                       f"(outboxes {dict(self.outbox)} less refused {dict(self.refused)})")
        if self.distinct_ids != sum(self.stored.values()):
            out.append(f"{sum(self.stored.values())} event rows but {self.distinct_ids} ids")
        by_site: Counter[tuple[str, str]] = Counter()
        for (_device, kind), n in exp.items():
            if kind in COUNTED:  # a refused presentation is an event, counted nowhere
                by_site[(HERITAGE, kind)] += n
        if Counter({k: v for k, v in self.api.items() if v}) != by_site:
            out.append(f"API counts {dict(self.api)}, expected {dict(by_site)}")
        want = {"entries": by_site[(HERITAGE, "entry")], "exits": by_site[(HERITAGE, "exit")],
                "occupancy": self.db_occupancy}
        if self.dashboard != want:
            out.append(f"dashboard shows {self.dashboard}, expected {want}")
        if self.api_occupancy != self.db_occupancy:
            out.append(f"API occupancy {self.api_occupancy}, presences {self.db_occupancy}")
        # (rejection rows are rate-limited per device: each reason is named, not each event)
        if any(self.rejections_logged[r] < 1 for r in self.refused_reasons):
            out.append(f"receipts refused {dict(self.refused_reasons)}, the rejection log "
                       f"names {dict(self.rejections_logged)}")
        return out


class World:
    """The system of the module docstring; :meth:`round` runs one fault."""

    def __init__(self, root: Path, *, seed: int, visitors: int = 60) -> None:
        if FAKETIME_LIB is None:
            raise ChaosError("libfaketime is not installed (apt-get install libfaketime): the "
                             "clock fault steps a running agent's clock with it")
        if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
            raise ChaosError("mosquitto is not installed (apt-get install mosquitto)")
        if plugin_path() is None:
            raise ChaosError("mosquitto's dynamic-security plugin is missing")
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed)
        self.visitors = visitors
        self.system = System(root)
        self.envs: dict[str, dict[str, str]] = {}
        self.argv: dict[str, list[str]] = {}
        self.logs: dict[str, str] = {}
        self.stations: list[Station] = []
        self.truth: Counter[tuple[str, str]] = Counter()
        self.unsure: Counter[str] = Counter()
        self.pg: Postgres | None = None
        self.engine: Engine | None = None
        self.database_url = ""
        self.broker_disk = root / "broker" / "data"
        self.mounted = False
        self.stopped: set[str] = set()
        self.rounds: list[Round] = []

    # -- processes -------------------------------------------------------------------------

    def spawn(self, name: str) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / self.logs[name]).open("ab")
        env = self.envs.get(name)
        proc = subprocess.Popen(self.argv[name], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env={**os.environ, **env} if env else None)
        log.close()
        self.system.processes.append((name, proc))
        return proc

    def proc(self, name: str) -> subprocess.Popen[bytes]:
        return self.system.process(name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.proc(name)
        proc.send_signal(sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            proc.wait(timeout=30)

    def alive(self, name: str) -> bool:
        return self.proc(name).poll() is None

    def ensure_running(self) -> list[str]:
        """Every part that is down started again with its own command line, a stopped one
        continued; the names of those restarted."""
        restarted = []
        assert self.pg is not None
        if self.pg.ensure_running():
            restarted.append("postgresql")
        for name in list(self.stopped):
            self.proc(name).send_signal(signal.SIGCONT)
            self.stopped.discard(name)
            restarted.append(f"{name} (continued)")
        if not self.alive("mosquitto"):
            self.spawn("mosquitto")
            wait_port(self.broker_port, "mosquitto")
            restarted.append("mosquitto")
        for name in self.argv:
            if name != "mosquitto" and not self.alive(name):
                proc = self.spawn(name)
                restarted.append(name)
                station = next((s for s in self.stations if s.name == name), None)
                if station is not None:
                    wait_scanner_open(proc, station.scanner)
        return restarted

    # -- setup -----------------------------------------------------------------------------

    def start(self) -> None:
        root = self.root
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        private_dir(root / "logs")
        private_dir(root / "pki")
        issue_cards(root / "cards", self.visitors, seed=self.seed % 10_000)
        pki = root / "pki"
        ca = DeviceCA.create("CCCD chaos CA")
        ca.save(pki / "ca.crt", pki / "ca.key")
        broker_certificate(ca, pki)
        cert, key = client_certificate(ca, pki, "collector")
        centre = X25519PrivateKey.generate()
        write_private(root / "centre-x25519.key", centre.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption()))
        new_data_key(root / "data.key")
        # The subject keys live at the centre only (docs/privacy.md §3).
        write_private(root / "subject.key", secrets.token_bytes(32))
        write_private(root / "centre-subject.key", secrets.token_bytes(32))
        write_private(root / "web-secret", secrets.token_bytes(32))
        self.pg = Postgres.create()
        admin = create_engine(self.pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "chaos"'))
        admin.dispose()
        self.database_url = self.pg.url("chaos")
        self.engine = create_engine(self.database_url, pool_pre_ping=True)
        self.broker_port = free_port()
        broker_url = f"mqtts://127.0.0.1:{self.broker_port}"
        conf = root / "central.toml"
        conf.write_text(f"""database_url = "{self.database_url}"

[broker]
url = "{broker_url}"
ca = "{pki / 'ca.crt'}"
cert = "{cert}"
key = "{key}"
client_id = "collector"

[keys]
centre_private_key = "{root / 'centre-x25519.key'}"
data_key = "{root / 'data.key'}"
subject_key = "{root / 'subject.key'}"
centre_subject_key = "{root / 'centre-subject.key'}"

[ingest]
max_future_skew_s = {MAX_FUTURE_SKEW_S}

[retention]
events_days = {EVENTS_DAYS}
""", encoding="utf-8")
        self._start_broker(pki, ca)
        self.password = secrets.token_urlsafe(9)
        bundles = seed_collector(root, self.database_url, ca, centre, broker_url,
                                 self.password, STATIONS)
        sync_broker(self.system, conf, pki)
        bin_dir = Path(sys.executable).parent
        self.argv["ingest"] = [str(bin_dir / "central"), "ingest", "--config", str(conf)]
        self.logs["ingest"] = "ingest.log"
        self.spawn("ingest")
        self.api_token = make_api_token(self.database_url)
        self.web_port = free_port()
        self.argv["web"] = [str(bin_dir / "central"), "web", "--config", str(conf),
                            "--port", str(self.web_port), "--insecure-cookies",
                            "--secret-key-file", str(root / "web-secret")]
        self.logs["web"] = "web.log"
        self.spawn("web")
        wait_port(self.web_port, "the collector's web", timeout=60)
        self.people = visitors_from(root / "cards")
        for spec in STATIONS:
            scanner = PtySerialScanner(terminator=b"\r")
            self.system.scanners.append(scanner)
            tag, reader_uri = None, None
            if spec.chip:
                bridge = UdpTagBridge(self.people[0].card_dir).start()
                bridge.remove_card()
                self.system.tags.append(bridge)
                tag, reader_uri = UdpSlot(bridge), f"nfc:{bridge.path}"
            kiosk_port = free_port()
            config = agent_config(bundles[spec.device_id], spec, broker_url, reader_uri,
                                  scanner, kiosk_port, root / "cards" / "trust")
            text_ = config.read_text(encoding="utf-8").replace(
                "heartbeat_s = 10", "heartbeat_s = 10\nreceipt_timeout_s = 10")
            config.write_text(text_, encoding="utf-8")
            clock = root / f"clock-{spec.device_id}"
            clock.write_text("+0\n")
            self.envs[spec.device_id] = {
                "LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME_TIMESTAMP_FILE": str(clock),
                "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                "FAKETIME_DONT_RESET": "1"}
            self.argv[spec.device_id] = [str(bin_dir / "edge-agent"), "run", "--config",
                                         str(config), "--log-level", "WARNING"]
            self.logs[spec.device_id] = f"{spec.device_id}.log"
            proc = self.spawn(spec.device_id)
            self.stations.append(Station(spec.device_id, spec.site_id, spec.role, kiosk_port,
                                         scanner, tag, removal_gap_s=0.8))
            wait_scanner_open(proc, scanner)
        self.outboxes = {spec.device_id: bundles[spec.device_id] / "outbox.sqlite3"
                         for spec in STATIONS}

    def _start_broker(self, pki: Path, ca: DeviceCA) -> None:
        """The deploy configuration, persistence on a tmpfs of its own, autosave every
        :data:`BROKER_AUTOSAVE_S` s (so a full disk is met during a round)."""
        broker = self.root / "broker"
        self.broker_disk.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={BROKER_DISK},mode=0700",
                               "chaos-broker", str(self.broker_disk)],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise ChaosError(f"cannot mount a tmpfs for the broker's persistence (root "
                             f"needed): {done.stderr.strip()}")
        self.mounted = True
        dynsec = broker / "dynamic-security.json"
        dynsec.write_text(json.dumps(document(wanted([], ("collector",)))), encoding="utf-8")
        dynsec.chmod(0o600)
        client_certificate(ca, pki, ADMIN)
        crl = broker / "devices.crl"
        crl.write_bytes(build_crl(ca.cert, ca.key, [], dt.datetime.now(dt.UTC)))
        conf = broker / "mosquitto.conf"
        import pwd
        conf.write_text(deploy_broker_config(
            DEPLOY_BROKER_CONF.read_text(encoding="utf-8"), {
                "plugin": str(plugin_path()), "plugin_opt_config_file": str(dynsec),
                "log_dest": f"file {self.root / 'logs' / 'mosquitto.log'}",
                "listener": f"{self.broker_port} 127.0.0.1", "cafile": str(pki / "ca.crt"),
                "certfile": str(pki / "broker.crt"), "keyfile": str(pki / "broker.key"),
                "crlfile": str(crl), "autosave_interval": str(BROKER_AUTOSAVE_S)},
            pwd.getpwuid(os.getuid()).pw_name,
            added={"persistence_location": f"{self.broker_disk}/"}), encoding="utf-8")
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.argv["mosquitto"] = [mosquitto, "-c", str(conf)]
        self.system.broker_argv = self.argv["mosquitto"]
        self.logs["mosquitto"] = "mosquitto.out"
        self.spawn("mosquitto")
        wait_port(self.broker_port, "mosquitto")

    def stop(self) -> None:
        for name in list(self.stopped):
            with contextlib.suppress(Exception):
                self.proc(name).send_signal(signal.SIGCONT)
        self.system.stop()
        if self.engine is not None:
            self.engine.dispose()
        if self.pg is not None:
            self.pg.stop()
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.broker_disk)], check=False,
                           capture_output=True)
            self.mounted = False

    # -- faults ----------------------------------------------------------------------------

    def _station(self, name: str) -> Station:
        return next(s for s in self.stations if s.name == name)

    def fault(self, name: str, rnd: Round) -> None:
        """Strike ``name`` now (traffic is running); return once the fault is in place or
        over. Restoring everything is :meth:`heal`'s job."""
        note = rnd.notes.append
        if name == "broker-kill-collector-down":
            self.kill("ingest")
            note("ingest SIGKILL")
            time.sleep(self.rng.uniform(1.0, 4.0))  # the collector's session queues
            self.kill("mosquitto")
            note("mosquitto SIGKILL")
        elif name == "broker-kill-collector-lagging":
            self.kill("ingest", signal.SIGSTOP)
            self.stopped.add("ingest")
            note("ingest SIGSTOP")
            time.sleep(self.rng.uniform(1.0, 4.0))
            self.kill("mosquitto")
            note("mosquitto SIGKILL")
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.spawn("mosquitto")
            wait_port(self.broker_port, "mosquitto")
            note("mosquitto started")
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.kill("ingest", signal.SIGCONT)
            self.stopped.discard("ingest")
            note("ingest SIGCONT")
        elif name == "ingest-kill":
            self.kill("ingest")
            note("ingest SIGKILL")
        elif name == "postgres-kill":
            assert self.pg is not None
            self.pg.kill()
            note("postmaster SIGKILL")
            time.sleep(self.rng.uniform(1.0, 4.0))
            self.pg.ensure_running()
            note("postgresql restarted (crash recovery)")
        elif name == "broker-disk-full":
            self._fill_broker_disk(note)
        elif name == "agent-kill":
            victim = self.rng.choice(self.stations)
            with victim.lock:  # between two presentations: each one finished or not begun
                self.kill(victim.name)
                note(f"agent {victim.name} SIGKILL")
                proc = self.spawn(victim.name)
                wait_scanner_open(proc, victim.scanner)
        elif name == "clock-step":
            clock = self.root / f"clock-{CLOCK_VICTIM}"
            back = self.rng.choice(("-2d", "-3d"))
            clock.write_text(f"{back}\n")
            note(f"{CLOCK_VICTIM} clock {back}")
            time.sleep(self.rng.uniform(3.0, 6.0))
            ahead = MAX_FUTURE_SKEW_S + self.rng.randint(10, 30)
            clock.write_text(f"+{ahead}\n")
            note(f"{CLOCK_VICTIM} clock +{ahead}s")
            time.sleep(self.rng.uniform(3.0, 6.0))
            clock.write_text("+0\n")
            note(f"{CLOCK_VICTIM} clock +0")
        else:
            raise ChaosError(f"unknown fault {name}")

    def _fill_broker_disk(self, note: Callable[[str], None]) -> None:
        """Fill the broker's persistence tmpfs; the autosaves fail; the broker is stopped
        (SIGTERM: it tries to save once more) and started with the disk still full; then the
        space is freed."""
        filler = self.broker_disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        note(f"broker disk full ({filler.stat().st_size // 1024} KiB filler)")
        time.sleep(BROKER_AUTOSAVE_S * 2 + self.rng.uniform(0, 2))
        self.kill("mosquitto", signal.SIGTERM)
        note("mosquitto SIGTERM with the disk full")
        self.spawn("mosquitto")
        wait_port(self.broker_port, "mosquitto")
        note("mosquitto started with the disk full")
        time.sleep(self.rng.uniform(1.0, 3.0))
        filler.unlink()
        note("space freed")

    # -- a round ---------------------------------------------------------------------------

    def round(self, number: int, fault: str, *, traffic_s: float,
              converge_timeout: float = 240.0) -> tuple[Round, Check]:
        at = self.rng.uniform(0.2, 0.6) * traffic_s
        rnd = Round(number, fault, at, traffic_s)
        generator = TrafficGenerator(self.stations, self.people,
                                     seed=self.rng.randrange(1 << 30), verdict_timeout=30)
        generator.start(pause=(0.05, 0.4))
        started = time.monotonic()
        try:
            time.sleep(at)
            self.fault(fault, rnd)
            time.sleep(max(0.0, traffic_s - (time.monotonic() - started)))
        finally:
            generator.stop()
        stopped = time.monotonic()
        unsure = [f for f in generator.failures if not f.endswith("(already-counted)")]
        if unsure:  # the visitor saw a failure; the gate may still have recorded it
            for failure in unsure:
                self.unsure[failure.split(":", 1)[0]] += 1
            rnd.notes.append(f"{len(unsure)} presentations failed at the gate: "
                             + "; ".join(unsure[:3]))
        restarted = self.ensure_running()
        if restarted:
            rnd.notes.append("restarted " + ", ".join(restarted))
        for station in self.stations:
            kind = KIND[station.role]
            n = generator.by_station[station.name]
            self.truth[(station.name, kind)] += n
            rnd.generated += n
        self.converge(converge_timeout)
        rnd.converge_s = time.monotonic() - stopped
        check = self.check()
        rnd.refused = sum(check.refused.values()) - sum(r.refused for r in self.rounds)
        self.rounds.append(rnd)
        return rnd, check

    def outbox_state(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]],
                                    Counter[str], int]:
        """(rows per device and kind, final refusals per device and kind, refusals per
        reason, rows not receipted yet) over every agent's outbox, read-only."""
        rows: Counter[tuple[str, str]] = Counter()
        refused: Counter[tuple[str, str]] = Counter()
        reasons: Counter[str] = Counter()
        open_ = 0
        for device, path in self.outboxes.items():
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            try:
                for kind, receipt, receipted, n in conn.execute(
                        "SELECT kind, receipt, receipted_ms IS NOT NULL, count(*) FROM events "
                        "GROUP BY 1, 2, 3"):
                    rows[(device, kind)] += n
                    if not receipted:
                        open_ += n
                    elif receipt and receipt.startswith("rejected:"):
                        refused[(device, kind)] += n
                        reasons[receipt.split(":", 1)[1]] += n
            finally:
                conn.close()
        return rows, refused, reasons, open_

    def stored(self) -> tuple[Counter[tuple[str, str]], int]:
        assert self.engine is not None
        with Session(self.engine) as s:
            rows = s.execute(select(Event.device_id, Event.kind, func.count())
                             .group_by(Event.device_id, Event.kind)).all()
            distinct = s.scalar(select(func.count(func.distinct(Event.event_id)))) or 0
        return Counter({(d, str(k.value if hasattr(k, "value") else k)): int(n)
                        for d, k, n in rows}), int(distinct)

    def converge(self, timeout: float) -> None:
        """Until every outbox is fully receipted and the database holds exactly what the
        outboxes hold less the final refusals, three polls in a row (a late duplicate would
        show); or, every outbox receipted, the database has not changed for
        :data:`SETTLED_S` (then :meth:`check` names what is lost or doubled)."""
        deadline = time.monotonic() + timeout
        steady = 0
        last = ""
        previous: tuple[Counter[tuple[str, str]], int] | None = None
        unchanged_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                rows, refused, _reasons, open_ = self.outbox_state()
                stored, distinct = self.stored()
            except Exception as exc:
                last = f"reading: {exc}"
                time.sleep(0.5)
                continue
            want = Counter(rows)
            want.subtract(refused)
            done = open_ == 0 and Counter({k: v for k, v in want.items() if v}) == \
                Counter({k: v for k, v in stored.items() if v})
            last = f"{open_} unreceipted; outboxes {dict(rows)}; stored {dict(stored)}"
            steady = steady + 1 if done else 0
            if steady >= 3:
                return
            if previous != (stored, distinct) or open_:
                previous, unchanged_since = (stored, distinct), time.monotonic()
            elif time.monotonic() - unchanged_since > SETTLED_S:
                return
            time.sleep(0.5)
        raise ChaosError(f"did not converge in {timeout:g} s: {last}\n{self.log_tails()}")

    def check(self) -> Check:
        assert self.engine is not None
        rows, refused, reasons, _open = self.outbox_state()
        stored, distinct = self.stored()
        with Session(self.engine) as s:
            occupancy = int(s.scalar(select(func.coalesce(func.sum(Presence.people), 0))
                                     .where(Presence.exited_at.is_(None),
                                            Presence.entered_at.is_not(None))) or 0)
            logged = Counter({str(r): int(n) for r, n in s.execute(
                select(IngestRejection.reason, func.count())
                .where(IngestRejection.topic.like("%/events"))
                .group_by(IngestRejection.reason)).all()})
        web = f"http://127.0.0.1:{self.web_port}"
        return Check(Counter(self.truth), rows, refused, reasons, stored, distinct,
                     api_counts(web, self.api_token), self.dashboard(), self.api_occupancy(),
                     occupancy, logged, Counter(self.unsure))

    def api_occupancy(self) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.web_port}/api/v1/occupancy",
            headers={"Authorization": f"Bearer {self.api_token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(json.loads(response.read())["total"])

    def dashboard(self) -> dict[str, int]:
        """The dashboard page over HTTP, after the administrator's login; its three tiles."""
        base = f"http://127.0.0.1:{self.web_port}"
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with opener.open(base + "/login", timeout=10) as response:
            form = response.read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        if token is None:
            raise ChaosError("no CSRF token in the login form")
        body = urllib.parse.urlencode({"username": "admin", "password": self.password,
                                       "csrf_token": token.group(1)}).encode()
        with opener.open(urllib.request.Request(base + "/login", data=body), timeout=30):
            pass
        with opener.open(base + "/", timeout=10) as response:
            page = response.read().decode()
        out = {}
        for tile in ("entries", "exits", "occupancy"):
            found = re.search(rf'id="total-{tile}">([0-9.]+)<', page)
            if found is None:
                raise ChaosError(f"the dashboard has no total-{tile} figure")
            out[tile] = int(found.group(1).replace(".", ""))
        return out

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for name in ("ingest.log", "mosquitto.log", *(f"{s.device_id}.log" for s in STATIONS)):
            path = self.root / "logs" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(out)

"""Tap to receipt on loopback: from a card presented to a real agent to the centre's receipt
settling its event in the agent's outbox (docs/protocol.md §4.11).

    .venv/bin/python bench/tap_receipt.py [--taps 300] [--workers 2] [--timing zero|realistic]
        [--timeout 60]

The agent is a heritage entry gate built by ``edge_agent.agent.create_agent`` (simulated outputs,
a pseudo-terminal serial scanner, the simulated chip behind the reader driver) with its uplink
to a real mosquitto (TLS client certificates, the dynamic-security roles of
``central broker-acl``). The centre is ``--workers`` ``central ingest`` worker processes on the
shared subscription (deployed: two, docs/operations.md) over a throw-away PostgreSQL cluster
(tests/integration/pg_fixtures.py; as root it uses ``runuser -u postgres``); the agent's key is
enrolled in the registry, so every event is verified, stored and receipted.

Each tap: the visitor's QR arms the chip read, then the bench notes the wall clock and presents
the card. The split uses the timestamps the outbox itself records (milliseconds since the
epoch, the same clock): ``committed_ms`` (signed, INSERT, fsync: the verdict follows),
``delivered_ms`` (the broker's PUBACK recorded) and ``receipted_ms`` (the centre's receipt
applied). The chip read is in the first part (``--timing zero``: the card answers at once, so
the figure is the software path; ``realistic``: the card's modelled time, about 0.8 s, is
slept). Prints a markdown table; measures, asserts nothing but that every tap is receipted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from central.db.engine import make_engine
from central.ingest.worker import IngestWorker, freeze_startup_heap
from central.settings import BrokerSettings, CentralSettings
from drivers.card_reader import CardReader
from drivers.outputs import SimulatedOutputs
from drivers.uri import open_reader
from edge_agent.agent import Agent, create_agent
from edge_agent.config import load_config
from edge_agent.flows import Verdict
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import TimingModel, issue_cards
from firmware_sim.card.personalise import load_card
from firmware_sim.sim_reader import SimCardReader
from tests.integration.broker_fixtures import Broker, free_port, make_pki
from tests.integration.pg_fixtures import (
    fresh_database,
    migrated_engine,
    seed,
    start_postgres,
    stop_postgres,
)

GATE, SITE = "gate-ngo-mon-01", "hue-dai-noi"


class BenchError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"bench/tap_receipt.py: {message}")


def worker_process(settings: CentralSettings, stop: Any, ready: Any) -> None:
    """One ``central ingest`` worker in its own process, as deployed."""
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, engine, periodic_s=3600)
    freeze_startup_heap()
    worker.start()
    ready.put(settings.broker.client_id)
    stop.wait()
    worker.stop()
    engine.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def agent_config(folder: Path, broker: Broker, card: Path, trust: Path) -> Path:
    pki = broker.pki
    ident = pki.device(GATE)
    config = folder / "agent.toml"
    config.write_text(f"""
[device]
id = "{GATE}"
site_id = "{SITE}"
site_kind = "heritage-gate"
direction = "entry"

[keys]
signing_key = "keys/device.pem"
centre_public_key = "keys/centre.pub.pem"

[readers]
uris = ["sim:{card}"]

[scanners]
uris = ["serial:{{pty}}?terminator=cr"]

[chip]
trust_dir = "{trust}"
after_qr = true
tap_window_s = 30

[capacity]
dedupe_window_s = 0

[broker]
url = "{broker.url}"
ca = "{pki.ca}"
cert = "{ident.cert}"
key = "{ident.key}"
heartbeat_s = 30
receipt_timeout_s = 60

[outbox]
path = "{folder / 'outbox.sqlite3'}"

[kiosk]
port = {free_port()}
""", encoding="utf-8")
    return config


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timing", choices=("zero", "realistic"), default="zero")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="bound of each tap's wait for its verdict and its receipt, seconds")
    args = ap.parse_args()
    rows: list[tuple[float, float, float, float]] = []
    pg = None
    procs: list[Any] = []
    stop: Any = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        issue_cards(root / "cards", 1, seed=7)
        card = root / "cards" / "cards" / "0001"
        qr = json.loads((card / "card.json").read_text("utf-8"))["qr"]
        names = ["collector", *(f"collector-{i + 3}" for i in range(args.workers - 1))]
        pki = make_pki(root / "pki", devices=(GATE,), collectors=(*names, "collector-2"),
                       sites={GATE: SITE})
        broker = Broker(root / "broker", pki)
        broker.start()
        agent: Agent | None = None
        pty: PtySerialScanner | None = None
        try:
            pg = start_postgres()
            url = fresh_database(pg)
            engine = migrated_engine(url)
            centre = X25519PrivateKey.generate()
            gate = seed(engine, sites={SITE: "heritage"}, devices={GATE: SITE},
                        centre_key=centre)[GATE]
            engine.dispose()
            keys = root / "agent" / "keys"
            keys.mkdir(parents=True)
            (keys / "device.pem").write_bytes(gate.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            (keys / "centre.pub.pem").write_bytes(centre.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
            (root / "centre.key").write_bytes(centre.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption()))
            (root / "data.key").write_bytes(os.urandom(32))
            # The subject keys live at the centre only (docs/privacy.md §3).
            (root / "subject.key").write_bytes(os.urandom(32))
            (root / "centre-subject.key").write_bytes(os.urandom(32))

            ctx = multiprocessing.get_context("spawn")
            stop, ready = ctx.Event(), ctx.Queue()
            for name in names:
                ident = pki.collector(name)
                settings = CentralSettings(
                    database_url=url, centre_private_key=root / "centre.key",
                    data_key=root / "data.key", subject_key=root / "subject.key",
                    centre_subject_key=root / "centre-subject.key", broker=BrokerSettings(
                        url=broker.url, ca=pki.ca, cert=ident.cert, key=ident.key,
                        client_id=name, session_expiry_s=3600))
                procs.append(ctx.Process(target=worker_process, args=(settings, stop, ready)))
                procs[-1].start()
            for _ in procs:
                try:
                    ready.get(timeout=60)
                except Exception:
                    raise BenchError("an ingest worker did not subscribe within 60 s") from None

            pty = PtySerialScanner(terminator=b"\r")
            config = agent_config(root / "agent", broker, card, card.parent.parent / "trust")
            config.write_text(config.read_text().replace("{pty}", pty.path))
            opened: list[SimCardReader] = []
            timing = TimingModel.realistic() if args.timing == "realistic" \
                else TimingModel.zero()

            def opener(uri: str) -> CardReader:
                reader = open_reader(uri)
                assert isinstance(reader, SimCardReader)
                reader.chip = load_card(reader.card_dir, timing=timing)
                reader.realtime = args.timing == "realistic"
                opened.append(reader)
                return reader

            agent = create_agent(load_config(config), outputs=SimulatedOutputs(),
                                 reader_opener=opener)
            shown: list[Verdict] = []
            got = threading.Event()
            original = agent._show

            def show(verdict: Verdict, face: tuple[bytes, str] | None = None) -> None:
                shown.append(verdict)
                got.set()
                original(verdict, face)

            agent._show = show  # type: ignore[method-assign]
            agent.start()
            deadline = time.monotonic() + 15
            while not agent.scanners or not opened or not agent.uplink.stats().connected:
                if time.monotonic() > deadline:
                    raise BenchError(f"agent not ready (scanners {len(agent.scanners)}, "
                                     f"readers {len(opened)}, uplink {agent.uplink.stats()})")
                time.sleep(0.01)
            reader = opened[-1]
            reader.remove_card()
            time.sleep(0.3)
            outbox = sqlite3.connect(f"file:{root / 'agent' / 'outbox.sqlite3'}?mode=ro",
                                     uri=True)
            warmup = 10
            for i in range(warmup + args.taps):
                shown.clear()
                got.clear()
                pty.scan(qr.encode("utf-8"))
                time.sleep(0.1)  # armed: "Mời chạm thẻ"
                before = outbox.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
                tap_ms = time.time_ns() / 1e6
                reader.present_card()
                end = time.monotonic() + args.timeout
                while not any(v.drafts for v in shown):
                    if time.monotonic() > end:
                        raise BenchError(f"tap {i}: no verdict with an event within "
                                         f"{args.timeout:.0f} s ({[v.title for v in shown]})")
                    got.wait(0.01)
                    got.clear()
                while True:
                    row = outbox.execute(
                        "SELECT committed_ms, delivered_ms, receipted_ms, receipt FROM events"
                        " WHERE seq > ? ORDER BY seq LIMIT 1", (before,)).fetchone()
                    if row is not None and row[2] is not None:
                        break
                    if time.monotonic() > end:
                        raise BenchError(f"tap {i}: event {row} not receipted within "
                                         f"{args.timeout:.0f} s ({agent.uplink.stats()})")
                    time.sleep(0.001)
                if row[3] != "committed":
                    raise BenchError(f"tap {i}: receipt {row[3]!r}, not committed")
                if i >= warmup:
                    delivered = row[1] if row[1] is not None else row[2]
                    rows.append((tap_ms, row[0], delivered, row[2]))
                reader.remove_card()
                time.sleep(0.1)
            outbox.close()
        finally:
            if agent is not None:
                agent.stop()
            if pty is not None:
                pty.close()
            if stop is not None:
                stop.set()
            for proc in procs:
                proc.join(30)
                if proc.exitcode is None:
                    proc.kill()
            broker.close()
            if pg is not None:
                stop_postgres(pg)

    def line(name: str, values: list[float]) -> str:
        return (f"| {name} | {len(values)} | {statistics.median(values):.1f} | "
                f"{pct(values, 0.99):.1f} | {max(values):.1f} |")

    print(f"Tap to receipt, {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; card timing {args.timing}; {args.workers} ingest "
          f"workers; PostgreSQL; outbox timestamps in ms; load average at the end "
          f"{os.getloadavg()[0]:.1f}\n")
    print("| span | n | median ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
    print(line("tap → committed in the outbox (read, flow, sign, fsync)",
               [c - t for t, c, _, _ in rows]))
    print(line("committed → PUBACK recorded", [d - c for _, c, d, _ in rows]))
    print(line("PUBACK → receipt applied (ingest, commit, receipt)",
               [r - d for _, _, d, r in rows]))
    print(line("**tap → receipt**", [r - t for t, _, _, r in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Outbox + uplink figures against a local mosquitto with TLS client certificates and ACLs.

    .venv/bin/python bench/outbox_uplink.py [--events 500] [--backlog 5000] [--idle 20]

1. Tap → PUBACK latency: for each event, ``Outbox.commit`` (signing, the INSERT and the
   ``synchronous=FULL`` fsync) + ``wake()`` + QoS 1 PUBLISH + PUBACK + the outbox transaction
   that marks it delivered (a second fsync); median and 99th percentile, events one at a time
   (the gate's real pattern). Also the commit alone (what the gatekeeper waits for).
2. Drain rate: a backlog of signed events committed while the broker is down, then the broker
   starts; events/s from the reconnect to the last PUBACK recorded in the outbox.
3. Idle: RSS and CPU% of the process (outbox + connected uplink, heartbeat 30 s) over 20 s.

A collector subscriber (persistent session, QoS 1) receives every event, so the broker's
fan-out is part of the figures. Prints a markdown table. The broker and PKI are those of the
integration tests (``tests/integration/broker_fixtures.py``); figures are measured, never
asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.integration.broker_fixtures import Broker, Recorder, make_pki

DEVICE, SITE = "gate-bench", "site-bench"
SIGNING = Ed25519PrivateKey.generate()
CENTRE = X25519PrivateKey.generate().public_key()


def draft() -> EventDraft:
    return EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                      datetime.now(UTC), subject="5a" * 16)


def commit(outbox: Outbox) -> int:
    d = draft()
    return outbox.commit(d, payload_builder(d, device_id=DEVICE, site_id=SITE,
                                            signing_key=SIGNING, centre_key=CENTRE)).seq


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--backlog", type=int, default=5000)
    ap.add_argument("--idle", type=float, default=20.0)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-uplink-"))
    pki = make_pki(root / "pki", devices=(DEVICE,))
    broker = Broker(root / "broker", pki)
    broker.start()
    collector = Recorder(broker, (f"checkin/v1/{DEVICE}/events",)).start()
    rows: list[tuple[str, str]] = []
    try:
        # 1. tap -> PUBACK
        acked: dict[int, float] = {}
        got = threading.Event()

        def on_delivered(seqs: Sequence[int]) -> None:
            now = time.perf_counter()
            for s in seqs:
                acked[s] = now
            got.set()

        outbox = Outbox(root / "latency.db")
        up = Uplink(DEVICE, SITE, broker.url, pki.tls(DEVICE), outbox, on_delivered=on_delivered)
        up.start()
        while not up.stats().connected:
            time.sleep(0.01)
        for _ in range(20):  # warm-up
            commit(outbox)
            up.wake()
        up.wait_idle(10)
        lat, commit_only = [], []
        for _ in range(args.events):
            got.clear()
            t0 = time.perf_counter()
            seq = commit(outbox)
            commit_only.append(time.perf_counter() - t0)
            up.wake()
            while seq not in acked:
                got.wait(5)
                got.clear()
            lat.append(acked[seq] - t0)
        up.stop()
        outbox.close()
        ms = [x * 1000 for x in lat]
        cms = [x * 1000 for x in commit_only]
        rows.append((f"commit (sign + INSERT + fsync), n={args.events}",
                     f"median {statistics.median(cms):.2f} ms, p99 {pct(cms, 0.99):.2f} ms"))
        rows.append((f"tap → PUBACK recorded (2 fsyncs, TLS), n={args.events}",
                     f"median {statistics.median(ms):.2f} ms, p99 {pct(ms, 0.99):.2f} ms"))

        # 2. drain after an outage
        broker.stop()
        outbox = Outbox(root / "backlog.db", max_rows=10**6)
        t0 = time.perf_counter()
        for _ in range(args.backlog):
            commit(outbox)
        fill = time.perf_counter() - t0
        rows.append((f"commit rate while offline ({args.backlog} events)",
                     f"{args.backlog / fill:,.0f} events/s"))
        up = Uplink(DEVICE, SITE, broker.url, pki.tls(DEVICE), outbox, backoff=(0.05, 0.1))
        up.start()
        broker.start()
        while not up.stats().connected:
            time.sleep(0.001)
        t0 = time.perf_counter()
        assert up.wait_idle(300), up.stats()
        drain = time.perf_counter() - t0
        rows.append((f"drain of a {args.backlog}-event backlog after reconnect (inflight 16)",
                     f"{args.backlog / drain:,.0f} events/s ({drain:.2f} s)"))

        # 3. idle
        time.sleep(1.0)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        w0 = time.perf_counter()
        time.sleep(args.idle)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - w0
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        rows.append((f"idle, connected, {args.idle:.0f} s: CPU",
                     f"{100 * cpu / wall:.2f} % of one core"))
        rows.append(("idle RSS (whole Python process)", f"{rss_kib() / 1024:.1f} MiB"))
        up.stop()
        outbox.close()
        received = len(collector.snapshot())
        rows.append(("events received by the collector subscriber (persistent session)",
                     f"{received} of {args.events + 20 + args.backlog}"))
    finally:
        collector.stop()
        broker.close()

    print(f"Outbox + uplink, {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, mosquitto 2.0.11 (TLS 1.2+, client certs, ACL), "
          f"outbox on {root}\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()

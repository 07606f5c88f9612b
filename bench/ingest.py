"""Ingest throughput against the raw delivery rate of the same broker, in the same run.

    .venv/bin/python bench/ingest.py [--events 20000] [--db sqlite,postgresql] [--workers 2]
        [--repeat 2] [--timeout 300]

For each database: N signed events (edge_agent's builder, 4 devices) are published while the
subscriber's persistent session (Clean Start = 0, Session Expiry) is offline, so the broker
queues them; then the subscriber connects and drains the queue. "raw" is a paho subscriber that
only counts (QoS 1, automatic PUBACK); "ingest" is :class:`central.ingest.worker.IngestWorker`
(validation, signature, idempotent insert, rollups, occupancy, seq bookkeeping, manual PUBACK
after commit, then a receipt per device of the batch, docs/protocol.md §4.11); its clock stops
when every device's own receipts subscription has seen ``committed_through`` reach its last
seq. Both go through the same mosquitto with TLS client certificates
(tests/integration/broker_fixtures.py). PostgreSQL is a throw-away cluster
(tests/integration/pg_fixtures.py; run as root, it uses ``runuser -u postgres``).
Prints a markdown table. Target: ingest ≥ ½ raw. Every wait is bounded (``--timeout``): a
denied subscription, a stuck worker or a missing receipt ends the bench with a message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.engine import make_engine
from central.db.models import Event
from central.ingest.worker import IngestWorker, freeze_startup_heap
from central.settings import BrokerSettings, CentralSettings
from tests.integration.broker_fixtures import (
    Broker,
    make_pki,
    raw_device_client,
    tls_context,
)
from tests.integration.pg_fixtures import (
    fresh_database,
    migrated_engine,
    seed,
    start_postgres,
    stop_postgres,
)
from wire.signing import wire_bytes

DEVICES = {f"gate-{i:02d}": "hue-dai-noi" for i in range(4)}


class Bound:
    """Every wait of the bench is bounded: past it the bench stops with what was missing."""

    s = 300.0


class BenchError(SystemExit):
    """The bench could not measure (a denied subscription, a stuck worker…): it says why."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench/ingest.py: {message}")


def publish_all(broker: Broker, payloads: dict[str, list[bytes]]) -> None:
    threads = []
    failures: list[str] = []

    def run(device_id: str, items: list[bytes]) -> None:
        client = raw_device_client(broker, device_id)
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        infos = [client.publish(f"checkin/v1/{device_id}/events", p, qos=1) for p in items]
        deadline = time.monotonic() + Bound.s
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
        client.disconnect()
        client.loop_stop()
        unacked = sum(not info.is_published() for info in infos)
        if unacked:
            failures.append(f"{device_id}: {unacked} of {len(items)} PUBLISHes not acknowledged "
                            f"within {Bound.s:.0f} s")

    for device_id, items in payloads.items():
        thread = threading.Thread(target=run, args=(device_id, items))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    if failures:
        raise BenchError("; ".join(failures))


def raw_rate(broker: Broker, payloads: dict[str, list[bytes]], total: int) -> float:
    ident = broker.pki.collector("collector-2")
    received = 0
    first: list[float] = []
    done = threading.Event()
    subscribed = threading.Event()
    refused: list[str] = []

    def on_message(*_a: Any) -> None:
        nonlocal received
        if not first:
            first.append(time.perf_counter())
        received += 1
        if received >= total:
            done.set()

    def make() -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="collector-2",
                             protocol=mqtt.MQTTv5)
        client.tls_set_context(tls_context(broker.pki, ident))
        client.on_message = on_message
        def on_subscribe(_c: Any, _u: Any, _m: Any, reasons: Any, _p: Any) -> None:
            refused.extend(str(r) for r in reasons if r.is_failure)
            subscribed.set()

        client.on_subscribe = on_subscribe
        return client

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    client = make()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("checkin/v1/+/events", qos=1)
    ok = subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    if not ok or refused:
        raise BenchError(f"the raw subscriber was not subscribed: {refused or 'no SUBACK'}")
    publish_all(broker, payloads)
    client = make()
    start = time.perf_counter()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(Bound.s)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    if received < total:
        raise BenchError(f"the raw subscriber received {received} of {total} messages within "
                         f"{Bound.s:.0f} s")
    return received / elapsed


def _settings(broker: Broker, url: str, name: str, batch_size: int,
              keys: Path | None) -> CentralSettings:
    """A worker's settings; ``keys`` holds the centre's keys when the events carry sealed
    subjects (``--subjects sealed``)."""
    ident = broker.pki.collector(name)
    extra: dict[str, Any] = {} if keys is None else {
        "centre_private_key": keys / "centre.key", "subject_key": keys / "subject.key",
        "centre_subject_key": keys / "centre-subject.key"}
    return CentralSettings(database_url=url, batch_size=batch_size, **extra,
                           broker=BrokerSettings(
        url=broker.url, ca=broker.pki.ca, cert=ident.cert, key=ident.key,
        client_id=name, group=BrokerSettings.group, session_expiry_s=3600))


def _worker_process(settings: CentralSettings, go: Any, stop: Any, stored: Any) -> None:
    """One ``central ingest`` worker in its own process, as a deployment runs them
    (deploy/systemd/cccd-central-ingest@.service): engine, worker, frozen start-up heap."""
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, engine, periodic_s=3600,
                          on_batch=lambda report: stored.put(("n", report.count("stored"))))
    freeze_startup_heap()
    go.wait()
    cpu = time.process_time()
    worker.start()
    stop.wait()
    worker.stop()
    stored.put(("cpu", time.process_time() - cpu))
    engine.dispose()


class ReceiptWatcher:
    """Each device's own subscription to its receipts (docs/protocol.md §4.11), as the agent
    holds it: notes when every device has been receipted through its last seq."""

    def __init__(self, broker: Broker, per_device: dict[str, int]) -> None:
        self.want = per_device
        self.through = dict.fromkeys(per_device, 0)
        self.receipts = 0
        self.done = threading.Event()
        self.at = 0.0
        self._lock = threading.Lock()
        self.clients: list[mqtt.Client] = []
        self._subscribed = threading.Semaphore(0)
        self.refused: list[str] = []
        for device_id in per_device:
            client = raw_device_client(broker, device_id)
            client.on_message = self._on_message
            client.on_subscribe = self._on_subscribe
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            client.subscribe(f"checkin/v1/{device_id}/receipts", qos=1)
            self.clients.append(client)
        for _ in per_device:
            if not self._subscribed.acquire(timeout=10):
                raise BenchError("a device's receipts subscription got no SUBACK")
        if self.refused:
            raise BenchError(f"receipts subscription refused: {self.refused}")

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, reasons: Any, _p: Any) -> None:
        self.refused.extend(str(r) for r in reasons if r.is_failure)
        self._subscribed.release()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            self.receipts += 1
            device = body["device_id"]
            self.through[device] = max(self.through[device], int(body["committed_through"]))
            if not self.done.is_set() and all(self.through[d] >= n
                                              for d, n in self.want.items()):
                self.at = time.perf_counter()
                self.done.set()

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            client.loop_stop()


def ingest_rate(broker: Broker, url: str, payloads: dict[str, list[bytes]],
                total: int, engine: Any, workers: int,
                batch_size: int, keys: Path | None) -> tuple[float, float, int, float]:
    """Events per second stored, and receipted at the devices, by ``workers`` worker processes
    sharing the subscription; the number of receipts the devices received; the workers' CPU
    seconds (user + system, all processes)."""
    names = [f"collector-{i + 3}" if i else "collector" for i in range(workers)]
    settings = {name: _settings(broker, url, name, batch_size, keys) for name in names}
    for name in names:  # the shared subscription exists, so the broker queues for the group
        IngestWorker(settings[name], engine, periodic_s=3600).start().stop()
    publish_all(broker, payloads)
    watcher = ReceiptWatcher(broker, {d: len(items) for d, items in payloads.items()})
    ctx = multiprocessing.get_context("spawn")
    go, stop, stored = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker_process, args=(settings[name], go, stop, stored))
             for name in names]
    for proc in procs:
        proc.start()
    time.sleep(3)  # the processes import and set up before the clock starts
    start = time.perf_counter()
    go.set()
    n = 0
    try:
        while n < total:
            remaining = start + Bound.s - time.perf_counter()
            dead = [p.pid for p in procs if p.exitcode is not None]
            if remaining <= 0 or dead:
                raise BenchError(f"ingest stored {n} of {total} events in "
                                 f"{time.perf_counter() - start:.0f} s "
                                 f"(worker processes exited: {dead or 'none'})")
            try:
                kind, value = stored.get(timeout=min(remaining, 1.0))
                n += value if kind == "n" else 0
            except queue.Empty:
                continue
        stored_at = time.perf_counter()
        if not watcher.done.wait(max(0.0, start + Bound.s - time.perf_counter())):
            raise BenchError(f"devices receipted through {watcher.through}, "
                             f"wanted {watcher.want}")
        receipted_at = watcher.at
    finally:
        stop.set()
        for proc in procs:
            proc.join(30)
            if proc.exitcode is None:
                proc.kill()
        watcher.close()
    cpu = 0.0
    with contextlib.suppress(queue.Empty):
        while True:
            kind, value = stored.get(timeout=2)
            cpu += value if kind == "cpu" else 0
    with Session(engine) as s:
        count = int(s.scalar(select(func.count()).select_from(Event)) or 0)
    if count != total:
        raise BenchError(f"ingest stored {count} of {total} events")
    return (total / (stored_at - start), total / (receipted_at - start), watcher.receipts,
            cpu)


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    """Median and the range of the runs."""
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))} – {fmt.format(max(values))})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", default="2",
                        help="worker processes sharing the subscription, one figure per count "
                             "(deployed: 2, cccd-central-ingest@1 and @2)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per figure (the machine is shared: median and range)")
    parser.add_argument("--batch-size", type=int, default=CentralSettings.batch_size,
                        help="[ingest] batch_size (default: the collector's default)")
    parser.add_argument("--timeout", type=float, default=Bound.s,
                        help="bound of every wait, seconds; past it the bench fails")
    parser.add_argument("--subjects", choices=("sealed", "clear"), default="sealed",
                        help="sealed: the ID number sealed to the centre, as current agents "
                             "send it (docs/protocol.md §4.7.1); clear: a legacy subject")
    args = parser.parse_args()
    Bound.s = args.timeout
    rows = []
    pg = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counts = [int(w) for w in args.workers.split(",")]
        centre = X25519PrivateKey.generate()
        keys: Path | None = None
        if args.subjects == "sealed":
            keys = root / "keys"
            keys.mkdir()
            (keys / "centre.key").write_bytes(centre.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption()))
            (keys / "subject.key").write_bytes(os.urandom(32))
            (keys / "centre-subject.key").write_bytes(os.urandom(32))
        pki = make_pki(root / "pki", devices=tuple(DEVICES), collectors=(
            "collector", "collector-2", *(f"collector-{i + 3}" for i in range(max(counts)))))
        try:
            for run_no in range(args.repeat):
                for db in args.db.split(","):
                    for workers in counts:  # a fresh broker and database per figure
                        run = root / f"{db}-{workers}-{run_no}"
                        broker = Broker(run / "broker", pki)
                        broker.start()
                        try:
                            if db == "sqlite":
                                url = f"sqlite:///{run / 'bench.sqlite3'}"
                            else:
                                pg = pg or start_postgres()
                                url = fresh_database(pg)
                            engine = migrated_engine(url)
                            fakes = seed(engine, sites={"hue-dai-noi": "heritage"},
                                         devices=DEVICES, centre_key=centre)
                            per = args.events // len(fakes)
                            sealed = args.subjects == "sealed"
                            payloads = {d: [wire_bytes(f.event(
                                "entry" if i % 2 else "exit",
                                subject=None if sealed else os.urandom(16).hex(),
                                ref=f"0791{int.from_bytes(os.urandom(4)):08d}"[:12]
                                if sealed else None))
                                for i in range(per)] for d, f in fakes.items()}
                            total = per * len(fakes)
                            raw = raw_rate(broker, payloads, total)
                            stored, receipted, receipts, cpu = ingest_rate(
                                broker, url, payloads, total, engine, workers,
                                args.batch_size, keys)
                            rows.append((db, workers, total, raw, stored, receipted, receipts,
                                         cpu / total * 1e6))
                            print(f"run {run_no + 1}: {db}, {workers} workers: raw {raw:,.0f}/s,"
                                  f" stored {stored:,.0f}/s, receipted {receipted:,.0f}/s "
                                  f"({receipts} receipts), {cpu / total * 1e6:.0f} µs CPU/event",
                                  file=sys.stderr, flush=True)
                            engine.dispose()
                        finally:
                            broker.close()
        finally:
            if pg is not None:
                stop_postgres(pg)
    print(f"{args.repeat} run(s) per row; median (min – max); load average at the end "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. Ingest rate: events / time from "
          "the workers' start until every device held a receipt through its last seq.\n")
    print("| database | ingest workers | events | raw delivery (msg/s) | ingest with receipts "
          "(events/s) | ingest / raw | receipts received | ingest CPU µs per event |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for db in args.db.split(","):
        for workers in counts:
            mine = [r for r in rows if r[0] == db and r[1] == workers]
            raw_v = [r[3] for r in mine]
            rec_v = [r[5] for r in mine]
            ratio = [r[5] / r[3] for r in mine]
            print(f"| {db} | {workers} | {mine[0][2]} | {spread(raw_v)} | {spread(rec_v)} "
                  f"| **{spread(ratio, '{:.2f}')}** | {spread([r[6] for r in mine])} "
                  f"| {spread([r[7] for r in mine])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingest throughput against the raw delivery rate of the same broker, in the same run.

    .venv/bin/python bench/ingest.py [--events 20000] [--db sqlite,postgresql]

For each database: N signed events (edge_agent's builder, 4 devices) are published while the
subscriber's persistent session (Clean Start = 0, Session Expiry) is offline, so the broker
queues them; then the subscriber connects and drains the queue. "raw" is a paho subscriber that
only counts (QoS 1, automatic PUBACK); "ingest" is :class:`central.ingest.worker.IngestWorker`
(validation, signature, idempotent insert, rollups, occupancy, seq bookkeeping, manual PUBACK
after commit). Both go through the same mosquitto with TLS client certificates
(tests/integration/broker_fixtures.py). PostgreSQL is a throw-away cluster
(tests/integration/pg_fixtures.py; run as root, it uses ``runuser -u postgres``).
Prints a markdown table. Target: ingest ≥ ½ raw.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt
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


def publish_all(broker: Broker, payloads: dict[str, list[bytes]]) -> None:
    threads = []

    def run(device_id: str, items: list[bytes]) -> None:
        client = raw_device_client(broker, device_id)
        client.max_inflight_messages_set(200)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        infos = [client.publish(f"checkin/v1/{device_id}/events", p, qos=1) for p in items]
        for info in infos:
            info.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()

    for device_id, items in payloads.items():
        thread = threading.Thread(target=run, args=(device_id, items))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


def raw_rate(broker: Broker, payloads: dict[str, list[bytes]], total: int) -> float:
    ident = broker.pki.collector("collector-2")
    received = 0
    first: list[float] = []
    done = threading.Event()
    subscribed = threading.Event()

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
        client.on_subscribe = lambda *_a: subscribed.set()
        return client

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client = make()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe("checkin/v1/+/events", qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    publish_all(broker, payloads)
    client = make()
    start = time.perf_counter()
    client.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(300)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return received / elapsed


def _settings(broker: Broker, url: str, name: str, batch_size: int) -> CentralSettings:
    ident = broker.pki.collector(name)
    return CentralSettings(database_url=url, batch_size=batch_size, broker=BrokerSettings(
        url=broker.url, ca=broker.pki.ca, cert=ident.cert, key=ident.key,
        client_id=name, group="bench", session_expiry_s=3600))


def _worker_process(settings: CentralSettings, go: Any, stop: Any, stored: Any) -> None:
    """One ``central ingest`` worker in its own process, as a deployment runs them
    (deploy/systemd/cccd-central-ingest@.service): engine, worker, frozen start-up heap."""
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, engine, periodic_s=3600,
                          on_batch=lambda report: stored.put(report.count("stored")))
    freeze_startup_heap()
    go.wait()
    worker.start()
    stop.wait()
    worker.stop()
    engine.dispose()


def ingest_rate(broker: Broker, url: str, payloads: dict[str, list[bytes]],
                total: int, engine: Any, workers: int, batch_size: int) -> float:
    """Events per second stored by ``workers`` worker processes sharing the subscription."""
    names = [f"collector-{i + 3}" if i else "collector" for i in range(workers)]
    settings = {name: _settings(broker, url, name, batch_size) for name in names}
    for name in names:  # the shared subscription exists, so the broker queues for the group
        IngestWorker(settings[name], engine, periodic_s=3600).start().stop()
    publish_all(broker, payloads)
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
    while n < total and time.perf_counter() - start < 600:
        n += stored.get(timeout=600)
    elapsed = time.perf_counter() - start
    stop.set()
    for proc in procs:
        proc.join(30)
    with Session(engine) as s:
        count = int(s.scalar(select(func.count()).select_from(Event)) or 0)
    if count != total:
        raise SystemExit(f"ingest stored {count} of {total} events")
    return total / elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2",
                        help="worker processes sharing the subscription, one run per figure")
    parser.add_argument("--batch-size", type=int, default=CentralSettings.batch_size,
                        help="[ingest] batch_size (default: the collector's default)")
    args = parser.parse_args()
    rows = []
    pg = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counts = [int(w) for w in args.workers.split(",")]
        pki = make_pki(root / "pki", devices=tuple(DEVICES), collectors=(
            "collector", "collector-2", *(f"collector-{i + 3}" for i in range(max(counts)))))
        try:
            for db in args.db.split(","):
                for workers in counts:  # a fresh broker and database per figure
                    run = root / f"{db}-{workers}"
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
                                     devices=DEVICES)
                        per = args.events // len(fakes)
                        payloads = {d: [wire_bytes(f.event("entry" if i % 2 else "exit",
                                                           subject=os.urandom(16).hex()))
                                        for i in range(per)] for d, f in fakes.items()}
                        total = per * len(fakes)
                        raw = raw_rate(broker, payloads, total)
                        ingest = ingest_rate(broker, url, payloads, total, engine, workers,
                                             args.batch_size)
                        rows.append((db, workers, total, raw, ingest))
                        engine.dispose()
                    finally:
                        broker.close()
        finally:
            if pg is not None:
                stop_postgres(pg)
    print("| database | ingest workers | events | raw delivery (msg/s) | ingest (events/s) "
          "| ingest / raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for db, workers, total, raw, ingest in rows:
        print(f"| {db} | {workers} | {total} | {raw:,.0f} | {ingest:,.0f} "
              f"| {ingest / raw:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

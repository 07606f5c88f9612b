"""The drain after an outage: many devices, each with an hour of events in its outbox, reconnect
at once to a broker that comes back; how long until the centre holds and has receipted it all.

    .venv/bin/python bench/outage_drain.py [--devices 1000] [--per-hour 360] [--outage-s 3600]
        [--procs 4] [--workers 2] [--down-s 70] [--timeout 1800]

Every device is real agent code speaking the real wire: its own ``edge_agent.outbox.Outbox``
(SQLite, fsync) holding signed events (``payload_builder``: Ed25519, canonical JSON) and its own
``edge_agent.uplink.Uplink`` (MQTT 5, TLS client certificate, QoS 1, receipts subscription,
resend of what is not receipted, jittered exponential reconnect backoff 0.5 … 60 s). The
devices are spread over ``--procs`` processes (threads: an uplink and its paho network thread
per device). Every device is enrolled: a certificate in the test PKI, a role in the broker's
dynamic-security configuration (``central broker-acl``'s document from the registry, as
``central broker-sync`` keeps it), and its public key in the centre's registry (20 gates a
site). The centre is ``--workers`` ``central ingest`` processes on the shared subscription
(deployed: two) over a throw-away PostgreSQL cluster.

The outage: the broker is down (stopped gracefully after the ingest workers' persistent shared
sessions were created, so it still knows them) while every outbox is filled with
``--outage-s`` of events at ``--per-hour`` per device (``occurred_at`` spread over the outage).
The uplinks start while the broker is still down and retry with their own backoff for
``--down-s`` seconds, long enough to reach the 60 s ceiling as after a real hour; then the
broker starts (t = 0), the workers' processes reconnect, and each device comes back when its
jittered backoff expires. Measured from t = 0: all devices connected; every event stored
(PostgreSQL count); every outbox fully receipted. Also the events the devices sent again
(receipt timeout, or a reconnect), the duplicates the centre answered, and the peak resident
memory of mosquitto, of each ingest worker and of each device process. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.engine import make_engine
from central.db.models import Event
from central.ingest.worker import IngestWorker, freeze_startup_heap
from central.settings import BrokerSettings, CentralSettings
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox, payload_builder
from edge_agent.uplink import Uplink
from tests.integration.broker_fixtures import Broker, make_pki
from tests.integration.pg_fixtures import (
    fresh_database,
    migrated_engine,
    seed,
    start_postgres,
    stop_postgres,
)

GATES_PER_SITE = 20


class BenchError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"bench/outage_drain.py: {message}")


def peak_rss_mib(pid: int | None = None) -> float:
    """VmHWM (peak resident set) of a process, MiB."""
    with open(f"/proc/{pid or os.getpid()}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def worker_process(settings: CentralSettings, go: Any, stop: Any, out: Any) -> None:
    """One ``central ingest`` worker in its own process, as deployed; reports each batch's
    stored and duplicate counts, and its peak memory at the end."""
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, engine, periodic_s=3600, on_batch=lambda report: out.put(
        ("batch", report.count("stored"), report.count("duplicate"))))
    freeze_startup_heap()
    go.wait()
    deadline = time.monotonic() + 60
    while True:  # the broker is starting: a worker restarted by systemd retries the same way
        try:
            worker.start(timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            worker = IngestWorker(settings, engine, periodic_s=3600,
                                  on_batch=lambda report: out.put(
                                      ("batch", report.count("stored"),
                                       report.count("duplicate"))))
            time.sleep(0.5)
    out.put(("worker-up", settings.broker.client_id))
    stop.wait()
    worker.stop()
    engine.dispose()
    out.put(("worker-rss", settings.broker.client_id, peak_rss_mib()))


def device_process(spec: dict[str, Any], go: Any, stop: Any, out: Any) -> None:
    """Devices ``spec['devices']``: fill their outboxes (the outage), then run their uplinks
    from ``go`` and report progress every half second."""
    root = Path(spec["root"])
    centre = X25519PublicKey.from_public_bytes(spec["centre"])
    per = spec["events"]
    step = spec["outage_s"] / max(1, per)
    start_at = datetime.now(UTC) - timedelta(seconds=spec["outage_s"])
    outboxes: list[Outbox] = []
    uplinks: list[Uplink] = []
    for device_id, site_id, key_pem, tls in spec["devices"]:
        key = serialization.load_pem_private_key(key_pem, None)
        assert isinstance(key, Ed25519PrivateKey)
        outbox = Outbox(root / f"{device_id}.outbox", max_rows=10**6)
        items = []
        for i in range(per):
            draft = EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                               start_at + timedelta(seconds=i * step), os.urandom(16).hex(), 1,
                               Demographics("25-44", "F" if i % 2 else "M", "046"))
            items.append((draft, payload_builder(draft, device_id=device_id, site_id=site_id,
                                                 signing_key=key, centre_key=centre)))
        for lo in range(0, per, 500):
            outbox.commit_all(items[lo:lo + 500])
        outboxes.append(outbox)
        uplinks.append(Uplink(device_id, site_id, spec["url"], tls, outbox,
                              heartbeat_s=30, receipt_timeout_s=60))
    out.put(("filled", len(outboxes)))
    go.wait()
    for uplink in uplinks:  # the broker is still down: each backs off with its own jitter
        uplink.start()
    while not stop.wait(0.5):
        connected = sum(u.stats().connects > 0 for u in uplinks)
        unreceipted = sum(o.unreceipted() for o in outboxes)
        out.put(("progress", spec["index"], connected, unreceipted))
    stats = [u.stats() for u in uplinks]
    stoppers = [threading.Thread(target=u.stop, kwargs={"timeout": 2}) for u in uplinks]
    for stopper in stoppers:  # in parallel: each waits for its own connection to close
        stopper.start()
    for stopper in stoppers:
        stopper.join()
    for outbox in outboxes:
        outbox.close()
    out.put(("device-end", spec["index"], sum(s.resent for s in stats),
             sum(s.published for s in stats), sum(s.connects for s in stats),
             peak_rss_mib()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--per-hour", type=int, default=360,
                    help="events per device and hour (360: one visitor every 10 s at a busy "
                         "gate's peak)")
    ap.add_argument("--outage-s", type=int, default=3600)
    ap.add_argument("--procs", type=int, default=4, help="device processes")
    ap.add_argument("--workers", type=int, default=2, help="ingest worker processes")
    ap.add_argument("--down-s", type=float, default=70.0,
                    help="seconds the uplinks retry against the stopped broker before it "
                         "starts (70 s reaches the agent's 60 s backoff ceiling)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--outbox-dir", type=Path, default=None,
                    help="where the devices' outboxes live (default: the run's temporary "
                         "directory; /dev/shm takes the shared disk's fsyncs out: a real "
                         "device fsyncs its own SD card, not one disk for all)")
    args = ap.parse_args()
    per = args.per_hour * args.outage_s // 3600
    total = per * args.devices
    devices = {f"gate-{n:04d}": f"site-{n // GATES_PER_SITE:03d}" for n in range(args.devices)}
    sites = {s: "heritage" for s in sorted(set(devices.values()))}
    pg = None
    procs: list[Any] = []
    ctx = multiprocessing.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    wgo, wstop = ctx.Event(), ctx.Event()
    results: dict[str, Any] = {}
    dev_dir: Path | None = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        names = ["collector", *(f"collector-{i + 3}" for i in range(args.workers - 1))]
        pki = make_pki(root / "pki", devices=tuple(devices), collectors=(*names, "collector-2"),
                       sites=devices)
        broker = Broker(root / "broker", pki)  # its dynamic-security file: every device's role
        results["enrol_s"] = time.perf_counter() - t
        try:
            pg = start_postgres()
            url = fresh_database(pg)
            engine = migrated_engine(url)
            centre = X25519PrivateKey.generate()
            fakes = seed(engine, sites=sites, devices=devices, centre_key=centre)
            (root / "centre.key").write_bytes(centre.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption()))
            (root / "data.key").write_bytes(os.urandom(32))
            settings = {}
            for name in names:
                ident = pki.collector(name)
                settings[name] = CentralSettings(
                    database_url=url, centre_private_key=root / "centre.key",
                    data_key=root / "data.key", broker=BrokerSettings(
                        url=broker.url, ca=pki.ca, cert=ident.cert, key=ident.key,
                        client_id=name, session_expiry_s=86400))
            # The workers' persistent shared sessions exist before the outage.
            broker.start()
            for name in names:
                IngestWorker(settings[name], engine, periodic_s=3600).start().stop()
            broker.stop()

            # The outage: outboxes filled while the broker is down.
            dev_dir = Path(tempfile.mkdtemp(prefix="outboxes-", dir=args.outbox_dir)) \
                if args.outbox_dir else root / "dev"
            dev_dir.mkdir(exist_ok=True)
            t = time.perf_counter()
            centre_pub = centre.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)
            specs: list[dict[str, Any]] = [
                {"index": i, "root": str(dev_dir), "centre": centre_pub, "events": per,
                 "outage_s": args.outage_s, "url": broker.url, "devices": []}
                for i in range(args.procs)]
            for n, (device_id, fake) in enumerate(sorted(fakes.items())):
                specs[n % args.procs]["devices"].append((
                    device_id, fake.site_id, fake.key.private_bytes(
                        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()), pki.tls(device_id)))
            for spec in specs:
                procs.append(ctx.Process(target=device_process, args=(spec, go, stop, out)))
            for name in names:
                procs.append(ctx.Process(target=worker_process,
                                         args=(settings[name], wgo, wstop, out)))
            for proc in procs:
                proc.start()
            filled = 0
            while filled < args.devices:
                try:
                    msg = out.get(timeout=args.timeout)
                except queue.Empty:
                    raise BenchError("the outboxes were not filled in time") from None
                if msg[0] == "filled":
                    filled += msg[1]
            results["fill_s"] = time.perf_counter() - t

            go.set()  # uplinks start against the stopped broker
            time.sleep(args.down_s)
            broker.start()
            t0 = time.perf_counter()
            wgo.set()
            connected: dict[int, int] = {}
            unreceipted: dict[int, int] = {}
            stored = duplicates = 0
            marks: dict[str, float] = {}
            last_count = 0.0
            next_report = 10.0
            while True:
                now = time.perf_counter() - t0
                if now > args.timeout:
                    raise BenchError(f"after {now:.0f} s: {stored} stored of {total}, "
                                     f"{sum(unreceipted.values())} unreceipted, "
                                     f"{sum(connected.values())} devices connected")
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise BenchError(f"a process failed: {[p.exitcode for p in procs]}")
                try:
                    msg = out.get(timeout=0.5)
                except queue.Empty:
                    msg = ("idle",)
                if now >= next_report:  # progress on stderr: a stalled drain shows where
                    next_report = now + 10
                    print(f"t={now:.0f}s: {sum(connected.values())} devices connected, "
                          f"{stored:,} stored, {sum(unreceipted.values()):,} unreceipted",
                          file=sys.stderr, flush=True)
                if msg[0] == "batch":
                    stored += msg[1]
                    duplicates += msg[2]
                elif msg[0] == "progress":
                    connected[msg[1]] = msg[2]
                    unreceipted[msg[1]] = msg[3]
                if "connected" not in marks and sum(connected.values()) == args.devices:
                    marks["connected"] = now
                if "stored" not in marks and stored >= total \
                        and time.perf_counter() - last_count > 1:
                    last_count = time.perf_counter()
                    with Session(engine) as s:
                        if int(s.scalar(select(func.count()).select_from(Event)) or 0) == total:
                            marks["stored"] = time.perf_counter() - t0
                if "stored" in marks and sum(unreceipted.values()) == 0 \
                        and len(unreceipted) == args.procs:
                    marks["receipted"] = now
                    break
            results["broker_rss"] = peak_rss_mib(broker.proc.pid if broker.proc else None)
            stop.set()
            wstop.set()
            ends: list[tuple[Any, ...]] = []
            worker_rss: list[float] = []
            deadline = time.monotonic() + 60
            while (len(ends) < args.procs or len(worker_rss) < args.workers) \
                    and time.monotonic() < deadline:
                try:
                    msg = out.get(timeout=1)
                except queue.Empty:
                    continue
                if msg[0] == "device-end":
                    ends.append(msg)
                elif msg[0] == "worker-rss":
                    worker_rss.append(msg[2])
                elif msg[0] == "batch":
                    duplicates += msg[2]
            with Session(engine) as s:
                final = int(s.scalar(select(func.count()).select_from(Event)) or 0)
            engine.dispose()
        finally:
            go.set()
            wgo.set()
            stop.set()
            wstop.set()
            for proc in procs:
                proc.join(30)
                if proc.exitcode is None:
                    proc.kill()
            broker.close()
            if pg is not None:
                stop_postgres(pg)
            if args.outbox_dir and dev_dir is not None:
                shutil.rmtree(dev_dir, ignore_errors=True)
    if final != total:
        raise BenchError(f"the centre holds {final} events, {total} were sent")
    resent = sum(e[2] for e in ends)
    published = sum(e[3] for e in ends)
    connects = sum(e[4] for e in ends)
    print(f"Outage drain, {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average at the end "
          f"{os.getloadavg()[0]:.1f}; {args.devices} devices in {args.procs} processes, "
          f"{args.workers} ingest workers, PostgreSQL; outboxes in "
          f"{args.outbox_dir or 'the temporary directory (disk)'}\n")
    print("| measure | result |\n|---|---|")
    print(f"| devices enrolled (certificates, broker roles, registry) | {args.devices} "
          f"({results['enrol_s']:.0f} s for the PKI) |")
    print(f"| events in the outboxes ({args.per_hour}/h per device, {args.outage_s} s outage) "
          f"| {total:,} (filled in {results['fill_s']:.0f} s) |")
    print(f"| all devices reconnected (jittered backoff) | {marks['connected']:.1f} s |")
    print(f"| every event stored at the centre | {marks['stored']:.1f} s |")
    print(f"| **every event receipted in its outbox** | **{marks['receipted']:.1f} s** |")
    print(f"| drain rate (events / time to the last receipt) | "
          f"{total / marks['receipted']:,.0f} events/s |")
    print(f"| PUBLISHes by the devices / sent again (no receipt in time, reconnect) | "
          f"{published:,} / {resent:,} |")
    print(f"| duplicates answered by the centre | {duplicates:,} |")
    print(f"| connections (first + reconnects) | {connects:,} |")
    print(f"| peak RSS: mosquitto | {results['broker_rss']:.0f} MiB |")
    print(f"| peak RSS: ingest workers | {', '.join(f'{r:.0f}' for r in worker_rss)} MiB |")
    print(f"| peak RSS: device processes ({args.devices // args.procs} devices each) | "
          f"{', '.join(f'{e[5]:.0f}' for e in ends)} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

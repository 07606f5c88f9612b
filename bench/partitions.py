"""The collector's PostgreSQL at 10 M events: ingest, counts and purge, partitioned by month.

    .venv/bin/python bench/partitions.py                       # 10 M events, both layouts
    .venv/bin/python bench/partitions.py --events 1000000 --layouts partitioned

For each layout a fresh database on a throw-away PostgreSQL 15 cluster
(tests/integration/pg_fixtures.py: fsync off, synchronous_commit off) is migrated to head
(``partitioned``: events by month, central.db.partitions) or then rebuilt as one plain table
with the same columns and keys (``flat``), and loaded with ``--events`` rows by SQL
(``generate_series``; keys and indexes built after the load, as a restore would): ``--devices``
devices over ``--sites`` sites, each device's seqs in time order, ``occurred_at`` spread evenly
over the 13 months up to an hour ago, the dedupe ledger (``event_keys``) filled from them, and
the rollups aggregated from them. Then:

(a) ingest: ``--batches`` batches of ``--batch-size`` signed events (edge_agent's builder, 50
    enrolled devices, occurred now) stored by :func:`central.ingest.store.process` in one
    transaction each, as the worker does: p50/p99 per batch, events/s over all batches;
(b) reads: the counts the dashboard and reports ask (central.readside ``counts``: today by
    hour × method, this week by day, last month by site) and the two readers of the events
    table (``refusals`` over a week, the people search over 30 days), ``--requests`` times
    each: p50/p99;
(c) purge: the oldest whole month removed by ``DELETE`` (events and their keys), then the next
    month by :func:`central.purge.purge` with its horizon at that month's end (partitioned: a
    DETACH + DROP; flat: a DELETE), with the rollups' total checked unchanged.

Prints markdown tables (docs/performance.md, "PostgreSQL at 10 M events").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from central.db.models import Event
from central.db.partitions import (
    add_months,
    drop_partitions_before,
    ensure_partitions,
    is_partitioned,
    month,
    month_start,
)
from central.ingest.store import IngestContext, process
from central.ingest.validate import Incoming
from central.purge import purge
from central.readside import counts, refusals
from central.settings import Retention
from tests.integration.pg_fixtures import (
    fresh_database,
    migrated_engine,
    seed,
    start_postgres,
    stop_postgres,
)
from wire.signing import wire_bytes

SPAN = timedelta(days=395)  # inside the 400-day retention: every month 13 back is loaded


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def flatten(engine: Engine) -> None:
    """Rebuild ``events`` as one plain table with the same columns, keys and index."""
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE events CASCADE"))
        conn.execute(text(
            "CREATE TABLE events (device_id varchar(64) NOT NULL, event_id varchar(36) NOT NULL,"
            " seq bigint NOT NULL, site_id varchar(64) NOT NULL,"
            " occurred_at timestamptz NOT NULL, received_at timestamptz NOT NULL,"
            " kind varchar(16) NOT NULL, method varchar(16) NOT NULL,"
            " assurance varchar(16) NOT NULL, subject varchar(32), count integer NOT NULL,"
            " age_band varchar(8), sex varchar(1), birth_province varchar(3),"
            " reason varchar(32), details json, sig varchar(86),"
            " CONSTRAINT pk_events PRIMARY KEY (device_id, seq, occurred_at),"
            " CONSTRAINT fk_events_device_id_devices FOREIGN KEY (device_id)"
            " REFERENCES devices (id),"
            " CONSTRAINT fk_events_site_id_sites FOREIGN KEY (site_id) REFERENCES sites (id))"))
        conn.execute(text("CREATE INDEX ix_events_occurred_at ON events (occurred_at)"))


KEYS_DROP = [
    "ALTER TABLE events DROP CONSTRAINT pk_events",
    "DROP INDEX ix_events_occurred_at",
    "ALTER TABLE events DROP CONSTRAINT fk_events_device_id_devices",
    "ALTER TABLE events DROP CONSTRAINT fk_events_site_id_sites",
    "ALTER TABLE event_keys DROP CONSTRAINT pk_event_keys",
    "ALTER TABLE event_keys DROP CONSTRAINT uq_event_keys_device_event",
    "DROP INDEX ix_event_keys_occurred_at",
]
KEYS_ADD = [
    "ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (device_id, seq, occurred_at)",
    "CREATE INDEX ix_events_occurred_at ON events (occurred_at)",
    "ALTER TABLE events ADD CONSTRAINT fk_events_device_id_devices FOREIGN KEY (device_id) "
    "REFERENCES devices (id)",
    "ALTER TABLE events ADD CONSTRAINT fk_events_site_id_sites FOREIGN KEY (site_id) "
    "REFERENCES sites (id)",
    "ALTER TABLE event_keys ADD CONSTRAINT pk_event_keys PRIMARY KEY (device_id, seq)",
    "ALTER TABLE event_keys ADD CONSTRAINT uq_event_keys_device_event "
    "UNIQUE (device_id, event_id)",
    "CREATE INDEX ix_event_keys_occurred_at ON event_keys USING brin (occurred_at)",
]


def load(engine: Engine, total: int, devices: int, sites: int, now: datetime) -> dict[str, float]:
    """The synthetic history; returns the seconds each step took."""
    took: dict[str, float] = {}
    t0 = time.perf_counter()
    with engine.begin() as conn:
        unit = conn.execute(text("SELECT min(id) FROM units")).scalar_one()
        conn.execute(text(
            "INSERT INTO sites (id, name, kind, unit_id, capacity, close_time) "
            "SELECT 'site-' || s, 'Điểm ' || s, 'HERITAGE', :u, 5000, '17:30' "
            "FROM generate_series(0, :n - 1) s"), {"u": unit, "n": sites})
        conn.execute(text(
            "INSERT INTO devices (id, site_id, name, signing_public_key, enrolled_at, revoked,"
            " state, last_seq, contiguous_seq, generation, seq_base) "
            "SELECT 'dev-' || d, 'site-' || (d % :s), '', decode(repeat('00', 32), 'hex'),"
            " :t, false, 'online', 0, 0, 1, 0 FROM generate_series(0, :n - 1) d"),
            {"s": sites, "n": devices, "t": now - SPAN})
        if engine.dialect.name == "postgresql":
            ensure_partitions(conn, now, back=SPAN + timedelta(days=1))
        for statement in KEYS_DROP:
            conn.execute(text(statement))
    step = 1_000_000
    start = now - timedelta(hours=1) - SPAN
    for first in range(0, total, step):
        t1 = time.perf_counter()
        with engine.begin() as conn:
            # Row i: device i % devices, its seq i // devices + 1, time i / total of the span.
            conn.execute(text(
                "INSERT INTO events (device_id, event_id, seq, site_id, occurred_at,"
                " received_at, kind, method, assurance, subject, count, age_band, sex,"
                " birth_province, reason, details, sig) "
                "SELECT 'dev-' || (i % :d), md5(i::text)::uuid::text, i / :d + 1,"
                " 'site-' || ((i % :d) % :s),"
                " :start + (i::float8 / :n) * interval '395 days',"
                " :start + (i::float8 / :n) * interval '395 days' + interval '2 seconds',"
                " CASE WHEN i % 997 = 0 THEN 'rejected' WHEN i % 2 = 0 THEN 'entry'"
                " ELSE 'exit' END,"
                " CASE WHEN i % 3 = 0 THEN 'card-qr' ELSE 'chip' END,"
                " CASE WHEN i % 3 = 0 THEN 'qr' ELSE 'chip-anchored' END,"
                " substr(md5((i % 50000)::text), 1, 32), 1,"
                " CASE WHEN i % 5 < 2 THEN '25-44' ELSE '60+' END,"
                " CASE WHEN i % 7 < 4 THEN 'F' ELSE 'M' END, '046',"
                " CASE WHEN i % 997 = 0 THEN 'expired' END, NULL,"
                " rpad(md5(i::text || 's'), 86, 'x') "
                "FROM generate_series(:a, :b) i"),
                {"d": devices, "s": sites, "n": total, "start": start, "a": first,
                 "b": min(first + step, total) - 1})
        log(f"  events {min(first + step, total):,} / {total:,} "
            f"({time.perf_counter() - t1:.0f} s)")
    took["events rows"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO event_keys (device_id, seq, event_id, occurred_at, sig) "
                          "SELECT device_id, seq, event_id, occurred_at, sig FROM events"))
    took["ledger rows"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("SET maintenance_work_mem = '512MB'"))
        for statement in KEYS_ADD:
            conn.execute(text(statement))
        conn.execute(text(
            "UPDATE devices d SET last_seq = m.q, contiguous_seq = m.q FROM "
            "(SELECT device_id, max(seq) AS q FROM event_keys GROUP BY device_id) m "
            "WHERE m.device_id = d.id"))
    took["keys and indexes"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO rollups (site_id, hour, kind, method, age_band, sex, birth_province,"
            " insurance, people, events) "
            "SELECT site_id, date_trunc('hour', occurred_at), kind, method,"
            " coalesce(age_band, ''), coalesce(sex, ''), coalesce(birth_province, ''), '',"
            " sum(count), count(*) FROM events WHERE kind <> 'rejected' "
            "GROUP BY 1, 2, 3, 4, 5, 6, 7"))
    took["rollups"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    took["vacuum analyze"] = time.perf_counter() - t1
    return took


def prepare(fakes: dict[str, Any], batches: int, size: int) -> list[list[Incoming]]:
    """Signed batches (edge_agent's builder), built before anything is timed."""
    names = sorted(fakes)
    out = []
    for b in range(batches):
        now = datetime.now(UTC)
        out.append([Incoming(f"checkin/v1/{names[(b * size + k) % len(names)]}/events",
                             wire_bytes(fakes[names[(b * size + k) % len(names)]].event(
                                 "entry" if k % 2 == 0 else "exit",
                                 subject=uuid.uuid4().hex)),
                             received_at=now) for k in range(size)])
    return out


def store(engine: Engine, ctx: IngestContext, batch: list[Incoming]) -> float:
    """One batch through the store, in one transaction as the worker does; seconds."""
    t0 = time.perf_counter()
    with Session(engine) as session, session.begin():
        report = process(session, batch, ctx)
    took = time.perf_counter() - t0
    assert report.count("stored") == len(batch), report.count("stored")
    return took


def summary(times: list[float], events: int) -> dict[str, float]:
    return {"p50 ms": statistics.median(times) * 1000, "p99 ms": pct(times, 0.99) * 1000,
            "events/s": events / sum(times)}


def reads(engine: Engine, sites: int, now: datetime) -> dict[str, Callable[[Session], object]]:
    """The queries measured, by name."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last_month = month(add_months(month_start(now), -1))
    site_ids = [f"site-{s}" for s in range(sites)]
    subject = "0" * 32
    with engine.connect() as conn:
        subject = conn.execute(text("SELECT subject FROM events WHERE site_id = 'site-1' "
                                    "AND occurred_at > :t LIMIT 1"),
                               {"t": now - timedelta(days=10)}).scalar() or subject

    def people_search(session: Session) -> object:
        return list(session.execute(
            select(Event.occurred_at, Event.kind, Event.method, Event.device_id)
            .where(Event.site_id == "site-1", Event.subject == subject,
                   Event.occurred_at >= now - timedelta(days=30), Event.occurred_at < now)
            .order_by(Event.occurred_at).limit(201)))

    return {
        "counts today by hour × method (rollups)":
            lambda s: counts(s, None, today, now, ("hour", "method")),
        "counts this week by day (rollups)":
            lambda s: counts(s, None, today - timedelta(days=6), now, ("day",)),
        "counts last month by site (rollups)":
            lambda s: counts(s, None, last_month.start, last_month.end, ("site_id",)),
        "refusals over a week (events)":
            lambda s: refusals(s, site_ids, today - timedelta(days=6), now),
        "people search, one site, 30 days (events)": people_search,
    }


def purges(engine: Engine, now: datetime) -> dict[str, float]:
    """One month's events removed by DELETE, the next month's by the purge's DETACH + DROP
    (flat: its DELETE), each month's keys by DELETE; then a daily purge run (one more day)."""
    first = month(add_months(month_start(now - SPAN), 1))  # the oldest whole month loaded
    second = month(first.end)
    out: dict[str, float] = {}
    with engine.connect() as conn:
        people = conn.execute(text("SELECT sum(people) FROM rollups")).scalar()
    with engine.begin() as conn:  # the partial month before: out of the way, not timed
        conn.execute(text("DELETE FROM events WHERE occurred_at < :b"), {"b": first.start})
        conn.execute(text("DELETE FROM event_keys WHERE occurred_at < :b"), {"b": first.start})
    for part, label in ((first, "A"), (second, "B")):
        rows = {"a": part.start, "b": part.end}
        with engine.connect() as conn:
            out[f"month {label}: events"] = float(conn.execute(text(
                "SELECT count(*) FROM events WHERE occurred_at >= :a AND occurred_at < :b"),
                rows).scalar_one())
        counted = detached = 0.0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            if label == "B" and is_partitioned(conn):
                dropped, _n = drop_partitions_before(conn, first.end)  # A, emptied above
                t1 = time.perf_counter()
                conn.execute(text(f"SELECT count(*) FROM {part.name}"))
                counted = time.perf_counter() - t1
                t1 = time.perf_counter()
                dropped, _n = drop_partitions_before(conn, part.end)
                detached = time.perf_counter() - t1
                assert dropped == [part.name], dropped
            else:
                conn.execute(text("DELETE FROM events WHERE occurred_at >= :a "
                                  "AND occurred_at < :b"), rows)
        how = "DELETE" if label == "A" else "the purge's way: DETACH + DROP, flat DELETE"
        out[f"month {label}: events removed by {how} (s)"] = time.perf_counter() - t0
        if label == "B":
            out["month B: of which the exact count(*) for the purge's report (s)"] = counted
            out["month B: of which drop_partitions_before: count, DETACH, DROP (s)"] = detached
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM event_keys WHERE occurred_at >= :a "
                              "AND occurred_at < :b"), rows)
        out[f"month {label}: their keys removed by DELETE (s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if not is_partitioned(conn):  # the dead rows both DELETEs left (dropped: none)
            conn.execute(text("VACUUM events"))
    out["VACUUM of the dead rows the events DELETEs left (s)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with Session(engine) as session, session.begin():
        report = purge(session, now, Retention(events=now - second.end - timedelta(days=1)))
    out["daily purge() run: events removed"] = float(report.events)
    out["daily purge() run (s)"] = time.perf_counter() - t0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(people) FROM rollups")).scalar() == people
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--devices", type=int, default=3000)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--layouts", nargs="+", choices=("partitioned", "flat"),
                        default=["partitioned", "flat"])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    server = start_postgres()
    results: dict[str, dict[str, Any]] = {}
    engines: dict[str, Engine] = {}
    batches: dict[str, list[list[Incoming]]] = {}
    contexts: dict[str, IngestContext] = {}
    try:
        now = datetime.now(UTC)
        for layout in args.layouts:
            engine = engines[layout] = migrated_engine(fresh_database(server))
            centre = X25519PrivateKey.generate()
            fakes = seed(engine, sites={"bench-site": "heritage"},
                         devices={f"bench-{i:02d}": "bench-site" for i in range(50)},
                         centre_key=centre)
            contexts[layout] = IngestContext(centre, None, timedelta(minutes=10))
            if layout == "flat":
                flatten(engine)
            log(f"{layout}: loading {args.events:,} events")
            t0 = time.perf_counter()
            took = load(engine, args.events, args.devices, args.sites, now)
            took["total"] = time.perf_counter() - t0
            log(f"{layout}: loaded in {took['total']:.0f} s")
            with engine.connect() as conn:
                size = conn.execute(text(
                    "SELECT pg_total_relation_size('events') + coalesce((SELECT"
                    " sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
                    " WHERE inhparent = 'events'::regclass), 0)")).scalar_one()
                keys = conn.execute(text(
                    "SELECT pg_total_relation_size('event_keys')")).scalar_one()
                parts = conn.execute(text(
                    "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
                ).scalar_one()
                rollups = conn.execute(text("SELECT count(*) FROM rollups")).scalar_one()
            results[layout] = {"load": took, "size": size, "keys": keys, "parts": parts,
                               "rollups": rollups}
            batches[layout] = prepare(fakes, args.batches, args.batch_size)
        # The layouts in turn, batch by batch and request by request, so that the load of the
        # (shared) machine falls on both alike.
        log("ingest")
        times: dict[str, list[float]] = {layout: [] for layout in args.layouts}
        for b in range(args.batches):
            for layout in args.layouts:
                times[layout].append(store(engines[layout], contexts[layout],
                                           batches[layout][b]))
        for layout in args.layouts:
            results[layout]["ingest"] = summary(times[layout], args.batches * args.batch_size)
        log("reads")
        queries = {layout: reads(engines[layout], args.sites, now) for layout in args.layouts}
        sessions = {layout: Session(engines[layout]) for layout in args.layouts}
        for layout in args.layouts:
            results[layout]["reads"] = {}
        for name in queries[args.layouts[0]]:
            samples: dict[str, list[float]] = {layout: [] for layout in args.layouts}
            for layout in args.layouts:
                queries[layout][name](sessions[layout])  # warm
            for _ in range(args.requests):
                for layout in args.layouts:
                    t0 = time.perf_counter()
                    queries[layout][name](sessions[layout])
                    samples[layout].append(time.perf_counter() - t0)
            for layout in args.layouts:
                sessions[layout].rollback()
                results[layout]["reads"][name] = (statistics.median(samples[layout]) * 1000,
                                                  pct(samples[layout], 0.99) * 1000)
        for session in sessions.values():
            session.close()
        for layout in args.layouts:
            log(f"{layout}: purge")
            results[layout]["purge"] = purges(engines[layout], datetime.now(UTC))
            engines[layout].dispose()
    finally:
        stop_postgres(server)
    report(args, results)
    return 0


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    layouts = list(results)
    print(f"{args.events:,} events, {args.devices:,} devices, {args.sites} sites, 13 months; "
          f"ingest {args.batches} batches × {args.batch_size}")
    print()
    print("| | " + " | ".join(layouts) + " |")
    print("|---|" + "---|" * len(layouts))

    def row(name: str, cell: Any) -> None:
        print(f"| {name} | " + " | ".join(cell(results[k]) for k in layouts) + " |")

    row("month partitions (+ default)", lambda r: str(r["parts"]))
    row("events size (table + indexes)", lambda r: f"{r['size'] / 2**30:.2f} GiB")
    row("event_keys size", lambda r: f"{r['keys'] / 2**30:.2f} GiB")
    row("rollup rows", lambda r: f"{r['rollups']:,}")
    for step in results[layouts[0]]["load"]:
        row(f"load: {step} (s)", lambda r, s=step: f"{r['load'][s]:.0f}")
    row("ingest per batch p50 / p99 (ms)",
        lambda r: f"{r['ingest']['p50 ms']:.1f} / {r['ingest']['p99 ms']:.1f}")
    row("ingest events/s", lambda r: f"{r['ingest']['events/s']:,.0f}")
    for name in results[layouts[0]]["reads"]:
        row(f"{name} p50 / p99 (ms)",
            lambda r, n=name: f"{r['reads'][n][0]:.2f} / {r['reads'][n][1]:.2f}")
    for name in results[layouts[0]]["purge"]:
        row(name, lambda r, n=name: f"{r['purge'][n]:,.2f}" if r["purge"][n] % 1
            else f"{r['purge'][n]:,.0f}")


if __name__ == "__main__":
    raise SystemExit(main())

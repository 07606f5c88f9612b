"""Dashboard and API count latency against history size (rollups, not events).

Run::

    .venv/bin/python bench/counts.py            # 100k, 1M and 10M events' worth
    .venv/bin/python bench/counts.py --sizes 100000 1000000 --requests 30

For each size a fresh SQLite database is seeded with the rollup rows a real history of that many
events would have (10 sites, 10 dimension combinations per site and hour, 5 events per rollup
row, hours going back from now: 100k ≈ 8 days, 1M ≈ 12 weeks, 10M ≈ 2.3 years; even the
smallest history covers the week the longest query reads, so every size answers the same
queries over the same number of rows, and only the history beyond them grows), plus the raw
event rows themselves for the sizes up to ``--raw-max`` (1M by default) to show that nothing
reads them. Each endpoint is then requested ``--requests`` times per size, the sizes in turn,
through Flask's test client as an admin; the table gives median and p95 in milliseconds, and
the number of SQL statements that touched the ``events`` table (must be 0). Target: latency
at 10M ≤ 1.5 × latency at 100k.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, event
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from central.db.bulk import insert_rows
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import (
    Base,
    Device,
    Event,
    Role,
    Rollup,
    Site,
    SiteKind,
    SiteOccupancy,
    Unit,
    UnitLevel,
    User,
)
from central.web import create_app
from central.web.security import hash_password, make_hasher
from central.web.timeutil import local_today

SITES = 10
COMBOS = [("entry", "chip", "25-44", "F", "046"), ("entry", "chip", "25-44", "M", "001"),
          ("entry", "card-qr", "15-24", "F", "079"), ("entry", "vneid-qr", "45-59", "M", "048"),
          ("entry", "manual", "", "", ""), ("exit", "chip", "25-44", "F", "046"),
          ("exit", "card-qr", "60+", "M", "031"), ("visit", "chip", "60+", "F", "046"),
          ("visit", "vneid-qr", "6-14", "M", "092"), ("manual:entry", "manual", "", "", "")]
PER_ROW = 5
PASSWORD = "benchmark password"


def seed(url: str, total_events: int, raw: bool) -> tuple[int, int]:
    """Seed units, sites, an admin, rollups worth ``total_events`` (and the events)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    maker = make_sessionmaker(engine)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with maker() as db:
        province = Unit(code="046", name="Thừa Thiên Huế", level=UnitLevel.PROVINCE)
        db.add(province)
        db.flush()
        for i in range(SITES):
            db.add(Site(id=f"site-{i:02d}", name=f"Điểm {i}", kind=SiteKind.HERITAGE
                        if i % 2 == 0 else SiteKind.HOSPITAL, unit_id=province.id,
                        capacity=5000))
            db.add(SiteOccupancy(site_id=f"site-{i:02d}", occupancy=100 + i, updated_at=now))
        db.flush()
        for i in range(SITES):
            db.add(Device(id=f"dev-{i:02d}", site_id=f"site-{i:02d}",
                          signing_public_key=b"\0" * 32, enrolled_at=now, revoked=False,
                          state="online", last_seq=0, contiguous_seq=0))
        db.add(User(username="admin", password_hash=hash_password(
            PASSWORD, make_hasher(1, 1024, 1)), role=Role.ADMIN, created_at=now,
            active=True, language="vi", failed_logins=0))
        db.commit()
    per_hour = SITES * len(COMBOS) * PER_ROW
    hours = max(total_events // per_hour, 1)
    rows = 0
    rollups, events = cast(Table, Rollup.__table__), cast(Table, Event.__table__)
    with Session(engine) as conn, conn.begin():
        batch: list[dict[str, Any]] = []
        for h in range(hours):
            hour = now - timedelta(hours=h)
            for s in range(SITES):
                for kind, method, age, sex, prov in COMBOS:
                    batch.append({"site_id": f"site-{s:02d}", "hour": hour, "kind": kind,
                                  "method": method, "age_band": age, "sex": sex,
                                  "birth_province": prov, "people": PER_ROW,
                                  "events": PER_ROW})
            if len(batch) >= 50_000:
                insert_rows(conn, rollups, batch)
                rows += len(batch)
                batch = []
        if batch:
            insert_rows(conn, rollups, batch)
            rows += len(batch)
    if raw:
        seqs = [0] * SITES
        with Session(engine) as conn, conn.begin():
            batch = []
            for h in range(hours):
                hour = now - timedelta(hours=h)
                for s in range(SITES):
                    for kind, method, age, sex, prov in COMBOS:
                        for k in range(PER_ROW):
                            seqs[s] += 1
                            batch.append({
                                "device_id": f"dev-{s:02d}", "event_id": str(uuid.uuid4()),
                                "seq": seqs[s], "site_id": f"site-{s:02d}",
                                "occurred_at": hour + timedelta(minutes=k),
                                "received_at": hour + timedelta(minutes=k),
                                "kind": kind.split(":")[0], "method": method,
                                "assurance": "manual" if method == "manual" else "qr",
                                "subject": None, "count": 1, "age_band": age or None,
                                "sex": sex or None, "birth_province": prov or None})
                if len(batch) >= 100_000:
                    insert_rows(conn, events, batch)
                    batch = []
            if batch:
                insert_rows(conn, events, batch)
    engine.dispose()
    return hours, rows


ENDPOINTS = {
    "dashboard /": "/",
    "API counts today by hour×method":
        "/api/v1/counts?period=custom&from={today}&to={today}&group_by=hour,method",
    "API occupancy": "/api/v1/occupancy",
    "API counts week by day": "/api/v1/counts?period=week&group_by=day",
}


class Target:
    """One seeded database behind its own app, logged in as the administrator."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.touched = 0

        @event.listens_for(self.engine, "before_cursor_execute")
        def _spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if " events" in statement.lower().replace('"', " "):
                self.touched += 1

        app = create_app({"SECRET_KEY": "bench", "SESSIONMAKER": make_sessionmaker(self.engine),
                          "SESSION_COOKIE_SECURE": False, "WTF_CSRF_ENABLED": False,
                          "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024,
                          "ARGON2_PARALLELISM": 1})
        self.client = app.test_client()
        r = self.client.post("/login", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 302, r.status_code

    def get_ms(self, path: str) -> float:
        t0 = time.perf_counter()
        resp = self.client.get(path)
        elapsed = (time.perf_counter() - t0) * 1000
        assert resp.status_code == 200, (path, resp.status_code)
        return elapsed


def measure(urls: dict[int, str], requests: int) -> dict[int, dict[str, tuple[float, float, int]]]:
    """Median and p95 (ms) per size and endpoint, and statements touching ``events``.

    The sizes are requested in turn (size A, B, C, A, B, C…), so a change in the machine's load
    during the run affects every size alike instead of whichever size was being measured.
    """
    targets = {size: Target(url) for size, url in urls.items()}
    today = local_today().isoformat()
    out: dict[int, dict[str, tuple[float, float, int]]] = {size: {} for size in urls}
    for name, template in ENDPOINTS.items():
        path = template.format(today=today)
        samples: dict[int, list[float]] = {size: [] for size in urls}
        for target in targets.values():
            target.touched = 0
            target.get_ms(path)  # warm-up
        for _ in range(requests):
            for size, target in targets.items():
                samples[size].append(target.get_ms(path))
        for size, values in samples.items():
            values.sort()
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            out[size][name] = (statistics.median(values), p95, targets[size].touched)
    for target in targets.values():
        target.engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--raw-max", type=int, default=1_000_000,
                        help="also insert the raw events up to this size")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite",
                        help="postgresql: a throw-away cluster (tests/integration/pg_fixtures)")
    args = parser.parse_args()
    info: dict[int, tuple[int, int, float]] = {}
    pg = None
    if args.db == "postgresql":
        from tests.integration.pg_fixtures import start_postgres  # noqa: PLC0415
        pg = start_postgres()
    try:
        return run(args, info, pg)
    finally:
        if pg is not None:
            from tests.integration.pg_fixtures import stop_postgres  # noqa: PLC0415
            stop_postgres(pg)


def run(args: argparse.Namespace, info: dict[int, tuple[int, int, float]], pg: Any) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        urls = {}
        for size in args.sizes:
            if pg is not None:
                from tests.integration.pg_fixtures import fresh_database  # noqa: PLC0415
                url = urls[size] = fresh_database(pg)
            else:
                url = urls[size] = f"sqlite:///{Path(tmp) / f'bench-{size}.sqlite3'}"
            t0 = time.perf_counter()
            hours, rows = seed(url, size, raw=size <= args.raw_max)
            info[size] = (hours, rows, time.perf_counter() - t0)
            print(f"seeded {size:,} events: {rows:,} rollup rows over {hours:,} h "
                  f"(raw events {'yes' if size <= args.raw_max else 'no'}) "
                  f"in {info[size][2]:.0f} s", file=sys.stderr)
        results = measure(urls, args.requests)
    sizes = args.sizes
    print("| endpoint | " + " | ".join(f"{s:,} events: median / p95 ms" for s in sizes)
          + " | largest / smallest (median) | queries on `events` |")
    print("|---|" + "---|" * len(sizes) + "---|---|")
    for name in results[sizes[0]]:
        cells = [f"{results[s][name][0]:.2f} / {results[s][name][1]:.2f}" for s in sizes]
        ratio = results[sizes[-1]][name][0] / results[sizes[0]][name][0]
        touched = sum(results[s][name][2] for s in sizes)
        print(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f}× | {touched} |")
    print()
    print("| size | rollup rows | hours of history | seed time (s) |")
    print("|---|---|---|---|")
    for s in sizes:
        hours, rows, secs = info[s]
        print(f"| {s:,} | {rows:,} | {hours:,} | {secs:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

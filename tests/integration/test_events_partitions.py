"""Events partitioned by month on a real PostgreSQL (central.db.partitions, migration 0007):
the partitions made ahead, events of several months stored through the worker's own path,
duplicates and replays refused across months (the event_keys ledger), an event of a month with
no partition kept (the DEFAULT partition) and moved into its month, the purge dropping whole
months (pg_inherits) with the rollups unchanged; and the migration of a 0006 database holding
events, in place, on both databases."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from central.db.models import Device, Event, EventKey, Rollup
from central.db.partitions import add_months, is_partitioned, month, month_start, partitions
from central.ingest.store import BatchReport, IngestContext, process
from central.ingest.validate import Incoming
from central.ingest.worker import IngestWorker
from central.migrations import alembic_config, current, upgrade
from central.purge import purge
from central.settings import CentralSettings, Retention
from tests.integration.pg_fixtures import (  # noqa: F401
    VN,
    FakeDevice,
    PgServer,
    db_url,
    fresh_database,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import wire_bytes

GATE = "gate-ngo-mon-01"
GATE2 = "gate-ngo-mon-02"


class Centre:
    """A migrated PostgreSQL collector and an ingest worker on it (not connected to a broker:
    batches go through ``IngestWorker.store``, the path a received batch takes)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = migrated_engine(url)
        self.centre = X25519PrivateKey.generate()
        self.devices = seed(self.engine, centre_key=self.centre)
        self.worker = IngestWorker(CentralSettings(database_url=url), self.engine,
                                   centre_key=self.centre, data_key=bytes(range(32)))

    def store(self, *events: tuple[str, dict[str, Any]]) -> list[str]:
        now = datetime.now(UTC)
        batch = [Incoming(f"checkin/v1/{device}/events", wire_bytes(body), received_at=now)
                 for device, body in events]
        return results(self.worker.store(batch))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def where(self) -> dict[int, str]:
        """seq → the partition holding the event (``tableoid``) for GATE."""
        with self.engine.connect() as conn:
            return {int(seq): str(part) for seq, part in conn.execute(text(
                "SELECT seq, tableoid::regclass::text FROM events WHERE device_id = :d"),
                {"d": GATE})}

    def attached(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass")).scalars())

    def people(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(func.coalesce(func.sum(Rollup.people), 0))) or 0)


def results(report: BatchReport) -> list[str]:
    return [o.rejection.reason.value if o.rejection else o.result for o in report.outcomes]


@pytest.fixture
def pg(postgres_server: PgServer) -> Any:  # noqa: F811
    centre = Centre(fresh_database(postgres_server))
    yield centre
    centre.engine.dispose()


def months_ago(n: int, day: int = 15) -> datetime:
    """Noon (UTC+07:00) on ``day`` of the month ``n`` months before this one (at the latest a
    minute ago: never in the future)."""
    now = datetime.now(UTC)
    start = add_months(month_start(now), -n)
    return min(start.replace(day=day, hour=5), now - timedelta(minutes=1)).astimezone(VN)


def test_a_fresh_database_has_this_month_and_three_ahead_then_the_worker_adds_the_horizon(
        pg: Centre) -> None:
    now = datetime.now(UTC)
    this = month(now)
    with pg.engine.connect() as conn:
        assert is_partitioned(conn)
        assert [p.name for p in partitions(conn)] == [
            month(add_months(this.start, i)).name for i in range(4)]
    assert "events_default" in pg.attached()
    created = pg.worker.maintain_partitions(now)
    horizon = month(now - CentralSettings().retention.events)
    assert created[0] == horizon.name and this.name not in created
    with pg.engine.connect() as conn:
        names = [p.name for p in partitions(conn)]
    assert names[0] == horizon.name and names[-1] == month(add_months(this.start, 3)).name
    assert len(names) == len(set(names)) and pg.worker.maintain_partitions(now) == []
    # The dedupe ledger is one plain table.
    assert pg.scalar("SELECT relkind FROM pg_class WHERE relname = 'event_keys'") == "r"


def test_events_of_several_months_land_in_their_partitions_and_copies_are_refused_across_months(
        pg: Centre) -> None:
    pg.worker.maintain_partitions()
    gate = pg.devices[GATE]
    events = [gate.event(occurred_at=months_ago(n)) for n in (5, 3, 1, 0)]
    assert pg.store(*((GATE, e) for e in events)) == ["stored"] * 4
    where = pg.where()
    assert [where[e["seq"]] for e in events] == [
        month(months_ago(n)).name for n in (5, 3, 1, 0)]
    # Above the contiguous prefix (a gap: seq 10), so only the keys can refuse the copies.
    ten = gate.event(seq=10, occurred_at=months_ago(4))
    assert pg.store((GATE, ten)) == ["stored"]
    before = pg.scalar("SELECT count(*) FROM events")
    assert pg.store((GATE, ten), (GATE, events[0])) == ["duplicate", "duplicate"]
    other_month_same_seq = gate.event(seq=10, occurred_at=months_ago(1))
    same_id_other_month = gate.event(seq=11, occurred_at=months_ago(2),
                                     event_id=uuid.UUID(ten["event_id"]))
    same_id_same_seq_other_time = gate.event(seq=10, occurred_at=months_ago(0, day=2),
                                             event_id=uuid.UUID(ten["event_id"]))
    assert pg.store((GATE, other_month_same_seq)) == ["replay"]
    assert pg.store((GATE, same_id_other_month)) == ["replay"]
    assert pg.store((GATE, same_id_same_seq_other_time)) == ["replay"]
    # Below the prefix: a copy of seq 2 dated in another month.
    assert pg.store((GATE, gate.event(seq=2, occurred_at=months_ago(6)))) == ["replay"]
    assert pg.scalar("SELECT count(*) FROM events") == before
    assert pg.scalar("SELECT count(*) FROM event_keys") == before
    assert pg.scalar("SELECT count(*) FROM events WHERE device_id = :d AND seq = 10",
                     d=GATE) == 1
    assert pg.people() == 5  # counted once each


def test_two_workers_storing_one_seq_in_two_months_at_once_store_it_once(pg: Centre) -> None:
    """The second transaction waits on the first one's key in ``event_keys`` (a lock, seen in
    pg_locks), and once the first commits its copy of the seq is refused: the partitions,
    each with its own index, could not have seen each other."""
    pg.worker.maintain_partitions()
    gate = pg.devices[GATE]
    first = gate.event(seq=5, occurred_at=months_ago(3))
    second = gate.event(seq=5, occurred_at=months_ago(1))
    ctx = pg.worker.ctx
    now = datetime.now(UTC)
    outcome: dict[str, list[str]] = {}

    def other() -> None:
        with Session(pg.engine) as session, session.begin():
            outcome["second"] = results(process(session, [Incoming(
                f"checkin/v1/{GATE}/events", wire_bytes(second), received_at=now)], ctx))

    with Session(pg.engine) as session:
        session.begin()
        assert results(process(session, [Incoming(
            f"checkin/v1/{GATE}/events", wire_bytes(first), received_at=now)], ctx)) == \
            ["stored"]
        thread = threading.Thread(target=other)
        thread.start()
        deadline = time.monotonic() + 30
        while not pg.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            assert time.monotonic() < deadline, "the second worker never waited"
            time.sleep(0.05)
        session.commit()
    thread.join(30)
    assert outcome["second"] == ["replay"]
    assert pg.where() == {5: month(months_ago(3)).name}


def test_an_event_of_a_month_without_partition_is_kept_and_moved_into_its_month(
        pg: Centre) -> None:
    """Only this month and three ahead exist (a fresh migration, the worker not started): an
    event of two months ago goes to the DEFAULT partition; the maintenance makes its month and
    moves it there; its copies are still refused."""
    gate = pg.devices[GATE]
    old = gate.event(occurred_at=months_ago(2))
    recent = gate.event(occurred_at=months_ago(0, day=1))
    assert pg.store((GATE, old), (GATE, recent)) == ["stored", "stored"]
    assert pg.where()[old["seq"]] == "events_default"
    created = pg.worker.maintain_partitions()
    assert month(months_ago(2)).name in created
    assert pg.where()[old["seq"]] == month(months_ago(2)).name
    assert pg.scalar("SELECT count(*) FROM events_default") == 0
    assert pg.store((GATE, old)) == ["duplicate"]
    assert pg.store((GATE, gate.event(seq=old["seq"], occurred_at=months_ago(1)))) == ["replay"]
    assert pg.scalar("SELECT count(*) FROM events") == 2


def test_purge_drops_whole_months_and_deletes_rows_only_in_the_boundary_month(
        pg: Centre) -> None:
    pg.worker.maintain_partitions()
    gate, gate2 = pg.devices[GATE], pg.devices[GATE2]
    sent = []
    for n in (7, 6, 5, 4, 3, 0):
        for day in (3, 25):
            sent.append((GATE, gate.event(occurred_at=months_ago(n, day))))
            sent.append((GATE2, gate2.event(occurred_at=months_ago(n, day))))
    assert pg.store(*sent) == ["stored"] * len(sent)
    people, total = pg.people(), pg.scalar("SELECT count(*) FROM events")
    now = datetime.now(UTC)
    horizon = months_ago(4, 15).astimezone(UTC)  # mid-month: 4 months ago is the boundary
    retention = Retention(events=now - horizon)
    with Session(pg.engine) as session, session.begin():
        report = purge(session, now, retention)
    gone = {month(months_ago(n)).name for n in (7, 6, 5)}
    assert set(report.partitions_dropped) >= gone
    assert not gone & pg.attached()
    assert not gone & set(pg.engine.connect().execute(text(
        "SELECT relname FROM pg_class WHERE relkind = 'r'")).scalars())
    boundary = month(horizon)
    assert boundary.name in pg.attached()
    # 4 months ago: the 3rd's events deleted, the 25th's kept.
    assert pg.scalar(f"SELECT count(*) FROM {boundary.name}") == 2
    assert report.events == 3 * 4 + 2 == total - pg.scalar("SELECT count(*) FROM events")
    assert pg.scalar("SELECT count(*) FROM event_keys") == pg.scalar(
        "SELECT count(*) FROM events")
    assert pg.scalar("SELECT min(occurred_at) FROM events") >= horizon
    assert pg.people() == people  # the counts stay
    # A copy of a purged event is still refused (the seq bookkeeping), and stores nothing.
    assert pg.store(sent[0]) == ["replay"]
    assert pg.store((GATE, gate.event(seq=1, occurred_at=months_ago(0, 1)))) == ["replay"]


# -- migration 0006 → 0007 in place, on both databases ----------------------------------------


def _raw_row(body: dict[str, Any]) -> dict[str, Any]:
    demo = body["demographics"]
    return {"device_id": body["device_id"], "event_id": body["event_id"], "seq": body["seq"],
            "site_id": body["site_id"], "occurred_at": datetime.fromisoformat(
                body["occurred_at"]).astimezone(UTC),
            "received_at": datetime.now(UTC), "kind": body["kind"], "method": body["method"],
            "assurance": body["assurance"], "subject": body["subject"], "count": body["count"],
            "age_band": demo["age_band"], "sex": demo["sex"],
            "birth_province": demo["birth_province"], "reason": body["reason"],
            "details": json.dumps(body["details"]), "sig": body["sig"]}


def test_a_0006_database_with_events_is_migrated_in_place(db_url: str) -> None:  # noqa: F811
    engine = migrated_engine_at(db_url, "0006")
    centre = X25519PrivateKey.generate()
    devices = seed(engine, centre_key=centre)
    gate: FakeDevice = devices[GATE]
    bodies = [gate.event(occurred_at=months_ago(n, day)) for n in range(12, -1, -1)
              for day in (2, 20)]
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO events (device_id, event_id, seq, site_id, occurred_at, received_at, "
            "kind, method, assurance, subject, count, age_band, sex, birth_province, reason, "
            "details, sig) VALUES (:device_id, :event_id, :seq, :site_id, :occurred_at, "
            ":received_at, :kind, :method, :assurance, :subject, :count, :age_band, :sex, "
            ":birth_province, :reason, :details, :sig)"), [_raw_row(b) for b in bodies])
        conn.execute(text("UPDATE devices SET last_seq = :n, contiguous_seq = :n "
                          "WHERE id = :d"), {"n": len(bodies), "d": GATE})
        before = conn.execute(text(
            "SELECT device_id, event_id, seq, occurred_at, sig FROM events "
            "ORDER BY seq")).all()
    upgrade(engine)
    assert current(engine) == "0007"
    with engine.connect() as conn:
        after = conn.execute(text(
            "SELECT device_id, event_id, seq, occurred_at, sig FROM events "
            "ORDER BY seq")).all()
        keys = conn.execute(text("SELECT count(*) FROM event_keys")).scalar()
        if engine.dialect.name == "postgresql":
            assert is_partitioned(conn)
            spread: dict[str, int] = dict(conn.execute(text(
                "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")).all())
            assert spread == {month(months_ago(n)).name: 2 for n in range(13)}
    assert after == before and keys == len(before)
    ctx = IngestContext(centre, None, timedelta(minutes=10))
    now = datetime.now(UTC)

    def send(*items: dict[str, Any]) -> list[str]:
        batch = [Incoming(f"checkin/v1/{GATE}/events", wire_bytes(b), received_at=now)
                 for b in items]
        with Session(engine) as session, session.begin():
            return results(process(session, batch, ctx, now=now))

    assert send(bodies[3], bodies[-1]) == ["duplicate", "duplicate"]
    assert send(gate.event(seq=5, occurred_at=months_ago(0, 1))) == ["replay"]
    assert send(gate.event()) == ["stored"]
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Event)) == len(before) + 1
        assert s.scalar(select(func.count()).select_from(EventKey)) == len(before) + 1
        assert s.get(Device, GATE).contiguous_seq == len(before) + 1  # type: ignore[union-attr]
    # Down to 0006 and up again: the same rows.
    command.downgrade(alembic_config(engine), "0006")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == len(before) + 1
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM event_keys")).scalar() == \
            len(before) + 1
    engine.dispose()


def migrated_engine_at(url: str, revision: str) -> Engine:
    from central.db.engine import make_engine

    engine = make_engine(url)
    upgrade(engine, revision)
    return engine

"""Integrity rules at ingest on SQLite AND PostgreSQL (docs/protocol.md §4.10): values the
schemas allow fit the columns, impossible times and huge integers are rejections naming the
device, a stay belongs to the site and device that opened it, an event's kind fits its site,
times are bounded both ways, rejection rows are rate-limited per device, and a message that
makes its batch fail is dead-lettered without blocking the others."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from central.at_rest import decrypt_personal
from central.db.models import Device, Event, IngestRejection, Stay
from central.ingest.store import BatchReport, IngestContext, RejectionLimiter, process
from central.ingest.validate import Incoming
from central.ingest.worker import IngestWorker
from central.settings import CentralSettings
from tests.integration.pg_fixtures import (  # noqa: F401
    PERSONAL,
    VN,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import sign_event, wire_bytes

GATE, DESK, DESK2, OTHER_DESK, WARD = ("gate-ngo-mon-01", "ks-song-huong-le-tan",
                                       "ks-song-huong-tang-2", "ks-khac-le-tan", "bv-hue-khoa-1")
SITES = {"hue-dai-noi": "heritage", "ks-song-huong": "accommodation",
         "ks-khac": "accommodation", "bv-hue": "hospital"}
DEVICES = {GATE: "hue-dai-noi", DESK: "ks-song-huong", DESK2: "ks-song-huong",
           OTHER_DESK: "ks-khac", WARD: "bv-hue"}


class Harness:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = migrated_engine(url)
        self.centre = X25519PrivateKey.generate()
        self.data_key = bytes(range(32))
        self.devices = seed(self.engine, SITES, DEVICES, centre_key=self.centre)
        self.ctx = IngestContext(self.centre, self.data_key, timedelta(minutes=10),
                                 max_age=timedelta(days=400))

    def send(self, *items: tuple[str, Any], now: datetime | None = None,
             ctx: IngestContext | None = None) -> BatchReport:
        at = now or datetime.now(UTC)
        batch = [Incoming(topic, body if isinstance(body, bytes) else wire_bytes(body),
                          received_at=at) for topic, body in items]
        with Session(self.engine) as session, session.begin():
            return process(session, batch, ctx or self.ctx, now=at)

    def ev(self, device: str, kind: str = "entry", **kw: Any) -> tuple[str, dict[str, Any]]:
        return (f"checkin/v1/{device}/events", self.devices[device].event(kind, **kw))

    def resigned(self, device: str, event: dict[str, Any], **changes: Any) -> dict[str, Any]:
        body = {k: v for k, v in event.items() if k != "sig"} | changes
        return sign_event(body, self.devices[device].key)

    def status(self, device: str, **changes: Any) -> tuple[str, dict[str, Any]]:
        body = {"v": 1, "state": "online", "device_id": device,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "version": "0.1.0", "outbox_depth": 0, "oldest_undelivered_at": None,
                "readers": {}, "scanners": {}} | changes
        return (f"checkin/v1/{device}/status", sign_event(body, self.devices[device].key))

    def session(self) -> Session:
        return Session(self.engine)

    def count(self, model: Any) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def h(db_url: str) -> Any:  # noqa: F811
    harness = Harness(db_url)
    yield harness
    harness.engine.dispose()


def results(report: BatchReport) -> list[str]:
    return [o.rejection.reason.value if o.rejection else o.result for o in report.outcomes]


def test_impossible_times_and_huge_integers_are_rejections_naming_the_device(
        h: Harness) -> None:
    topic = f"checkin/v1/{GATE}/events"
    base = h.devices[GATE].event()
    bad_times = ["2026-02-31T10:00:00+07:00", "0000-01-01T00:00:00Z",
                 "0001-01-01T00:00:00+23:00", "9999-12-31T23:59:59-23:00"]
    items: list[tuple[str, Any]] = [
        (topic, h.resigned(GATE, base, occurred_at=t, seq=base["seq"] + i + 1))
        for i, t in enumerate(bad_times)]
    huge = wire_bytes(h.resigned(GATE, base, seq=base["seq"] + 10))
    huge = re.sub(rb'"seq":\d+', b'"seq":' + b"9" * 5001, huge)
    items.append((topic, huge))
    stay = h.devices[DESK].event("stay.start")
    items.append((f"checkin/v1/{DESK}/events", h.resigned(
        DESK, stay, details=dict(stay["details"], expected_departure="2026-02-31"))))
    items.append(h.status(GATE, outbox_depth=2**70))
    items.append(h.status(GATE, at="9999-12-31T23:59:59-23:00"))
    r = h.send(*items)
    assert results(r) == ["schema"] * 4 + ["malformed-json", "schema", "schema", "schema"]
    devices = [o.rejection.device_id for o in r.outcomes if o.rejection]
    assert devices == [GATE] * 5 + [DESK, GATE, GATE]
    with h.session() as s:
        rows = s.execute(select(IngestRejection.reason, IngestRejection.device_id,
                                IngestRejection.detail)).all()
    assert len(rows) == 8 and all(d is not None for _r, d, _x in rows)
    assert not any("internal-error" in r or "Error" in (x or "") for r, _d, x in rows)
    assert h.count(Event) == 0


def test_every_value_the_status_schema_allows_is_stored(h: Harness) -> None:
    """The two poison statuses of the audit (a 36-character version, a depth ≥ 2^31) are now
    either stored (the version fits the widened column) or refused by the schema."""
    version = "0.1.0+build.20261205.g0123456789abcdef0"[:40]
    r = h.send(h.status(GATE, version=version, outbox_depth=2**31 - 1,
                        uptime_s=2**53 - 1, outbox_bytes=2**53 - 1, last_seq=2**53 - 1))
    assert results(r) == ["status"]
    assert results(h.send(h.status(GATE, outbox_depth=2**31))) == ["schema"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.version, dev.outbox_depth) == (version, 2**31 - 1)
    # Free text that reaches JSON columns may hold any character, NUL included.
    assert results(h.send(h.status(GATE, readers={"\x00pcsc:\x7f": {
        "state": "error", "detail": "\x00" * 200}}))) == ["status"]
    assert results(h.send(h.ev(WARD, "visit", details={
        "insurance": "valid", "department": "\x00\x01 Khoa Nội"}))) == ["stored"]


def _stay_details(stay_id: str, room: str = "204") -> dict[str, Any]:
    return {"stay_id": stay_id, "ward_or_room": room, "expected_departure": "2026-12-10",
            "reason_code": "tourism"}


def test_a_stay_belongs_to_the_site_and_device_that_opened_it(h: Harness) -> None:
    stay_id = str(uuid.uuid4())
    assert results(h.send(h.ev(DESK, "stay.start", details=_stay_details(stay_id)))) == \
        ["stored"]
    hijack = _stay_details(stay_id, "HIJACKED")
    r = h.send(h.ev(OTHER_DESK, "stay.start", details=hijack),
               h.ev(OTHER_DESK, "stay.end", details=hijack),
               h.ev(DESK2, "stay.end", details=hijack),
               h.ev(DESK2, "stay.start", details=hijack))
    assert results(r) == ["stay-owner-mismatch"] * 4
    details = [o.rejection.detail for o in r.outcomes if o.rejection]
    assert "another site" in details[0] and "another device" in details[2]
    with h.session() as s:
        stay = s.get(Stay, stay_id)
        assert stay is not None
        assert (stay.site_id, stay.device_id, stay.ward_or_room, stay.ended_at) == \
            ("ks-song-huong", DESK, "204", None)
        assert decrypt_personal(h.data_key, stay_id, bytes(stay.personal_sealed)) == PERSONAL
    assert h.count(Event) == 1  # the refused events are not stored (nor counted)
    assert results(h.send(h.ev(DESK, "stay.end", details=_stay_details(stay_id)))) == \
        ["stored"]
    # Within one batch: the first device to name a new stay owns it.
    other = str(uuid.uuid4())
    r = h.send(h.ev(OTHER_DESK, "stay.start", details=_stay_details(other, "9")),
               h.ev(DESK, "stay.end", details=_stay_details(other)))
    assert results(r) == ["stored", "stay-owner-mismatch"]
    with h.session() as s:
        stay = s.get(Stay, other)
        assert stay is not None and (stay.device_id, stay.ended_at) == (OTHER_DESK, None)


def test_an_event_kind_must_fit_its_site_kind(h: Harness) -> None:
    visit = {"insurance": "valid"}
    stay = _stay_details(str(uuid.uuid4()))
    refused = [h.ev(DESK, "entry"), h.ev(DESK, "visit", details=visit),
               h.ev(DESK, "manual", details={"counts_as": "entry"}),
               h.ev(GATE, "visit", details=visit), h.ev(GATE, "stay.start", details=stay),
               h.ev(WARD, "exit"), h.ev(WARD, "manual", details={"counts_as": "entry"})]
    r = h.send(*refused)
    assert results(r) == ["kind-not-for-site"] * len(refused)
    first = r.outcomes[0].rejection
    assert first is not None and "at a accommodation site" in first.detail
    accepted = [h.ev(GATE, "entry"), h.ev(GATE, "exit"),
                h.ev(GATE, "manual", details={"counts_as": "exit"}),
                h.ev(WARD, "visit", details=visit),
                h.ev(WARD, "stay.start", details=_stay_details(str(uuid.uuid4()))),
                h.ev(WARD, "manual", details={"counts_as": "visit"}),
                h.ev(DESK, "stay.start", details=_stay_details(str(uuid.uuid4())))]
    assert results(h.send(*accepted)) == ["stored"] * len(accepted)
    # A rejected presentation is checked by what was attempted, when it says.
    gate = h.devices[GATE]

    def rejected(details: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = {k: v for k, v in gate.event("entry").items() if k != "sig"} | {
            "kind": "rejected", "assurance": "none", "subject": None, "reason": "card-error",
            "demographics": {"age_band": None, "sex": None, "birth_province": None},
            "details": details}
        return (f"checkin/v1/{GATE}/events", sign_event(body, gate.key))

    r = h.send(rejected({"attempted": "exit"}), rejected({"attempted": "stay.end"}),
               rejected({}))
    assert results(r) == ["stored", "kind-not-for-site", "stored"]


def test_times_are_bounded_both_ways_and_a_far_status_hides_nothing(h: Harness) -> None:
    now = datetime.now(UTC)
    gate = h.devices[GATE]
    r = h.send(h.ev(GATE, occurred_at=datetime(1970, 1, 1, tzinfo=UTC)),
               h.ev(GATE, occurred_at=datetime(2001, 1, 1, tzinfo=VN)),
               h.ev(GATE, occurred_at=now - timedelta(days=401)),
               h.ev(GATE, occurred_at=now + timedelta(minutes=11)),
               h.ev(GATE, occurred_at=now - timedelta(days=399)),
               h.ev(GATE, occurred_at=now + timedelta(minutes=9)), now=now)
    assert results(r) == ["too-old", "too-old", "too-old", "clock-skew", "stored", "stored"]
    assert gate.seq == 6
    # Status: `at` far in the future is refused, so it cannot hide the heartbeats after it.
    r = h.send(h.status(GATE, at="9999-12-31T23:59:59Z", version="9.9.9"),
               h.status(GATE, at=(now - timedelta(days=500)).isoformat(), version="0.0.1"),
               now=now)
    assert results(r) == ["clock-skew", "too-old"]
    assert results(h.send(h.status(GATE, version="0.2.0"), now=now)) == ["status"]
    # A far `at` stored before the bound existed is no reference for ordering either.
    with h.session() as s, s.begin():
        dev = s.get(Device, GATE)
        assert dev is not None
        dev.health = dict(dev.health or {}, at="9999-12-31T23:59:59Z")
    later = now + timedelta(seconds=30)
    assert results(h.send(h.status(GATE, version="0.3.0", at=later.isoformat()),
                          now=later)) == ["status"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and dev.version == "0.3.0"
        assert dev.health is not None and dev.health["at"] == later.isoformat()


def test_a_flood_is_recorded_in_bounded_rows_and_every_valid_event_is_stored(
        h: Harness) -> None:
    """3,000 bad messages from one device: at most 20 rows one by one plus one summary row
    per interval, every rejection counted in the report; valid events interleaved with the
    flood, and another device's, are all stored."""
    limiter = RejectionLimiter(interval=timedelta(seconds=60), rows=20)
    ctx = IngestContext(h.centre, h.data_key, timedelta(minutes=10),
                        max_age=timedelta(days=400), limiter=limiter)
    now = datetime.now(UTC)
    topic = f"checkin/v1/{GATE}/events"
    junk = [b"{oops", b'{"v":1}', b"[]"]
    valid: list[str] = []
    rejected = recorded = 0
    for chunk in range(6):
        items: list[tuple[str, Any]] = []
        for i in range(500):
            items.append((topic, junk[i % 3]))
            if i % 50 == 0:
                t, body = h.ev(GATE if i % 100 else DESK, "entry" if i % 100 else "stay.start",
                               **({} if i % 100 else {"details": _stay_details(
                                   str(uuid.uuid4()))}))
                valid.append(body["event_id"])
                items.append((t, body))
        report = h.send(*items, now=now + timedelta(milliseconds=50 * chunk), ctx=ctx)
        rejected += sum(1 for o in report.outcomes if o.rejection)
        recorded += sum(1 for o in report.outcomes if o.rejection and o.recorded)
        assert report.suppressed == []
    assert (rejected, recorded) == (3000, 20)
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(IngestRejection)) == 20
        stored = set(s.scalars(select(Event.event_id)).all())
    assert stored == set(valid) and len(valid) == 60
    # The interval ends: one summary row for the device, then a fresh allowance.
    later = now + timedelta(seconds=61)
    report = h.send((topic, b"{oops"), now=later, ctx=ctx)
    assert [(x.device_id, x.total) for x in report.suppressed] == [(GATE, 2980)]
    assert report.outcomes[0].recorded
    with h.session() as s:
        row = s.execute(select(IngestRejection.device_id, IngestRejection.detail).where(
            IngestRejection.reason == "rate-limited")).one()
    detail = row[1] or ""
    assert row[0] == GATE and "2980 further rejections" in detail
    assert "malformed-json × 1985" in detail and "schema × 995" in detail
    assert h.count(IngestRejection) == 22


def _poison_seq(h: Harness, seq: int) -> None:
    """A database that refuses one row: a CHECK constraint (PostgreSQL) or a trigger (SQLite);
    a stand-in for any value a column refuses that the schemas might still let through."""
    with h.engine.begin() as conn:
        if h.engine.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE events ADD CONSTRAINT ck_poison CHECK (seq <> {seq})"))
        else:
            conn.execute(text(f"CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.seq = "
                              f"{seq} BEGIN SELECT RAISE(ABORT, 'poison'); END"))


def test_a_message_that_fails_its_batch_is_dead_lettered_and_blocks_nothing(
        h: Harness) -> None:
    worker = IngestWorker(CentralSettings(database_url=h.url), h.engine,
                          centre_key=h.centre, data_key=h.data_key)
    _poison_seq(h, 3)
    now = datetime.now(UTC)
    events = [h.devices[GATE].event() for _ in range(5)]
    batch = [Incoming(f"checkin/v1/{GATE}/events", wire_bytes(e), received_at=now)
             for e in events]
    batch.append(Incoming(f"checkin/v1/{DESK}/events",
                          wire_bytes(h.devices[DESK].event("stay.start")), received_at=now))
    report = worker.store(batch)
    assert results(report) == ["stored", "stored", "dead-letter", "stored", "stored", "stored"]
    assert not worker.stopping.is_set()
    with h.session() as s:
        assert sorted(s.scalars(select(Event.seq).where(Event.device_id == GATE))) == \
            [1, 2, 4, 5]
        row = s.execute(select(IngestRejection.device_id, IngestRejection.detail)).one()
    detail = row[1] or ""
    assert row[0] == GATE and events[2]["event_id"] in detail and "seq 3" in detail
    # A redelivered copy is dead-lettered again, alone; the worker still runs.
    assert results(worker.store(batch[2:3])) == ["dead-letter"]
    assert h.count(IngestRejection) == 2 and not worker.stopping.is_set()


def test_an_unreachable_database_dead_letters_nothing(h: Harness, tmp_path: Any) -> None:
    """An outage is no message's fault: the batch fails as a whole (not acknowledged, the
    broker redelivers after the restart) and nothing is dead-lettered."""
    from sqlalchemy.exc import OperationalError

    from central.db.engine import make_engine

    gone = make_engine(f"sqlite:///{tmp_path / 'missing' / 'central.sqlite3'}")
    worker = IngestWorker(CentralSettings(), gone, centre_key=h.centre, data_key=h.data_key)
    event = h.devices[GATE].event()
    with pytest.raises(OperationalError):
        worker.store([Incoming(f"checkin/v1/{GATE}/events", wire_bytes(event))])
    gone.dispose()


def test_a_bug_on_one_message_is_dead_lettered_with_its_device(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only database refusals: any exception a message causes in the store (here an
    injected fault in the stay upsert) isolates it, names its device, and keeps the rest."""
    from central.ingest import store

    def broken(*_args: Any) -> None:
        raise RuntimeError("injected")

    monkeypatch.setattr(store, "_store_stay", broken)
    worker = IngestWorker(CentralSettings(database_url=h.url), h.engine,
                          centre_key=h.centre, data_key=h.data_key)
    now = datetime.now(UTC)
    batch = [Incoming(t, wire_bytes(b), received_at=now) for t, b in (
        h.ev(GATE), h.ev(DESK, "stay.start"), h.ev(GATE))]
    assert results(worker.store(batch)) == ["stored", "dead-letter", "stored"]
    with h.session() as s:
        row = s.execute(select(IngestRejection.device_id, IngestRejection.detail)).one()
    assert row[0] == DESK and (row[1] or "").startswith("RuntimeError")
    assert h.count(Event) == 2 and h.count(Stay) == 0


def test_an_event_refused_for_clock_skew_is_stored_when_it_comes_again(h: Harness) -> None:
    """``clock-skew`` may pass later (docs/protocol.md §4.11.1): the device keeps the event and
    sends it again. Its seq closed the gap meanwhile (the prefix passed it, the alarm stays
    quiet), yet the resend is stored, not refused as ``replay`` (found by the chaos suite: a
    gate whose clock ran ahead lost those events for good)."""
    now = datetime.now(UTC)
    ahead = h.ev(GATE, occurred_at=now + timedelta(minutes=11))
    r = h.send(h.ev(GATE), ahead, h.ev(GATE), now=now)
    assert results(r) == ["stored", "clock-skew", "stored"]
    with h.session() as s:
        assert s.get(Device, GATE).contiguous_seq == 3  # type: ignore[union-attr]
    later = now + timedelta(minutes=2)  # the centre's clock has caught up
    assert results(h.send(ahead, now=later)) == ["stored"]
    assert results(h.send(ahead, now=later)) == ["duplicate"]
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)
                        .where(Event.device_id == GATE)) == 3
        assert s.scalar(text("SELECT count(*) FROM refused_seqs")) == 0
    # A final refusal stays final and its seq is never revived.
    old = h.ev(GATE, occurred_at=now - timedelta(days=401))
    assert results(h.send(old, now=now)) == ["too-old"]
    assert results(h.send(old, now=later)) == ["too-old"]
    with h.session() as s:
        assert s.scalar(text("SELECT count(*) FROM refused_seqs")) == 1
        assert s.scalar(select(func.count()).select_from(Event)
                        .where(Event.device_id == GATE)) == 3

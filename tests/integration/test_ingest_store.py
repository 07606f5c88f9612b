"""The ingest store on SQLite AND PostgreSQL: validation reasons, idempotency, seq gaps, stays,
counting and purge, with events built and signed by the agent's own code (edge_agent)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from central.at_rest import decrypt_personal
from central.counting import close_out, occupancy, orphan_exits
from central.db.models import (
    Alarm,
    Device,
    Event,
    IngestRejection,
    LoginThrottle,
    Presence,
    Rollup,
    Stay,
)
from central.ingest.store import BatchReport, IngestContext, check_seq_gaps, process
from central.ingest.validate import Incoming
from central.purge import purge
from central.readside import counts
from central.settings import Retention
from tests.integration.pg_fixtures import (  # noqa: F401
    PERSONAL,
    VN,
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)
from wire.signing import wire_bytes

GATE = "gate-ngo-mon-01"
GATE2 = "gate-ngo-mon-02"
DESK = "ks-song-huong-le-tan"


class Harness:
    def __init__(self, url: str) -> None:
        self.engine: Engine = migrated_engine(url)
        self.centre = X25519PrivateKey.generate()
        self.data_key = bytes(range(32))
        self.devices = seed(self.engine, centre_key=self.centre)
        self.ctx = IngestContext(self.centre, self.data_key, timedelta(minutes=10))

    def send(self, *items: tuple[str, Any], now: datetime | None = None) -> BatchReport:
        batch = []
        for topic, body in items:
            payload = body if isinstance(body, bytes) else wire_bytes(body)
            batch.append(Incoming(topic, payload, received_at=now or datetime.now(UTC)))
        with Session(self.engine) as session, session.begin():
            return process(session, batch, self.ctx, now=now)

    def ev(self, device: str = GATE, **kw: Any) -> tuple[str, dict[str, Any]]:
        return (f"checkin/v1/{device}/events", self.devices[device].event(**kw))

    def session(self) -> Session:
        return Session(self.engine)


@pytest.fixture
def h(db_url: str) -> Any:  # noqa: F811
    harness = Harness(db_url)
    yield harness
    harness.engine.dispose()


def results(report: BatchReport) -> list[str]:
    return [o.rejection.reason.value if o.rejection else o.result for o in report.outcomes]


def test_valid_events_stored_once_and_duplicates_acknowledged(h: Harness) -> None:
    first = h.ev(subject="b" * 32)
    r = h.send(first, h.ev(), first)
    assert results(r) == ["stored", "stored", "duplicate"]
    assert results(h.send(first)) == ["duplicate"]
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 2
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.last_seq, dev.contiguous_seq) == (2, 2)
        assert s.scalar(select(func.sum(Rollup.events))) == 2
        assert occupancy(s, "hue-dai-noi").occupancy == 2


def test_each_bad_message_is_rejected_with_its_reason_and_counted(h: Harness) -> None:
    gate = h.devices[GATE]
    good = gate.event()
    tampered = dict(gate.event(), count=5)
    other_site = gate.event(site_id="ks-song-huong")
    future = gate.event(occurred_at=datetime.now(VN) + timedelta(minutes=30))
    schema_bad = dict(gate.event(), kind="dance")
    replay_seq = gate.event(seq=good["seq"])  # same seq, another event_id
    foreign = FakeDevice("gate-unknown", "hue-dai-noi", gate.key, gate.centre_public).event()
    mismatch = h.devices[GATE2].event()  # names gate 02, published on gate 01's topic
    stay = h.devices[DESK].event("stay.start")
    ct = stay["sealed"]["ct"]
    stay["sealed"] = dict(stay["sealed"], ct=ct[:8] + ("B" if ct[8] != "B" else "C") + ct[9:])
    from wire.signing import sign_event
    stay = sign_event({k: v for k, v in stay.items() if k != "sig"}, h.devices[DESK].key)
    t = f"checkin/v1/{GATE}/events"
    r = h.send((t, good), (t, b"{not json"), (t, schema_bad), (t, tampered), (t, other_site),
               (t, future), (t, replay_seq), ("checkin/v1/gate-unknown/events", foreign),
               (t, mismatch), (f"checkin/v1/{DESK}/events", stay),
               (t, b"{" + b" " * 17000 + b"}"), (t, json.dumps([1]).encode()))
    assert results(r) == ["stored", "malformed-json", "schema", "bad-signature",
                          "site-mismatch", "clock-skew", "replay", "unknown-device",
                          "topic-device-mismatch", "sealed-stay-unopenable", "oversize",
                          "malformed-json"]
    schema_detail = next(o.rejection.detail for o in r.outcomes
                         if o.rejection and o.rejection.reason == "schema")
    assert schema_detail.startswith("$.kind")
    with h.session() as s:
        reasons = sorted(s.scalars(select(IngestRejection.reason)).all())
        assert len(reasons) == 11 and reasons.count("malformed-json") == 2
        assert s.scalar(select(func.count()).select_from(Event)) == 1
        details = " ".join(s.scalars(select(IngestRejection.detail)).all())
        assert "079303001234" not in details and "Mai" not in details
    # Same event_id, other content (re-signed by the device key): replay, not a duplicate.
    again = sign_event({k: v for k, v in dict(good, count=2).items() if k != "sig"}, gate.key)
    assert results(h.send((t, again))) == ["replay"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None
        dev.revoked = True
        s.commit()
    assert results(h.send(h.ev())) == ["revoked-device"]


def test_redeliveries_replays_and_copies_within_a_batch(h: Harness) -> None:
    gate = h.devices[GATE]
    t = f"checkin/v1/{GATE}/events"
    e1, e2 = gate.event(), gate.event()
    assert results(h.send((t, e1), (t, e2))) == ["stored", "stored"]
    e3 = gate.event()
    same_seq = gate.event(seq=e1["seq"])  # below the prefix, seq stored under another id
    fresh_taken = gate.event(seq=e3["seq"])  # the same new seq twice in one batch
    from wire.signing import sign_event
    other = sign_event({k: v for k, v in dict(e2, count=3).items() if k != "sig"}, gate.key)
    r = h.send((t, e3), (t, e1), (t, same_seq), (t, fresh_taken), (t, other), (t, e3),
               (t, e2))
    assert results(r) == ["stored", "duplicate", "replay", "replay", "replay", "duplicate",
                          "duplicate"]
    details = [o.rejection.detail for o in r.outcomes if o.rejection]
    assert details[0] == f"seq {e1['seq']} already taken by another event_id"
    assert details[1] == f"seq {e3['seq']} already taken by another event_id"
    assert details[2] == f"event_id {e2['event_id']} stored with other content"
    # A copy within the batch shares the fate of the first: here both are replays.
    bad = gate.event(seq=e2["seq"])
    assert results(h.send((t, bad), (t, bad))) == ["replay", "replay"]
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 3
        assert s.scalar(select(func.sum(Rollup.events))) == 3
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.last_seq) == (3, 3)
        assert s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).first() is None


def test_seq_gap_raises_an_alarm_after_the_grace_period_cleared_when_filled(
        h: Harness) -> None:
    gate = h.devices[GATE]
    t = f"checkin/v1/{GATE}/events"
    e1, e2, e3, e4, e5, e6 = (gate.event() for _ in range(6))
    t0 = datetime.now(UTC)
    h.send((t, e1), (t, e4), now=t0)
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.last_seq) == (1, 4)
        assert dev.gap_since is not None
        # Within the grace period a gap is two workers committing out of order: no alarm.
        assert s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).first() is None
    h.send((t, e3), now=t0 + timedelta(seconds=30))
    with h.session() as s:
        assert s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).first() is None
    with h.session() as s, s.begin():  # the periodic job, once the gap is old enough
        assert check_seq_gaps(s, t0 + timedelta(seconds=59), h.ctx.seq_gap_grace) == []
        assert check_seq_gaps(s, t0 + timedelta(seconds=61), h.ctx.seq_gap_grace) == [GATE]
    with h.session() as s:
        alarm = s.scalars(select(Alarm).where(Alarm.kind == "seq-gap")).one()
        assert alarm.cleared_at is None and alarm.detail == {"missing_from": 2, "last_seq": 4}
    h.send((t, e6), now=t0 + timedelta(seconds=70))  # a later batch updates the open alarm
    with h.session() as s:
        assert s.scalars(select(Alarm)).one().detail == {"missing_from": 2, "last_seq": 6}
    h.send((t, e2), (t, e5), now=t0 + timedelta(seconds=80))
    with h.session() as s:
        assert s.scalars(select(Alarm)).one().cleared_at is not None
        dev = s.get(Device, GATE)
        assert dev is not None and dev.contiguous_seq == 6 and dev.gap_since is None
    # A gap filled within the grace period never raised anything.
    e7, e8, e9 = (gate.event() for _ in range(3))
    h.send((t, e7), (t, e9), now=t0 + timedelta(seconds=90))
    h.send((t, e8), now=t0 + timedelta(seconds=100))
    with h.session() as s:
        assert len(s.scalars(select(Alarm)).all()) == 1
        dev = s.get(Device, GATE)
        assert dev is not None and (dev.contiguous_seq, dev.gap_since) == (9, None)


def test_stay_sealed_data_is_stored_encrypted_and_decryptable(h: Harness) -> None:
    desk = h.devices[DESK]
    stay_id = str(uuid.uuid4())
    details = {"stay_id": stay_id, "ward_or_room": "204", "expected_departure": "2025-05-02",
               "reason_code": "tourism"}
    arrival = datetime(2025, 4, 30, 23, 20, tzinfo=VN)
    now = arrival.astimezone(UTC) + timedelta(minutes=1)
    start = desk.event("stay.start", occurred_at=arrival, details=details)
    assert results(h.send((f"checkin/v1/{DESK}/events", start), now=now)) == ["stored"]
    with h.session() as s:
        stay = s.get(Stay, stay_id)
        assert stay is not None
        blob = bytes(stay.personal_sealed)
        for secret in ("079303001234", "Nguyễn", "Mai", "2003-05-15"):
            assert secret.encode() not in blob
        assert decrypt_personal(h.data_key, stay_id, blob) == PERSONAL
        # Arrival after 23:00 → 08:00 next day local (docs/cccd.md §9).
        assert stay.deadline_at.replace(tzinfo=UTC) == datetime(2025, 5, 1, 1, 0, tzinfo=UTC)
        assert stay.ended_at is None
    end = desk.event("stay.end", occurred_at=arrival + timedelta(days=2), details=details)
    assert results(h.send((f"checkin/v1/{DESK}/events", end), now=now + timedelta(days=2))) \
        == ["stored"]
    with h.session() as s:
        stay = s.get(Stay, stay_id)
        assert stay is not None and stay.ended_at is not None
        # Nothing personal anywhere in the events table.
        rows = s.execute(select(Event.details, Event.subject)).all()
        assert "079303001234" not in repr(rows) and "Nguy" not in repr(rows)


def test_counting_rollups_pairing_orphans_close_out_and_late_events(h: Harness) -> None:
    base = datetime(2025, 4, 30, 9, 15, tzinfo=VN)
    now = base.astimezone(UTC) + timedelta(hours=1)
    alice, bob, carol = "a" * 32, "b" * 32, "c" * 32
    r = h.send(h.ev(occurred_at=base, subject=alice),
               h.ev(occurred_at=base, subject=bob, count=12),
               h.ev(kind="manual", occurred_at=base, count=2),
               h.ev(GATE2, kind="exit", occurred_at=base + timedelta(minutes=30), subject=alice),
               h.ev(GATE2, kind="exit", occurred_at=base + timedelta(minutes=31), subject=carol),
               now=now)
    assert results(r) == ["stored"] * 5
    with h.session() as s:
        assert occupancy(s, "hue-dai-noi").occupancy == 14  # 1 + 12 + 2 − alice; carol orphan
        assert orphan_exits(s, ["hue-dai-noi"], base - timedelta(hours=1), now) == 1
        rows = counts(s, ["hue-dai-noi"], base - timedelta(hours=2), now, group_by=["kind"])
        assert {r.key["kind"]: (r.people, r.events) for r in rows} == {
            "entry": (13, 2), "exit": (2, 2), "manual:entry": (2, 1)}
    # Carol's entry arrives late (her gate was offline): paired with the orphan exit, lands in
    # its own hour, and counts nobody in.
    late = base - timedelta(hours=3)
    h.send(h.ev(occurred_at=late, subject=carol), now=now)
    with h.session() as s:
        assert occupancy(s, "hue-dai-noi").occupancy == 14
        assert orphan_exits(s, ["hue-dai-noi"], base - timedelta(hours=5), now) == 0
        by_hour = counts(s, ["hue-dai-noi"], late - timedelta(hours=1), now,
                         group_by=["hour", "kind"])
        assert any(r.key["hour"] == late.astimezone(UTC).replace(minute=0) and
                   r.key["kind"] == "entry" and r.people == 1 for r in by_hour)
        by_day = counts(s, ["hue-dai-noi"], late - timedelta(hours=1), now, group_by=["day"])
        assert [(r.key["day"].isoformat(), r.people) for r in by_day] == [("2025-04-30", 18)]
    # The site closes at 17:30 local: bob's group and the two children are closed out.
    with h.session() as s, s.begin():
        report = close_out(s, datetime(2025, 4, 30, 18, 0, tzinfo=VN))
        assert [(c.site_id, c.people) for c in report] == [("hue-dai-noi", 14)]
    with h.session() as s:
        assert occupancy(s, "hue-dai-noi").occupancy == 0
        assert s.scalar(select(func.count()).select_from(Presence)
                        .where(Presence.closed_by == "close-time")) == 2
    # A later exit of bob's cannot take occupancy below zero: recorded as an orphan.
    h.send(h.ev(GATE2, kind="exit", subject=bob, count=12,
                occurred_at=datetime(2025, 4, 30, 18, 5, tzinfo=VN)), now=now)
    with h.session() as s:
        assert occupancy(s, "hue-dai-noi").occupancy == 0


def test_status_updates_device_and_offline_alarm(h: Harness) -> None:
    from wire.signing import sign_event

    now = datetime.now(UTC)
    status = {"v": 1, "state": "online", "device_id": GATE, "site_id": "hue-dai-noi",
              "at": now.isoformat(timespec="milliseconds"), "version": "0.1.0",
              "outbox_depth": 2, "oldest_undelivered_at": None, "readers": {"pcsc": "ok"},
              "scanners": {}, "heartbeat_s": 30, "last_seq": 4}
    topic = f"checkin/v1/{GATE}/status"
    signed = sign_event(status, h.devices[GATE].key)
    forged = sign_event(status, h.devices[GATE2].key)
    r = h.send((topic, signed), (topic, forged),
               (topic, {"v": 1, "device_id": GATE, "state": "offline",
                        "reason": "connection-lost", "version": "0.1.0"}))
    assert results(r) == ["status", "bad-signature", "status"]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and dev.state == "offline" and dev.outbox_depth == 2
        assert dev.health is not None and dev.health["readers"] == {"pcsc": "ok"}
        assert s.scalars(select(Alarm.kind).where(Alarm.cleared_at.is_(None))).all() == \
            ["offline"]
    later = dict(status, at=(now + timedelta(seconds=30)).isoformat())
    h.send((topic, sign_event(later, h.devices[GATE].key)))
    with h.session() as s:
        assert s.scalars(select(Alarm).where(Alarm.cleared_at.is_(None))).all() == []
    from central.ingest.worker import check_stale

    with h.session() as s, s.begin():
        assert check_stale(s, now + timedelta(minutes=5)) == [GATE]
    with h.session() as s:
        dev = s.get(Device, GATE)
        assert dev is not None and dev.state == "stale"


def test_purge_keeps_rollups_and_erases_stay_personal_data(h: Harness) -> None:
    old = datetime(2024, 1, 10, 9, 0, tzinfo=VN)
    h.send(h.ev(occurred_at=old), h.ev(DESK, kind="stay.start", occurred_at=old),
           now=old.astimezone(UTC) + timedelta(minutes=1))
    h.send(h.ev(), now=datetime.now(UTC))
    retention = Retention(events=timedelta(days=30), stays=timedelta(days=30),
                          audit=timedelta(days=30), rejections=timedelta(days=30))
    with h.session() as s, s.begin():
        s.add_all([LoginThrottle(key="ip:192.0.2.7", failures=3,
                                 window_start=datetime.now(UTC) - timedelta(days=2)),
                   LoginThrottle(key="ip:192.0.2.8", failures=1,
                                 window_start=datetime.now(UTC) - timedelta(minutes=5))])
    with h.session() as s, s.begin():
        report = purge(s, datetime.now(UTC), retention)
    assert (report.events, report.stays_erased, report.throttle) == (2, 1, 1)
    with h.session() as s:
        assert s.scalars(select(LoginThrottle.key)).all() == ["ip:192.0.2.8"]
    with h.session() as s:
        assert s.scalar(select(func.count()).select_from(Event)) == 1
        assert s.scalar(select(func.sum(Rollup.events))) == 3
        stay = s.scalars(select(Stay)).one()
        assert stay.personal_sealed == b"" and stay.personal_erased_at is not None
    # A redelivered purged event is not stored (and counted) again.
    gate = h.devices[GATE]
    assert results(h.send(("checkin/v1/gate-ngo-mon-01/events", gate.event(seq=1)))) == \
        ["replay"]

"""The collector's real ingest (PostgreSQL): a ``visit.insurance`` follow-up moves its visit's
insurance dimension from ``unknown`` to the answer exactly once, and training events are
stored marked and never counted — no rollup, no occupancy, no stay (so no notice)
(docs/protocol.md §4.12, §4.13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.models import Device, Event, Rollup, SiteOccupancy, Stay
from central.ingest.store import IngestContext, process
from central.ingest.validate import Incoming
from central.readside import refusals
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    build_event,
)
from edge_agent.outbox.builder import wire_bytes
from tests.integration.pg_fixtures import (  # noqa: F401
    _UUID7,
    VN,
    FakeDevice,
    db_url,
    migrated_engine,
    postgres_server,
    seed,
)

DESK, SITE = "desk-bv-hue-01", "bv-hue"
GATE, HERITAGE = "gate-ngo-mon-01", "hue-dai-noi"


def visit(device: FakeDevice, insurance: str, *, training: bool = False,
          kind: EventKind = EventKind.VISIT, of: str | None = None,
          seq: int | None = None) -> dict[str, Any]:
    if seq is None:
        device.seq += 1
        seq = device.seq
    details: dict[str, Any] = {"insurance": insurance}
    if of is not None:
        details["visit_event_id"] = of
    draft = EventDraft(kind, Method.CHIP, EventAssurance.CHIP_ANCHORED, datetime.now(VN),
                       "b" * 32, 1, Demographics("25-44", "M", "001"), None, details)
    return build_event(draft, device_id=device.device_id, site_id=device.site_id, seq=seq,
                       event_id=_UUID7(), signing_key=device.key,
                       centre_key=device.centre_public, training=training)


def ingest(engine: Any, ctx: IngestContext, device: str,
           events: list[dict[str, Any]]) -> list[str | None]:
    batch = [Incoming(f"checkin/v1/{device}/events", wire_bytes(e),
                      received_at=datetime.now(UTC)) for e in events]
    with Session(engine) as session, session.begin():
        report = process(session, batch, ctx, now=datetime.now(UTC))
    return [o.rejection.reason.value if o.rejection else None for o in report.outcomes]


def insurance_rollup(engine: Any) -> dict[str, tuple[int, int]]:
    with Session(engine) as session:
        rows = session.execute(select(Rollup.insurance, func.sum(Rollup.people),
                                      func.sum(Rollup.events))
                               .where(Rollup.site_id == SITE, Rollup.kind == "visit")
                               .group_by(Rollup.insurance)).all()
    return {ins: (int(p), int(e)) for ins, p, e in rows if int(e) != 0}


def test_follow_up_moves_unknown_to_the_answer_once(db_url: str) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    devices = seed(engine, sites={SITE: "hospital"}, devices={DESK: SITE}, centre_key=centre)
    desk = devices[DESK]
    ctx = IngestContext(centre, b"d" * 32, timedelta(minutes=10))
    first, second = visit(desk, "unknown"), visit(desk, "unknown")
    assert ingest(engine, ctx, DESK, [first, second, visit(desk, "valid")]) == [None] * 3
    assert insurance_rollup(engine) == {"unknown": (2, 2), "valid": (1, 1)}

    answer = visit(desk, "valid", kind=EventKind.VISIT_INSURANCE, of=first["event_id"])
    assert ingest(engine, ctx, DESK, [answer]) == [None]
    assert insurance_rollup(engine) == {"unknown": (1, 1), "valid": (2, 2)}
    # Redelivered, and a second follow-up of the same visit: nothing moves again.
    again = visit(desk, "invalid", kind=EventKind.VISIT_INSURANCE, of=first["event_id"])
    assert ingest(engine, ctx, DESK, [answer, again]) == [None, None]
    assert insurance_rollup(engine) == {"unknown": (1, 1), "valid": (2, 2)}
    # A follow-up of a visit that was not unknown moves nothing; the other unknown one moves.
    stray = visit(desk, "invalid", kind=EventKind.VISIT_INSURANCE,
                  of=ingest_id(engine, "valid"))
    late = visit(desk, "invalid", kind=EventKind.VISIT_INSURANCE, of=second["event_id"])
    assert ingest(engine, ctx, DESK, [stray, late]) == [None, None]
    assert insurance_rollup(engine) == {"valid": (2, 2), "invalid": (1, 1)}
    with Session(engine) as session:  # follow-ups are never visits of their own
        assert session.execute(select(func.count()).select_from(Rollup).where(
            Rollup.kind == "visit.insurance")).scalar_one() == 0
    engine.dispose()


def rejected(device: FakeDevice) -> dict[str, Any]:
    device.seq += 1
    draft = EventDraft(EventKind.REJECTED, Method.CHIP, EventAssurance.NONE, datetime.now(VN),
                       None, 1, Demographics(), "expired-card", {"attempted": "entry"})
    return build_event(draft, device_id=device.device_id, site_id=device.site_id,
                       seq=device.seq, event_id=_UUID7(), signing_key=device.key,
                       centre_key=device.centre_public)


def ingest_id(engine: Any, insurance: str) -> str:
    with Session(engine) as session:
        for event_id, details in session.execute(select(Event.event_id, Event.details).where(
                Event.kind == "visit")):
            if details["insurance"] == insurance:
                return str(event_id)
    raise AssertionError(insurance)


def test_training_events_are_stored_marked_and_never_counted(db_url: str) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    centre = X25519PrivateKey.generate()
    devices = seed(engine, sites={SITE: "hospital", HERITAGE: "heritage"},
                   devices={DESK: SITE, GATE: HERITAGE}, centre_key=centre)
    desk, gate = devices[DESK], devices[GATE]
    ctx = IngestContext(centre, b"d" * 32, timedelta(minutes=10))

    def training(event: dict[str, Any], device: FakeDevice) -> dict[str, Any]:
        """The same event as a device in training mode signs it."""
        from wire.signing import sign_event

        body = {k: v for k, v in event.items() if k != "sig"}
        body["training"] = True
        return sign_event(body, device.key)

    stay = training(desk.event("stay.start", details={
        "stay_id": "5f0c6f0e-4d1a-4e7b-9b1a-0e8d7c6b5a49", "ward_or_room": "Khoa Nội",
        "expected_departure": "2030-01-02", "reason_code": "treatment"}), desk)
    assert ingest(engine, ctx, DESK, [visit(desk, "valid", training=True, seq=2), stay]) \
        == [None, None]
    refused = training(rejected(gate), gate)
    assert ingest(engine, ctx, GATE, [training(gate.event("entry"), gate), refused]) \
        == [None, None]
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Rollup)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(Stay)).scalar_one() == 0
        occupancy = session.get(SiteOccupancy, HERITAGE)
        assert occupancy is None or occupancy.occupancy == 0
        stored = session.execute(select(Event.details)).scalars().all()
        assert len(stored) == 4 and all(d["training"] is True for d in stored)
    # The real entry after them counts, and no seq-gap: training events hold their seqs.
    real = rejected(gate)
    assert ingest(engine, ctx, GATE, [gate.event("entry"), real]) == [None, None]
    day = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    with Session(engine) as session:
        assert session.execute(select(func.sum(Rollup.people)).where(
            Rollup.kind == "entry")).scalar_one() == 1
        assert [r.events for r in refusals(session, [HERITAGE], *day)] == [1]
        assert session.execute(select(Device.contiguous_seq).where(
            Device.id == GATE)).scalar_one() == 4
    engine.dispose()

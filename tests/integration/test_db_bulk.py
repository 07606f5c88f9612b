"""central.db.bulk.insert_rows on SQLite and PostgreSQL: every column type the ingest uses
(text, integers, times, JSON, NULLs), conflicts skipped, only inserted rows returned."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from central.counting import utc
from central.db.bulk import insert_rows
from central.db.models import Event, Presence
from tests.integration.pg_fixtures import db_url, migrated_engine, postgres_server, seed  # noqa: F401

GATE = "gate-ngo-mon-01"


def _event(seq: int, **extra: Any) -> dict[str, Any]:
    at = datetime(2025, 4, 30, 2, 15, seq % 60, tzinfo=UTC)
    row: dict[str, Any] = {
        "device_id": GATE, "event_id": f"0196{seq:028x}"[:36], "seq": seq,
        "site_id": "hue-dai-noi", "occurred_at": at, "received_at": at, "kind": "manual",
        "method": "manual", "assurance": "manual", "subject": None, "count": 3,
        "age_band": None, "sex": None, "birth_province": None, "reason": "child",
        "details": {"counts_as": "entry", "note": "Nguyễn"}, "sig": "s" * 86}
    row.update(extra)
    return row


def test_insert_rows_types_conflicts_and_returning(db_url: str) -> None:  # noqa: F811
    engine = migrated_engine(db_url)
    seed(engine)
    events = cast(Table, Event.__table__)
    with Session(engine) as s, s.begin():
        first = insert_rows(s, events, [_event(1), _event(2, subject="a" * 32, count=1)],
                            returning=("device_id", "seq"), skip_conflicts=True)
        assert sorted(first) == [(GATE, 1), (GATE, 2)]
        # seq 2 again under another event_id, and event 1 again: both skipped, 3 goes in.
        again = insert_rows(s, events, [_event(1), _event(3), _event(2, event_id="x" * 36)],
                            returning=("device_id", "seq"), skip_conflicts=True)
        assert again == [(GATE, 3)]
    with Session(engine) as s:
        stored = s.scalars(select(Event).order_by(Event.seq)).all()
        assert [e.seq for e in stored] == [1, 2, 3]
        assert stored[0].details == {"counts_as": "entry", "note": "Nguyễn"}
        assert stored[0].subject is None and stored[1].subject == "a" * 32
        assert utc(stored[0].occurred_at) == datetime(2025, 4, 30, 2, 15, 1, tzinfo=UTC)
    presences = cast(Table, Presence.__table__)
    with Session(engine) as s, s.begin():  # a column that is NULL in every row
        rows = [{"site_id": "hue-dai-noi", "subject": None, "people": 2, "entered_at": None,
                 "exited_at": datetime.now(UTC), "closed_by": "orphan-exit"}] * 3
        assert insert_rows(s, presences, rows) == []
        assert len(s.scalars(select(Presence)).all()) == 3
    engine.dispose()

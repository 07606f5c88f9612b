"""The open-stay register: durable, and replayed from the outbox after a crash between commits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox
from edge_agent.stay_register import StayRegister

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def stay(kind: EventKind, stay_id: uuid.UUID) -> EventDraft:
    details = {"stay_id": str(stay_id), "ward_or_room": "204", "expected_departure": "2026-11-23",
               "reason_code": "tourism"}
    return EventDraft(kind, Method.CHIP, EventAssurance.CHIP_ANCHORED, NOW, subject="ab" * 16,
                      details=details)


def builder(draft: EventDraft):  # type: ignore[no-untyped-def]
    def build(seq: int, event_id: uuid.UUID) -> bytes:
        return json.dumps({"seq": seq, "kind": draft.kind.value, "subject": draft.subject,
                           "details": draft.details,
                           "occurred_at": draft.occurred_at.isoformat()}).encode()
    return build


def test_register_replays_what_the_outbox_committed(tmp_path: Path) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    with Outbox(tmp_path / "o.db") as outbox:
        for draft in (stay(EventKind.STAY_START, first), stay(EventKind.STAY_START, second),
                      stay(EventKind.STAY_END, first)):
            outbox.commit(draft, builder(draft))
        # The process died before the register was written: replay closes the gap.
        register = StayRegister(tmp_path / "o.db.stays")
        assert register.reconcile(outbox) == 3
        assert [s.stay_id for s in register.open_stays()] == [second]
        assert register.reconcile(outbox) == 0  # idempotent
        register.close()
    reopened = StayRegister(tmp_path / "o.db.stays")
    assert reopened.last_seq == 3
    assert [s.ward_or_room for s in reopened.open_stays()] == ["204"]
    reopened.close()

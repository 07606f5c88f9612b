"""The open-stay register: durable, and replayed from the outbox after a crash between commits."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
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


def test_register_keeps_local_subjects_and_today_s_visits(tmp_path: Path) -> None:
    """The events carry no subject in clear (docs/protocol.md §4.7.1): the register keeps the
    device-local subject of each open stay and today's visits; a stay replayed from the outbox
    alone is restored with the unknown subject."""
    from edge_agent.flows.model import UNKNOWN_SUBJECT

    first, second = uuid.uuid4(), uuid.uuid4()
    with Outbox(tmp_path / "o.db") as outbox:
        register = StayRegister(tmp_path / "o.db.stays")
        start = stay(EventKind.STAY_START, first)
        entry = outbox.commit(start, builder(start))
        register.apply(entry.seq, {**json.loads(entry.payload), "subject": None}, "g1." + "cd" * 16)
        lost = stay(EventKind.STAY_START, second)
        outbox.commit(lost, lambda seq, event_id: json.dumps(
            {"seq": seq, "kind": "stay.start", "subject": None, "details": lost.details,
             "occurred_at": NOW.isoformat()}).encode())
        assert register.reconcile(outbox) == 1  # crashed before the register's commit
        subjects = {s.stay_id: s.subject for s in register.open_stays()}
        assert subjects == {first: "g1." + "cd" * 16, second: UNKNOWN_SUBJECT}
        register.add_visit(7, "g1." + "ef" * 16, NOW.date())
        register.add_visit(8, "g2." + "aa" * 16, NOW.date() + timedelta(days=1))  # next day
        assert register.visits(NOW.date()) == []  # yesterday's are forgotten
        assert register.visits(NOW.date() + timedelta(days=1)) == ["g2." + "aa" * 16]
        assert set(register.subjects_in_use()) == {"g1." + "cd" * 16, UNKNOWN_SUBJECT,
                                                   "g2." + "aa" * 16}
        register.close()

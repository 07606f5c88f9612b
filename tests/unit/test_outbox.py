"""The outbox: seq and ordering, durability across reopen, bounds and the on-full policy, purge,
corrupt files. (Full disk on a real tmpfs: ``test_outbox_disk.py``.)"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.events.ids import uuid7_time_ms
from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import (
    OnFull,
    Outbox,
    OutboxCorruptError,
    OutboxError,
    OutboxFullError,
    payload_builder,
)
from wire.sealing import SealedBox, open_sealed
from wire.signing import verify_event

NOW = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def draft(kind: EventKind = EventKind.ENTRY, personal: dict[str, str] | None = None) -> EventDraft:
    return EventDraft(kind, Method.CHIP, EventAssurance.CHIP_ANCHORED, NOW,
                      subject="ab" * 16, personal=personal)


def build(size: int = 0):  # type: ignore[no-untyped-def]
    def _build(seq: int, event_id: uuid.UUID) -> bytes:
        return json.dumps({"seq": seq, "event_id": str(event_id), "pad": "x" * size}).encode()
    return _build


STAY = {"name": "Nguyễn Văn An", "id_number": "001099012345"}


def test_seq_is_monotonic_and_event_id_is_uuid7(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        entries = [ob.commit(draft(), build()) for _ in range(20)]
        assert [e.seq for e in entries] == list(range(1, 21))
        assert all(e.event_id.version == 7 for e in entries)
        assert len({e.event_id for e in entries}) == 20
        ms = [uuid7_time_ms(e.event_id) for e in entries]
        assert ms == sorted(ms)
        # the payload was built with the envelope that is stored
        for e in entries:
            body = json.loads(e.payload)
            assert body["seq"] == e.seq and body["event_id"] == str(e.event_id)
        assert [p.seq for p in ob.pending(limit=5, after_seq=7)] == [8, 9, 10, 11, 12]
        assert ob.depth() == 20


def test_pending_skips_delivered_and_mark_is_idempotent(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        for _ in range(6):
            ob.commit(draft(), build())
        assert ob.mark_delivered(2) is True
        assert ob.mark_delivered(2) is False
        assert ob.mark_delivered(99) is False
        assert ob.mark_delivered_many([1, 4, 4, 5]) == 3
        assert [p.seq for p in ob.pending(100)] == [3, 6]
        assert ob.depth() == 2
        got = ob.get(3)
        assert got is not None and got.delivered_at is None
        got = ob.get(4)
        assert got is not None and got.delivered_at is not None
        assert ob.oldest_undelivered() == ob.pending(1)[0].committed_at
        ob.mark_delivered_many([3, 6])
        assert ob.oldest_undelivered() is None


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        first = [ob.commit(draft(), build()) for _ in range(5)]
        ob.mark_delivered_many([1, 2])
    with Outbox(path) as ob:
        assert [p.seq for p in ob.pending()] == [3, 4, 5]
        assert [p.event_id for p in ob.pending()] == [e.event_id for e in first[2:]]
        assert ob.commit(draft(), build()).seq == 6
        assert ob.counts().rows == 6


def test_a_failing_build_stores_nothing_and_consumes_no_seq(tmp_path: Path) -> None:
    def broken(seq: int, event_id: uuid.UUID) -> bytes:
        raise RuntimeError("signing key unavailable")

    with Outbox(tmp_path / "o.db") as ob:
        ob.commit(draft(), build())
        with pytest.raises(RuntimeError):
            ob.commit(draft(), broken)
        assert ob.commit(draft(), build()).seq == 2
        assert ob.counts().rows == 2


def test_commit_all_is_all_or_nothing(tmp_path: Path) -> None:
    def broken(seq: int, event_id: uuid.UUID) -> bytes:
        raise RuntimeError("signing key unavailable")

    with Outbox(tmp_path / "o.db") as ob:
        entries = ob.commit_all([(draft(), build()), (draft(EventKind.EXIT), build())])
        assert [e.seq for e in entries] == [1, 2]
        with pytest.raises(RuntimeError):
            ob.commit_all([(draft(), build()), (draft(), broken)])
        assert ob.counts().rows == 2 and ob.last_seq() == 2
        assert ob.commit(draft(), build()).seq == 3


def test_seq_never_reused_after_purge(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    clock = [1_000_000]
    with Outbox(path, retention=timedelta(seconds=10), clock_ms=lambda: clock[0]) as ob:
        for _ in range(3):
            ob.commit(draft(), build())
        ob.mark_delivered_many([1, 2, 3])
        clock[0] += 11_000
        assert ob.purge() == 0  # sent is not settled: only a receipt lets a row go
        assert ob.settle(3) == 3
        clock[0] += 11_000
        assert ob.purge() == 3
        assert ob.counts().rows == 0
    with Outbox(path) as ob:
        assert ob.commit(draft(), build()).seq == 4


def test_purge_keeps_undelivered_and_recent(tmp_path: Path) -> None:
    clock = [0]
    with Outbox(tmp_path / "o.db", retention=timedelta(days=7),
                clock_ms=lambda: clock[0]) as ob:
        for _ in range(4):
            ob.commit(draft(), build())
        ob.mark_delivered_many([1, 2], settle=True)  # settled at t=0
        clock[0] = 6 * 86_400_000
        ob.mark_delivered_many([3], settle=True)     # settled at day 6
        assert ob.purge(datetime.fromtimestamp(8 * 86_400, UTC)) == 2
        assert [e.seq for e in ob.pending()] == [4]
        assert ob.get(3) is not None
        assert ob.purge(datetime.fromtimestamp(14 * 86_400, UTC)) == 1
        assert ob.get(4) is not None


@pytest.mark.parametrize("policy", list(OnFull))
def test_full_refuses_non_stay_but_always_stores_stays(tmp_path: Path, policy: OnFull) -> None:
    with Outbox(tmp_path / "o.db", max_rows=3, on_full=policy) as ob:
        for _ in range(3):
            ob.commit(draft(), build())
        with pytest.raises(OutboxFullError) as info:
            ob.commit(draft(EventKind.EXIT), build())
        assert info.value.rows == 3 and "NOT recorded" in str(info.value)
        for kind in (EventKind.STAY_START, EventKind.STAY_END) * 5:
            entry = ob.commit(draft(kind, personal=None), build())
            assert entry.is_stay
        assert ob.counts().rows == 13
        assert ob.depth() == 13
        assert [e.seq for e in ob.pending()] == list(range(1, 14))


def test_bytes_bound(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_bytes=1100, on_full="reject-new") as ob:
        ob.commit(draft(), build(400))
        ob.commit(draft(), build(400))
        with pytest.raises(OutboxFullError):
            ob.commit(draft(), build(400))
        ob.commit(draft(), build(10))  # a small one still fits
        ob.commit(draft(EventKind.STAY_START), build(4000))


def test_drop_oldest_delivered_only_makes_room(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_rows=4, on_full=OnFull.DROP_OLDEST_DELIVERED_ONLY) as ob:
        for _ in range(4):
            ob.commit(draft(), build())
        ob.mark_delivered_many([2, 4])  # sent, not receipted: never dropped
        ob.settle(0, [(1, 1), (3, 3)])
        assert ob.commit(draft(), build()).seq == 5
        assert ob.get(1) is None and ob.get(3) is not None  # the oldest delivered went first
        assert ob.commit(draft(), build()).seq == 6
        assert ob.get(3) is None
        with pytest.raises(OutboxFullError):  # only undelivered left: never dropped
            ob.commit(draft(), build())
        assert [e.seq for e in ob.pending()] == [5, 6]
        assert ob.unreceipted() == 4 and ob.get(2) is not None and ob.get(4) is not None


def test_reject_new_keeps_delivered_rows(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", max_rows=2, on_full=OnFull.REJECT_NEW) as ob:
        ob.commit(draft(), build())
        ob.commit(draft(), build())
        ob.mark_delivered_many([1, 2])
        with pytest.raises(OutboxFullError):
            ob.commit(draft(), build())
        assert ob.get(1) is not None


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["commit", "stay", "ack", "purge"]), max_size=40))
def test_counters_match_the_table(tmp_path_factory: pytest.TempPathFactory,
                                  ops: list[str]) -> None:
    path = tmp_path_factory.mktemp("prop") / "o.db"
    with Outbox(path, max_rows=5, retention=timedelta(0)) as ob:
        for op in ops:
            if op == "commit":
                try:
                    ob.commit(draft(), build(3))
                except OutboxFullError:
                    pass
            elif op == "stay":
                ob.commit(draft(EventKind.STAY_START), build(3))
            elif op == "ack":
                pending = ob.pending(1)
                if pending:
                    ob.mark_delivered(pending[0].seq)
            else:
                ob.purge(datetime.now(UTC) + timedelta(seconds=1))
        counts = ob.counts()
    conn = sqlite3.connect(path)
    rows, size, undelivered, top = conn.execute(
        "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(delivered_ms IS NULL), 0),"
        " coalesce(max(seq), 0) FROM events").fetchone()
    conn.close()
    assert (counts.rows, counts.bytes, counts.undelivered) == (rows, size, undelivered)
    assert counts.last_seq >= top


def test_corrupt_header_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        for _ in range(50):
            ob.commit(draft(), build(100))
    with path.open("r+b") as fh:
        fh.write(b"garbage garbage garbage garbage!")
    with pytest.raises(OutboxCorruptError) as info:
        Outbox(path)
    text = str(info.value)
    assert str(path) in text and "not a database" in text and "move the file" in text


def test_corrupt_pages_fail_the_check(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as ob:
        for _ in range(300):
            ob.commit(draft(), build(200))
    size = path.stat().st_size
    assert size > 16 * 4096
    with path.open("r+b") as fh:  # trash pages in the middle, keep the header
        fh.seek(4096 * 3)
        fh.write(b"\xA5" * 4096 * 4)
    with pytest.raises(OutboxCorruptError) as info:
        Outbox(path, integrity_check="full")
    assert str(path) in str(info.value)


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxCorruptError, match="not an outbox"):
        Outbox(path)


def test_wal_and_full_sync(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ob.commit(draft(), build())
        conn = ob._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.db", max_rows=0)
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.db", on_full="drop-anything")
    assert issubclass(OutboxFullError, OutboxError)


def test_first_seq_for_a_replacement_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db", first_seq=1001) as ob:
        assert ob.commit(draft(), build()).seq == 1001


def test_payload_builder_signs_and_seals_with_the_stored_envelope(tmp_path: Path) -> None:
    signing = Ed25519PrivateKey.generate()
    centre = X25519PrivateKey.generate()
    stay = draft(EventKind.STAY_START, personal=STAY)
    with Outbox(tmp_path / "o.db") as ob:
        entry = ob.commit(stay, payload_builder(stay, device_id="gate-01", site_id="s1",
                                                signing_key=signing,
                                                centre_key=centre.public_key()))
    event = json.loads(entry.payload)
    assert event["seq"] == entry.seq and event["event_id"] == str(entry.event_id)
    verify_event(event, signing.public_key())
    assert b"001099012345" not in entry.payload
    assert "Nguyễn".encode() not in entry.payload
    opened = open_sealed(SealedBox.from_json(event["sealed"]), centre,
                         f"{entry.event_id}|gate-01".encode())
    assert opened == STAY
    raw = (tmp_path / "o.db").read_bytes() + (tmp_path / "o.db-wal").read_bytes() \
        if (tmp_path / "o.db-wal").exists() else (tmp_path / "o.db").read_bytes()
    assert b"001099012345" not in raw  # never in clear on the edge disk

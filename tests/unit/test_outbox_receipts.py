"""The outbox under wire v2 receipts (docs/protocol.md §4.11): pending → sent → settled, requeue
after a reconnect or the receipt timeout, rejected events settled only on (seq, event_id),
purge of settled rows only, and the in-place migration of a version-1 outbox."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.events.model import EventAssurance, EventDraft, EventKind, Method
from edge_agent.outbox import Outbox
from edge_agent.outbox.store import APPLICATION_ID
from edge_agent.uplink.receipts import ReceiptProgress

NOW = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def draft() -> EventDraft:
    return EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED, NOW,
                      subject="ab" * 16)


def build(seq: int, event_id: uuid.UUID) -> bytes:
    return json.dumps({"seq": seq, "event_id": str(event_id)}).encode()


def fill(ob: Outbox, n: int) -> list[uuid.UUID]:
    return [ob.commit(draft(), build).event_id for _ in range(n)]


def test_puback_only_sends_the_receipt_settles(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        fill(ob, 5)
        assert (ob.depth(), ob.unreceipted()) == (5, 5)
        assert ob.mark_delivered_many([1, 2, 3]) == 3
        assert (ob.depth(), ob.unreceipted()) == (2, 5)  # sent, still unreceipted
        assert [e.seq for e in ob.pending()] == [4, 5]
        assert ob.settle(2) == 2
        assert ob.get(1).receipt == "committed" and ob.get(3).receipt is None  # type: ignore[union-attr]
        assert (ob.depth(), ob.unreceipted()) == (2, 3)
        assert ob.settle(2) == 0  # idempotent: a duplicate receipt changes nothing


def test_receipt_can_overtake_the_puback(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        fill(ob, 3)
        assert ob.settle(0, [(2, 3)]) == 2  # committed above a gap, never PUBACKed here
        assert [e.seq for e in ob.pending()] == [1]
        assert (ob.depth(), ob.unreceipted()) == (1, 1)
        assert ob.mark_delivered_many([2, 3]) == 0  # the late PUBACKs find them settled
        assert ob.oldest_unreceipted() == ob.get(1).committed_at  # type: ignore[union-attr]


def test_rejected_settles_only_the_matching_event(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as ob:
        ids = fill(ob, 3)
        other = str(uuid.uuid4())
        assert ob.settle(0, rejected=[(2, other, "bad-signature")]) == 0
        assert ob.settle(0, rejected=[(2, str(ids[1]), "bad-signature")]) == 1
        assert ob.get(2).receipt == "rejected:bad-signature"  # type: ignore[union-attr]
        assert ob.unreceipted() == 2
        assert ob.settle(3) == 2  # the rejected one keeps its reason
        assert ob.get(2).receipt == "rejected:bad-signature"  # type: ignore[union-attr]
        assert ob.unreceipted() == 0 and ob.oldest_unreceipted() is None


def test_requeue_after_reconnect_and_after_timeout(tmp_path: Path) -> None:
    clock = [1_000_000]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        fill(ob, 4)
        ob.mark_delivered_many([1, 2])
        clock[0] += 30_000
        ob.mark_delivered_many([3])
        ob.settle(1)
        # timeout 20 s: only seq 2 was sent long enough ago without a receipt
        cutoff = datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)
        assert ob.requeue(sent_before=cutoff) == 1
        assert [e.seq for e in ob.pending()] == [2, 4]
        # reconnect: every sent-but-unreceipted event goes out again
        assert ob.requeue() == 1
        assert [e.seq for e in ob.pending()] == [2, 3, 4]
        assert ob.get(1).receipt == "committed"  # type: ignore[union-attr]
        assert (ob.depth(), ob.unreceipted()) == (3, 3)


def test_purge_and_drop_never_touch_unreceipted(tmp_path: Path) -> None:
    clock = [0]
    with Outbox(tmp_path / "o.db", retention=timedelta(days=1),
                clock_ms=lambda: clock[0]) as ob:
        fill(ob, 3)
        ob.mark_delivered_many([1, 2, 3])
        ob.settle(1)
        clock[0] = 30 * 86_400_000
        assert ob.purge() == 1
        assert ob.get(1) is None and ob.get(2) is not None and ob.get(3) is not None
        assert ob.counts().rows == 2 and ob.unreceipted() == 2


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    is_stay INTEGER NOT NULL, committed_ms INTEGER NOT NULL, delivered_ms INTEGER,
    size INTEGER NOT NULL, payload BLOB NOT NULL);
CREATE INDEX events_undelivered ON events (seq) WHERE delivered_ms IS NULL;
CREATE INDEX events_delivered ON events (delivered_ms) WHERE delivered_ms IS NOT NULL;
CREATE TRIGGER events_ins AFTER INSERT ON events BEGIN
    UPDATE meta SET value = value + 1 WHERE key = 'rows';
    UPDATE meta SET value = value + NEW.size WHERE key = 'bytes';
    UPDATE meta SET value = value + (NEW.delivered_ms IS NULL) WHERE key = 'undelivered';
END;
CREATE TRIGGER events_del AFTER DELETE ON events BEGIN
    UPDATE meta SET value = value - 1 WHERE key = 'rows';
    UPDATE meta SET value = value - OLD.size WHERE key = 'bytes';
    UPDATE meta SET value = value - (OLD.delivered_ms IS NULL) WHERE key = 'undelivered';
END;
CREATE TRIGGER events_upd AFTER UPDATE OF delivered_ms ON events BEGIN
    UPDATE meta SET value = value - (OLD.delivered_ms IS NULL) + (NEW.delivered_ms IS NULL)
        WHERE key = 'undelivered';
END;
"""


def test_version_1_outbox_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                     [("last_seq", 0), ("rows", 0), ("bytes", 0), ("undelivered", 0)])
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for seq, event_id in enumerate(ids, start=1):
        conn.execute("INSERT INTO events VALUES (?, ?, 'entry', 0, 1000, ?, 2, x'7b7d')",
                     (seq, event_id, 2000 if seq <= 3 else None))
    conn.execute("UPDATE meta SET value = 4 WHERE key = 'last_seq'")
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with Outbox(path) as ob:
        counts = ob.counts()
        assert (counts.rows, counts.undelivered, counts.unreceipted, counts.last_seq) == \
            (4, 1, 4, 4)
        # PUBACKed under v1, now sent and awaiting a receipt; a reconnect resends them
        assert [e.seq for e in ob.pending()] == [4]
        assert ob.settle(2) == 2
        assert ob.requeue() == 1
        assert [e.seq for e in ob.pending()] == [3, 4]
        assert ob.commit(draft(), build).seq == 5
        assert ob.unreceipted() == 3
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == 2
    check.close()
    with Outbox(path) as ob:  # reopening a migrated file changes nothing
        assert ob.unreceipted() == 3


def test_a_refusal_inside_the_prefix_is_recorded_as_refused(tmp_path: Path) -> None:
    """The centre's prefix passes a seq it refused for good (``too-old``); the receipt names it
    in ``rejected`` and the row says so, not "committed" (found by the chaos suite)."""
    with Outbox(tmp_path / "o.db") as ob:
        ids = fill(ob, 3)
        assert ob.settle(3, rejected=[(2, str(ids[1]), "too-old")]) == 3
        assert [ob.get(s).receipt for s in (1, 2, 3)] == [  # type: ignore[union-attr]
            "committed", "rejected:too-old", "committed"]


def test_requeue_after_the_clock_was_stepped_back(tmp_path: Path) -> None:
    """Events PUBACKed while the wall clock ran ahead are sent again once the timeout has
    passed, not only when the clock has caught up with their recorded time (found by the chaos
    suite's clock fault)."""
    clock = [1_000_000]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        fill(ob, 3)
        clock[0] += 600_000  # ten minutes ahead
        ob.mark_delivered_many([1, 2])
        clock[0] -= 600_000 - 5_000  # stepped back, 5 s later in real time
        ob.mark_delivered_many([3])

        def cutoff() -> datetime:
            return datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)

        assert ob.requeue(sent_before=cutoff()) == 2  # recorded 10 min ahead: sent again
        assert [e.seq for e in ob.pending()] == [1, 2]
        clock[0] += 10_000
        assert ob.requeue(sent_before=cutoff()) == 0  # seq 3 is within its timeout
        clock[0] += 11_000
        assert ob.requeue(sent_before=cutoff()) == 1


def _sent_receipted_in_part(ob: Outbox, clock: list[int]) -> datetime:
    """Six events sent; the centre receipted 1–2 and 4 (3 is a gap, 5–6 are above); the
    receipt timeout (20 s) has passed for all of them. Returns the timeout's cutoff."""
    fill(ob, 6)
    ob.mark_delivered_many(range(1, 7))
    clock[0] += 30_000
    assert ob.settle(2, [(4, 4)]) == 3
    assert ob.highest_receipted() == 4
    return datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)


def test_while_receipts_advance_only_gaps_below_the_highest_receipted_are_resent(
        tmp_path: Path) -> None:
    """docs/protocol.md §4.11.2: events above the highest receipted seq are most likely still
    queued at the broker while the centre works through the device's events: held back."""
    clock = [1_000_000]
    progress = ReceiptProgress(timeout_s=20.0)
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        cutoff = _sent_receipted_in_part(ob, clock)
        progress.settled(3, now=100.0)
        assert progress.advancing(now=110.0)
        assert ob.requeue(sent_before=cutoff,
                          hold_above_receipted=progress.advancing(now=110.0)) == 1
        assert [e.seq for e in ob.pending()] == [3]  # the gap only; 5 and 6 stay sent
        assert ob.get(5).delivered_at is not None  # type: ignore[union-attr]
        # Still advancing at the next check: nothing more goes out.
        assert ob.requeue(sent_before=cutoff, hold_above_receipted=True) == 0


def test_receipts_stalled_for_a_full_timeout_resend_everything(tmp_path: Path) -> None:
    clock = [1_000_000]
    progress = ReceiptProgress(timeout_s=20.0)
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        cutoff = _sent_receipted_in_part(ob, clock)
        progress.settled(3, now=100.0)
        assert not progress.advancing(now=120.0)  # no new event settled for 20 s
        assert ob.requeue(sent_before=cutoff,
                          hold_above_receipted=progress.advancing(now=120.0)) == 3
        assert [e.seq for e in ob.pending()] == [3, 5, 6]


def test_hold_back_keeps_the_timeout_and_the_clock_step_rule(tmp_path: Path) -> None:
    clock = [1_000_000]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        fill(ob, 5)
        ob.mark_delivered_many([1, 2])
        clock[0] += 600_000  # the wall clock ran ten minutes ahead
        ob.mark_delivered_many([4])
        clock[0] -= 600_000 - 5_000  # stepped back
        ob.mark_delivered_many([3, 5])
        ob.settle(0, [(3, 3)])
        cutoff = datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)
        # seq 1–2: gaps, but sent only 5 s ago: within their timeout; seq 4: above the highest
        # receipted but stamped in the future: sent again; seq 5: above, within its timeout.
        assert ob.requeue(sent_before=cutoff, hold_above_receipted=True) == 1
        assert [e.seq for e in ob.pending()] == [4]
        clock[0] += 21_000
        cutoff = datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)
        assert ob.requeue(sent_before=cutoff, hold_above_receipted=True) == 2
        assert [e.seq for e in ob.pending()] == [1, 2, 4]


def test_without_any_receipt_nothing_is_held_back(tmp_path: Path) -> None:
    clock = [1_000_000]
    with Outbox(tmp_path / "o.db", clock_ms=lambda: clock[0]) as ob:
        fill(ob, 2)
        ob.mark_delivered_many([1, 2])
        clock[0] += 30_000
        cutoff = datetime.fromtimestamp((clock[0] - 20_000) / 1000, UTC)
        assert ob.highest_receipted() == 0
        # hold_above_receipted with no receipt: everything is "above" — the uplink never asks
        # for it then, since receipts cannot be advancing without one.
        assert ob.requeue(sent_before=cutoff, hold_above_receipted=True) == 0
        assert not ReceiptProgress(timeout_s=20.0).advancing(now=1e6)
        assert ob.requeue(sent_before=cutoff) == 2


def test_receipt_progress_counts_only_receipts_that_settle_something() -> None:
    progress = ReceiptProgress(timeout_s=60.0)
    assert not progress.advancing(now=0.0)
    progress.settled(0, now=5.0)  # a receipt that only repeats what was settled
    assert progress.last_progress is None
    progress.settled(2, now=10.0)
    assert progress.advancing(now=69.9)
    progress.settled(0, now=60.0)
    assert not progress.advancing(now=70.0)

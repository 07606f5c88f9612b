"""The durable outbox: every accepted event is on disk before the gate says "accepted".

Storage (SQLite, https://www.sqlite.org/):

* ``PRAGMA journal_mode=WAL`` (https://www.sqlite.org/wal.html): the drain thread reads while a
  flow commits; a reader never blocks the writer.
* ``PRAGMA synchronous=FULL`` (https://www.sqlite.org/pragma.html#pragma_synchronous): in WAL
  mode FULL syncs the WAL file at **every** commit, so a committed event survives power loss and
  a SIGKILL. (NORMAL would only sync at checkpoints and may lose the last commits on power loss.)
* One ``BEGIN IMMEDIATE`` transaction (https://www.sqlite.org/lang_transaction.html) reads the
  stored counter, gives the event its ``seq`` (counter + 1) and a UUIDv7 ``event_id`` (RFC 9562),
  lets the caller build and sign the payload with them, inserts the row and stores the counter;
  :meth:`Outbox.commit` returns only after ``COMMIT`` returned, so the caller shows its verdict
  after durability. A failure anywhere rolls everything back: no ``seq`` is consumed.
* The counter lives in its own row (``meta.last_seq``), not in the events table, so a ``seq`` is
  never reused, even after delivered rows are purged or dropped.
* States of a row (wire v2): *pending* (``delivered_ms`` NULL) → *sent* (the broker's PUBACK:
  ``delivered_ms``) → *settled* (the centre's receipt: ``receipted_ms``, ``receipt`` =
  ``committed`` or ``rejected:<reason>``). :meth:`Outbox.requeue` turns sent rows back into
  pending ones (after a reconnect or the receipt timeout); only settled rows are purged.
* Totals (rows, bytes, undelivered, unreceipted) are kept by triggers in the same
  transactions, so bounds and ``depth()`` cost one row read whatever the backlog.
* At open: the header is checked, then ``PRAGMA quick_check``
  (https://www.sqlite.org/pragma.html#pragma_quick_check: the ``integrity_check`` walk without the
  index-content cross-check, O(N) but several times faster; ``integrity_check="full"`` runs the
  full one), and ``PRAGMA application_id`` tells our file from another SQLite database.

Bound and on-full policy (docs/design.md §2.1: "never drops accommodation notices"):

* The bound counts every stored row, delivered or not (both occupy the disk): ``max_rows`` rows
  and ``max_bytes`` bytes of payload.
* ``drop-oldest-delivered-only`` (default): when a new event would not fit, the oldest
  **receipted** rows (the centre confirmed it holds them, docs/protocol.md §4.11; a PUBACK is
  not enough) are deleted ahead of their retention until it fits. An unreceipted event is
  never deleted. If unreceipted events alone fill the bound, a non-stay event is refused with
  :class:`OutboxFullError` (the gate shows "not recorded, call staff").
* ``reject-new``: delivered rows keep their full retention; when the bound is reached a non-stay
  event is refused with :class:`OutboxFullError`.
* Under both policies a ``stay.start`` / ``stay.end`` event (accommodation notice, which the law
  requires for 100% of stays) is **always** stored, beyond the bound if need be; only the disk
  itself can refuse it (:class:`OutboxDiskFullError`). Size ``max_bytes`` well below the free
  space of the partition so stays keep room.

Failures are domain errors: a full disk (SQLITE_FULL, https://www.sqlite.org/rescode.html#full)
is :class:`OutboxDiskFullError`, an unreadable file is :class:`OutboxCorruptError`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from edge_agent.events.ids import new_event_id
from edge_agent.events.model import EventDraft
from edge_agent.outbox.errors import (
    OutboxCorruptError,
    OutboxDiskFullError,
    OutboxError,
    OutboxFullError,
)
from edge_agent.private_files import ensure_private_file

log = logging.getLogger(__name__)

APPLICATION_ID = 0x43434B4F  # "CCKO": cccd-checkin outbox
SCHEMA_VERSION = 2
"""1: PUBACK-settled rows (``delivered_ms``). 2 (wire v2, docs/protocol.md §4.11): adds
``receipted_ms`` / ``receipt`` and the ``unreceipted`` total; version-1 files are migrated in
place at open (:data:`_MIGRATE_1_2`)."""
SQLITE_HEADER = b"SQLite format 3\x00"
LOW_SPACE_BYTES = 64 * 1024

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    is_stay      INTEGER NOT NULL,
    committed_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    size         INTEGER NOT NULL,
    payload      BLOB    NOT NULL,
    receipted_ms INTEGER,
    receipt      TEXT
);
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

_RECEIPT_SCHEMA = """
CREATE INDEX events_unreceipted ON events (seq) WHERE receipted_ms IS NULL;
CREATE INDEX events_awaiting ON events (delivered_ms)
    WHERE receipted_ms IS NULL AND delivered_ms IS NOT NULL;
CREATE INDEX events_receipted ON events (receipted_ms) WHERE receipted_ms IS NOT NULL;
CREATE TRIGGER events_ins_r AFTER INSERT ON events BEGIN
    UPDATE meta SET value = value + (NEW.receipted_ms IS NULL) WHERE key = 'unreceipted';
END;
CREATE TRIGGER events_del_r AFTER DELETE ON events BEGIN
    UPDATE meta SET value = value - (OLD.receipted_ms IS NULL) WHERE key = 'unreceipted';
END;
CREATE TRIGGER events_upd_r AFTER UPDATE OF receipted_ms ON events BEGIN
    UPDATE meta SET value = value - (OLD.receipted_ms IS NULL) + (NEW.receipted_ms IS NULL)
        WHERE key = 'unreceipted';
END;
"""
_SCHEMA += _RECEIPT_SCHEMA

_MIGRATE_1_2 = """
ALTER TABLE events ADD COLUMN receipted_ms INTEGER;
ALTER TABLE events ADD COLUMN receipt TEXT;
""" + _RECEIPT_SCHEMA
"""Version 1 → 2: the receipt columns, indexes and triggers. Rows PUBACKed under version 1
stay "sent, awaiting receipt": the first receipt (retained, so it arrives at connect) settles
them, and what the centre does not hold is sent again (docs/protocol.md §4.11)."""


def _private(path: Path) -> None:
    """Create the outbox file 0600 before SQLite opens it (its ``-wal`` and ``-shm`` take the
    database's mode): events and sealed stays are readable by the agent's user only. Errors
    are left to SQLite, which reports them as it always did."""
    if str(path) == ":memory:" or not path.parent.is_dir() or path.is_dir():
        return
    with contextlib.suppress(OSError):
        ensure_private_file(path)


class OnFull(StrEnum):
    """What a full outbox does with a new non-stay event (stays are always stored)."""

    REJECT_NEW = "reject-new"
    DROP_OLDEST_DELIVERED_ONLY = "drop-oldest-delivered-only"


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One stored event: its envelope and the exact bytes that go on the wire."""

    seq: int
    event_id: uuid.UUID
    kind: str
    is_stay: bool
    committed_at: datetime
    payload: bytes
    delivered_at: datetime | None = None
    """When the broker's PUBACK was recorded ("sent"); None while pending."""
    receipt: str | None = None
    """``committed`` or ``rejected:<reason>`` once the centre's receipt settled the event."""


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    """Totals kept by the triggers."""

    rows: int
    bytes: int
    undelivered: int
    last_seq: int
    unreceipted: int = 0
    """Events the centre has not yet receipted (pending or sent): the delivery backlog."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _to_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("timestamps must carry their UTC offset")
    return int(at.timestamp() * 1000)


def _is_disk_full(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) == sqlite3.SQLITE_FULL:
        return True
    return "disk is full" in str(exc)


class Outbox:
    """A bounded, durable, ordered queue of signed events (see the module docstring).

    Thread-safe: one SQLite connection guarded by a lock (a commit holds it for one fsync).
    """

    def __init__(self, path: str | Path, *, max_rows: int = 100_000,
                 max_bytes: int = 256 * 1024 * 1024,
                 on_full: OnFull | str = OnFull.DROP_OLDEST_DELIVERED_ONLY,
                 retention: timedelta = timedelta(days=7),
                 integrity_check: str = "quick", first_seq: int = 1,
                 clock_ms: Callable[[], int] = _now_ms,
                 event_id_factory: Callable[[], uuid.UUID] = new_event_id) -> None:
        """Open (or create) the outbox at ``path``.

        ``first_seq`` only matters when the file is created: after replacing a corrupt outbox,
        start above the last ``seq`` the centre has seen so no ``seq`` is ever reused.
        ``integrity_check`` is ``"quick"`` (default), ``"full"`` or ``"none"``.
        """
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("max_rows and max_bytes must be positive")
        if integrity_check not in ("quick", "full", "none"):
            raise ValueError("integrity_check is 'quick', 'full' or 'none'")
        self.path = Path(path)
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.on_full = OnFull(on_full)
        self.retention = retention
        self._clock_ms = clock_ms
        self._new_id = event_id_factory
        self._lock = threading.Lock()
        self._conn = self._open(integrity_check, first_seq)

    # -- opening -----------------------------------------------------------------------------

    def _open(self, integrity_check: str, first_seq: int) -> sqlite3.Connection:
        path = self.path
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
            if header != SQLITE_HEADER:
                raise OutboxCorruptError(path, "file is not a database: bad SQLite header")
        _private(path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=10.0)
        except sqlite3.Error as exc:
            raise self._translate(exc, "open") from exc
        try:
            self._configure(conn, integrity_check, first_seq)
        except OutboxError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._translate(exc, "open") from exc
        return conn

    def _configure(self, conn: sqlite3.Connection, integrity_check: str,
                   first_seq: int) -> None:
        if integrity_check != "none":
            pragma = "quick_check" if integrity_check == "quick" else "integrity_check"
            rows = conn.execute(f"PRAGMA {pragma}(5)").fetchall()
            if [r[0] for r in rows] != ["ok"]:
                raise OutboxCorruptError(self.path, f"{pragma} failed: "
                                         + "; ".join(str(r[0]) for r in rows))
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"{self.path}: the file system does not support WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=4194304")  # truncate the WAL after checkpoints
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
        if tables == 0:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(_SCHEMA):
                conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                             [("last_seq", first_seq - 1), ("rows", 0), ("bytes", 0),
                              ("undelivered", 0), ("unreceipted", 0)])
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
            log.info("created outbox %s (first seq %d)", self.path, first_seq)
        elif app_id != APPLICATION_ID:
            raise OutboxCorruptError(self.path, "an SQLite database, but not an outbox "
                                     f"(application_id {app_id:#x})")
        elif version == 1:
            self._migrate_1_2(conn)
        elif version != SCHEMA_VERSION:
            raise OutboxError(f"{self.path}: outbox schema version {version}, this agent "
                              f"reads version {SCHEMA_VERSION}; upgrade the agent")

    def _migrate_1_2(self, conn: sqlite3.Connection) -> None:
        """Add the receipt columns to a version-1 outbox, in one transaction."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(_MIGRATE_1_2):
                conn.execute(statement)
            conn.execute("INSERT INTO meta (key, value) SELECT 'unreceipted', count(*)"
                         " FROM events")
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("outbox %s migrated to schema version %d (receipts)", self.path,
                 SCHEMA_VERSION)

    def _free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:
            return None

    def _translate(self, exc: sqlite3.Error, action: str) -> OutboxError:
        if _is_disk_full(exc) or getattr(exc, "errno", None) == errno.ENOSPC:
            return OutboxDiskFullError(self.path, f"{action}: {exc}")
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and (code & 0xFF) == sqlite3.SQLITE_IOERR:
            # Growing the WAL or the -shm index on a full disk reports SQLITE_IOERR_* rather
            # than SQLITE_FULL (https://www.sqlite.org/rescode.html#ioerr).
            free = self._free_bytes()
            if free is not None and free < LOW_SPACE_BYTES:
                return OutboxDiskFullError(self.path, f"{action}: {exc}, {free} bytes free")
        if isinstance(code, int) and (code & 0xFF) in (sqlite3.SQLITE_CORRUPT,
                                                       sqlite3.SQLITE_NOTADB):
            return OutboxCorruptError(self.path, f"{action}: {exc}")
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
            return OutboxCorruptError(self.path, f"{action}: {exc}")
        return OutboxError(f"outbox {self.path}: {action} failed: {exc}")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:  # SQLite may already have rolled back (SQLITE_FULL)
                log.debug("rollback after failure also failed", exc_info=True)

    # -- writing -----------------------------------------------------------------------------

    def commit(self, draft: EventDraft, build: Callable[[int, uuid.UUID], bytes]) -> OutboxEntry:
        """Store one event durably and return it; raise before anything is stored otherwise.

        ``build(seq, event_id)`` makes the signed wire bytes; it runs inside the transaction,
        so ``seq`` and ``event_id`` are the ones stored with the bytes. Returns after the
        ``COMMIT`` (and its fsync) returned. Raises :class:`OutboxFullError` (non-stay event,
        bound reached), :class:`OutboxDiskFullError` or :class:`OutboxError`; whatever
        ``build`` raises is re-raised with nothing stored.
        """
        return self.commit_all([(draft, build)])[0]

    def commit_all(
        self, items: Sequence[tuple[EventDraft, Callable[[int, uuid.UUID], bytes]]],
    ) -> list[OutboxEntry]:
        """Store the events of one presentation in one transaction: all of them, or none."""
        entries: list[OutboxEntry] = []
        action = "commit"
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                counts = self._counts_locked()
                seq = counts.last_seq
                for draft, build in items:
                    is_stay = draft.kind.is_stay
                    seq += 1
                    action = f"commit of seq {seq}"
                    event_id = self._new_id()
                    payload = bytes(build(seq, event_id))
                    self._make_room_locked(counts, len(payload), is_stay)
                    now = self._clock_ms()
                    self._conn.execute(
                        "INSERT INTO events (seq, event_id, kind, is_stay, committed_ms, size,"
                        " payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (seq, str(event_id), draft.kind.value, int(is_stay), now, len(payload),
                         payload))
                    entries.append(OutboxEntry(seq, event_id, draft.kind.value, is_stay,
                                               _to_dt(now), payload))
                    counts = self._counts_locked()
                self._conn.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (seq,))
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._translate(exc, action) from exc
            except BaseException:
                self._rollback()
                raise
        return entries

    def _make_room_locked(self, counts: OutboxCounts, size: int, is_stay: bool) -> None:
        def fits(rows: int, total: int) -> bool:
            return rows + 1 <= self.max_rows and total + size <= self.max_bytes

        if fits(counts.rows, counts.bytes):
            return
        rows, total = counts.rows, counts.bytes
        if self.on_full is OnFull.DROP_OLDEST_DELIVERED_ONLY:
            dropped = 0
            cursor = self._conn.execute(
                "SELECT seq, size FROM events WHERE receipted_ms IS NOT NULL ORDER BY seq")
            victims: list[int] = []
            for seq, row_size in cursor:
                if fits(rows, total):
                    break
                victims.append(seq)
                rows -= 1
                total -= row_size
            cursor.close()
            if victims:
                self._conn.executemany("DELETE FROM events WHERE seq = ?",
                                       [(s,) for s in victims])
                dropped = len(victims)
                log.warning("outbox full: dropped %d receipted rows ahead of retention", dropped)
        if fits(rows, total):
            return
        if is_stay:
            log.warning("outbox beyond its bound (%d rows, %d bytes): stay stored anyway",
                        rows + 1, total + size)
            return
        raise OutboxFullError(rows=rows, max_rows=self.max_rows, size=total,
                              max_bytes=self.max_bytes)

    def mark_delivered(self, seq: int) -> bool:
        """Record the PUBACK of ``seq``; False when it was unknown or already delivered."""
        return self.mark_delivered_many([seq]) == 1

    def mark_delivered_many(self, seqs: Iterable[int], *, settle: bool = False) -> int:
        """Record several PUBACKs in one transaction (one fsync); the number newly marked.

        A PUBACK only makes an event "sent, awaiting receipt"; ``settle=True`` also settles it
        (wire v1 behaviour, for a collector that sends no receipts).
        """
        now = self._clock_ms()
        rows = [(now, s) for s in seqs]
        if not rows:
            return 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.executemany(
                    "UPDATE events SET delivered_ms = ? WHERE seq = ? AND delivered_ms IS NULL",
                    rows)
                changed = cur.rowcount  # sqlite3_changes(): trigger updates are not counted
                if settle:
                    self._conn.executemany(
                        "UPDATE events SET receipted_ms = ?, receipt = 'puback'"
                        " WHERE seq = ? AND receipted_ms IS NULL", rows)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._translate(exc, "mark delivered") from exc
        return changed

    def settle(self, committed_through: int, committed: Iterable[tuple[int, int]] = (),
               rejected: Iterable[tuple[int, str, str]] = ()) -> int:
        """Apply a receipt from the centre (docs/protocol.md §4.11); the number newly settled.

        Every event with ``seq <= committed_through`` or inside one of the inclusive
        ``committed`` ranges is held by the centre; each ``(seq, event_id, reason)`` of
        ``rejected`` was refused for good and is settled only when both ``seq`` and
        ``event_id`` match the stored row. Settling also records the event as sent (a receipt
        can overtake its PUBACK). Already settled rows are left as they are (idempotent).
        """
        now = self._clock_ms()
        ranges = [(0, committed_through)] if committed_through > 0 else []
        ranges += [(lo, hi) for lo, hi in committed if lo <= hi]
        refused = [(f"rejected:{reason}"[:80], seq, event_id) for seq, event_id, reason in rejected]
        if not ranges and not refused:
            return 0
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                changed = 0
                # Refusals first: the centre's prefix passes a seq refused for good, and the
                # row must say why, not "committed".
                for receipt, seq, event_id in refused:
                    changed += self._conn.execute(
                        "UPDATE events SET receipted_ms = ?, receipt = ?,"
                        " delivered_ms = coalesce(delivered_ms, ?)"
                        " WHERE receipted_ms IS NULL AND seq = ? AND event_id = ?",
                        (now, receipt, now, seq, event_id)).rowcount
                for lo, hi in ranges:
                    changed += self._conn.execute(
                        "UPDATE events SET receipted_ms = ?, receipt = 'committed',"
                        " delivered_ms = coalesce(delivered_ms, ?)"
                        " WHERE receipted_ms IS NULL AND seq BETWEEN ? AND ?",
                        (now, now, lo, hi)).rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._translate(exc, "settle") from exc
        return changed

    def requeue(self, sent_before: datetime | None = None, *,
                hold_above_receipted: bool = False) -> int:
        """Make sent-but-unreceipted events pending again, so the drain publishes them anew.

        All of them (after a reconnect), or those whose PUBACK is older than ``sent_before``
        (the receipt timeout) — or later than now by more than that timeout: the wall clock
        was stepped back since (NTP after a clock that ran ahead), and waiting for it to catch
        up with the recorded time would hold those events back for as long as the step (found
        by the chaos suite's clock fault). The number requeued.

        ``hold_above_receipted`` (with ``sent_before``; the uplink sets it while receipts are
        still advancing, docs/protocol.md §4.11.2): the timeout only requeues *gaps*, events
        below :meth:`highest_receipted` — the centre has receipted later events, so these were
        probably lost on the way. Events above it are most likely still queued at the broker
        and are held back; the clock-step rule still applies to them.
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                if sent_before is None:
                    cur = self._conn.execute(
                        "UPDATE events SET delivered_ms = NULL"
                        " WHERE receipted_ms IS NULL AND delivered_ms IS NOT NULL")
                else:
                    cutoff = _to_ms(sent_before)
                    ahead = 2 * self._clock_ms() - cutoff  # now + the timeout
                    below = self._highest_receipted_locked() if hold_above_receipted else None
                    cur = self._conn.execute(
                        "UPDATE events SET delivered_ms = NULL WHERE receipted_ms IS NULL"
                        " AND delivered_ms IS NOT NULL"
                        " AND ((delivered_ms < ? AND (? IS NULL OR seq < ?)) OR delivered_ms > ?)",
                        (cutoff, below, below, ahead))
                changed = cur.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._translate(exc, "requeue") from exc
        return changed

    def highest_receipted(self) -> int:
        """The highest ``seq`` a receipt has settled (committed or refused), 0 if none is left."""
        with self._lock:
            try:
                return self._highest_receipted_locked()
            except sqlite3.Error as exc:
                raise self._translate(exc, "read") from exc

    def _highest_receipted_locked(self) -> int:
        row = self._conn.execute(
            "SELECT max(seq) FROM events WHERE receipted_ms IS NOT NULL").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def purge(self, now: datetime | None = None) -> int:
        """Delete receipted rows older than the retention; the number deleted.

        Retention runs from the receipt: an event the centre has not receipted is never
        deleted, however old.
        """
        cutoff = (self._clock_ms() if now is None else _to_ms(now)) \
            - int(self.retention.total_seconds() * 1000)
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                cur = self._conn.execute(
                    "DELETE FROM events WHERE receipted_ms IS NOT NULL AND receipted_ms < ?",
                    (cutoff,))
                deleted = cur.rowcount
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._translate(exc, "purge") from exc
        if deleted:
            log.info("outbox purge: %d receipted rows past retention", deleted)
        return deleted

    # -- reading -----------------------------------------------------------------------------

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[OutboxEntry]:
        """Pending events (neither sent nor receipted) with ``seq > after_seq``, in ``seq``
        order, at most ``limit``."""
        rows = self._query(
            "SELECT seq, event_id, kind, is_stay, committed_ms, payload FROM events"
            " WHERE delivered_ms IS NULL AND receipted_ms IS NULL AND seq > ?"
            " ORDER BY seq LIMIT ?", (after_seq, limit))
        return [OutboxEntry(seq, uuid.UUID(eid), kind, bool(stay), _to_dt(ms), bytes(payload))
                for seq, eid, kind, stay, ms, payload in rows]

    def get(self, seq: int) -> OutboxEntry | None:
        """One stored event, delivered or not."""
        rows = self._query(
            "SELECT seq, event_id, kind, is_stay, committed_ms, payload, delivered_ms, receipt"
            " FROM events WHERE seq = ?", (seq,))
        if not rows:
            return None
        s, eid, kind, stay, ms, payload, dms, receipt = rows[0]
        return OutboxEntry(s, uuid.UUID(eid), kind, bool(stay), _to_dt(ms), bytes(payload),
                           None if dms is None else _to_dt(dms), receipt)

    def counts(self) -> OutboxCounts:
        with self._lock:
            try:
                return self._counts_locked()
            except sqlite3.Error as exc:
                raise self._translate(exc, "read counts") from exc

    def _counts_locked(self) -> OutboxCounts:
        values = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        return OutboxCounts(rows=values["rows"], bytes=values["bytes"],
                            undelivered=values["undelivered"], last_seq=values["last_seq"],
                            unreceipted=values["unreceipted"])

    def depth(self) -> int:
        """How many events wait for their PUBACK."""
        return self.counts().undelivered

    def last_seq(self) -> int:
        return self.counts().last_seq

    def undelivered_of_kind(self, kind: str) -> int:
        """How many undelivered events of ``kind`` are stored (the agent bounds ``rejected``)."""
        rows = self._query("SELECT count(*) FROM events WHERE delivered_ms IS NULL AND kind = ?",
                           (kind,))
        return int(rows[0][0])

    def oldest_undelivered(self) -> datetime | None:
        """When the oldest undelivered event was committed (None when all are delivered)."""
        rows = self._query("SELECT committed_ms FROM events WHERE delivered_ms IS NULL"
                           " ORDER BY seq LIMIT 1", ())
        return _to_dt(rows[0][0]) if rows else None

    def unreceipted(self) -> int:
        """How many events the centre has not receipted yet (pending or sent)."""
        return self.counts().unreceipted

    def oldest_unreceipted(self) -> datetime | None:
        """When the oldest event not yet receipted was committed (None when all are)."""
        rows = self._query("SELECT committed_ms FROM events WHERE receipted_ms IS NULL"
                           " ORDER BY seq LIMIT 1", ())
        return _to_dt(rows[0][0]) if rows else None

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._translate(exc, "read") from exc

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _split_sql(script: str) -> list[str]:
    """The statements of ``_SCHEMA`` (``executescript`` would COMMIT our transaction)."""
    statements: list[str] = []
    current: list[str] = []
    depth = 0
    for line in script.strip().splitlines():
        current.append(line)
        stripped = line.strip()
        if stripped.endswith("BEGIN"):
            depth += 1
        if stripped == "END;":
            depth -= 1
        if stripped.endswith(";") and depth == 0:
            statements.append("\n".join(current))
            current = []
    return statements

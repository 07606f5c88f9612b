"""Open stays of a desk, kept across restarts (SQLite beside the outbox).

A hospital desk restarted overnight must still discharge the patients it admitted. The register
is updated after each outbox commit; at start-up it replays every stay event the outbox stored
after the register's last applied ``seq``, which closes the window between the two commits (the
outbox keeps rows far longer than a restart takes).

It holds device-local subjects only (:mod:`edge_agent.events.local_subject`): the open stays'
and, for a hospital desk, today's visits (one visit per person and day survives a restart).
The events themselves carry no subject in clear (the centre gets it sealed), so a stay replayed
from the outbox after a crash between the two commits is restored with :data:`UNKNOWN_SUBJECT`:
the desk lists it and ends it when a card is tapped for that stay, without matching the card.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Any

from edge_agent.flows.model import UNKNOWN_SUBJECT, OpenStay, StayReason
from edge_agent.outbox import Outbox
from edge_agent.private_files import ensure_private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS open_stays (
    stay_id TEXT PRIMARY KEY, subject TEXT NOT NULL, ward_or_room TEXT NOT NULL,
    expected_departure TEXT NOT NULL, reason_code TEXT NOT NULL, started_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS visits (seq INTEGER PRIMARY KEY, subject TEXT NOT NULL,
    day TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('last_seq', 0);
"""


class StayRegister:
    """The open stays, durable (WAL, synchronous FULL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if self.path.parent.is_dir() and not self.path.is_dir():
            ensure_private_file(self.path)  # 0600; SQLite's -wal/-shm follow its mode
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def last_seq(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        return int(row[0])

    def apply(self, seq: int, event: dict[str, Any], local: str | None = None) -> None:
        """Record a committed stay event (the wire object; only its clear fields are used) with
        the local subject of its draft (``local``; an older event's clear ``subject`` serves
        when replaying, else :data:`UNKNOWN_SUBJECT`)."""
        kind, details = event.get("kind"), event.get("details") or {}
        subject = local or event.get("subject") or UNKNOWN_SUBJECT
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if kind == "stay.start":
                    self._conn.execute(
                        "INSERT OR REPLACE INTO open_stays VALUES (?, ?, ?, ?, ?, ?)",
                        (details["stay_id"], subject, details["ward_or_room"],
                         details["expected_departure"], details["reason_code"],
                         event["occurred_at"]))
                elif kind == "stay.end":
                    self._conn.execute("DELETE FROM open_stays WHERE stay_id = ?",
                                       (details["stay_id"],))
                self._conn.execute(
                    "UPDATE meta SET value = max(value, ?) WHERE key = 'last_seq'", (seq,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def reconcile(self, outbox: Outbox) -> int:
        """Apply the stay events the outbox holds beyond the register; the number applied."""
        applied = 0
        for seq in range(self.last_seq + 1, outbox.last_seq() + 1):
            entry = outbox.get(seq)
            if entry is None or not entry.is_stay:
                continue
            self.apply(seq, json.loads(entry.payload))
            applied += 1
        return applied

    def add_visit(self, seq: int, subject: str, day: date) -> None:
        """Remember a committed visit's local subject for ``day``; older days are forgotten."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM visits WHERE day < ?", (day.isoformat(),))
            self._conn.execute("INSERT OR REPLACE INTO visits VALUES (?, ?, ?)",
                               (seq, subject, day.isoformat()))
            self._conn.execute("COMMIT")

    def visits(self, day: date) -> list[str]:
        """The local subjects of the visits remembered for ``day``."""
        with self._lock:
            rows = self._conn.execute("SELECT subject FROM visits WHERE day = ? ORDER BY seq",
                                      (day.isoformat(),)).fetchall()
        return [str(r[0]) for r in rows]

    def subjects_in_use(self) -> list[str]:
        """Every local subject the register still holds (the keyring keeps their keys)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT subject FROM open_stays UNION SELECT subject FROM visits").fetchall()
        return [str(r[0]) for r in rows]

    def open_stays(self) -> list[OpenStay]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT stay_id, subject, ward_or_room, expected_departure, reason_code,"
                " started_at FROM open_stays ORDER BY started_at").fetchall()
        return [OpenStay(stay_id=uuid.UUID(r[0]), subject=r[1], ward_or_room=r[2],
                         expected_departure=date.fromisoformat(r[3]),
                         reason_code=StayReason(r[4]), started_at=datetime.fromisoformat(r[5]))
                for r in rows]

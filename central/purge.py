"""Retention purge per data class (docs/design.md §4: retention per data class; Decree 13/2023).

* events: rows whose ``occurred_at`` is older than ``retention.events`` are deleted, and their
  keys in the dedupe ledger (``event_keys``); their rollups stay (counts are not personal and
  reports must keep working), and closed presences of the same age go with them (they carry the
  pseudonymous subject). On a partitioned PostgreSQL ``events`` (central.db.partitions) the
  months entirely older than the horizon are detached and dropped whole, rows are deleted only
  in the boundary month and the DEFAULT partition, and the months ahead are created (the same
  maintenance as at ingest start);
* stays: the guest's personal data (``personal_sealed``) and the subject are erased once the stay
  ended (or, never ended, started) more than ``retention.stays`` ago; the row stays for the
  notice register, marked by ``personal_erased_at``;
* audit log and ingest rejections: deleted after their retention;
* login throttle rows (one per client address that ever failed a login): deleted once their
  window is a day old. The window is minutes long, so an older row throttles nothing, and a
  client address is personal data that is not kept without a use.

The seq bookkeeping survives an events purge: ``Device.contiguous_seq`` keeps the ingest from
storing a redelivered purged event again (it is refused as a replay).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, literal_column, or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from central.counting import rowcount, utc
from central.db.models import (
    AuditLog,
    Event,
    EventKey,
    IngestRejection,
    LoginThrottle,
    Presence,
    RefusedSeq,
    Stay,
)
from central.db.partitions import (
    DEFAULT,
    drop_partitions_before,
    ensure_partitions,
    is_partitioned,
    month,
)
from central.settings import Retention

log = logging.getLogger("central.purge")


@dataclass(frozen=True)
class PurgeReport:
    events: int
    presences: int
    stays_erased: int
    audit: int
    rejections: int
    throttle: int = 0
    partitions_dropped: tuple[str, ...] = ()
    """Month partitions of ``events`` dropped whole (their rows are counted in ``events``)."""
    partitions_created: tuple[str, ...] = ()


THROTTLE_KEEP = timedelta(days=1)
"""How long a login throttle row outlives its window's start (any window is far shorter)."""


def purge(session: Session, now: datetime, retention: Retention) -> PurgeReport:
    """Apply the retention rules as of ``now``; the caller commits."""
    now = utc(now)
    events_before = now - retention.events
    conn = session.connection()
    partitioned = is_partitioned(conn)
    if partitioned:  # rows of the boundary month, and any the DEFAULT partition caught
        boundary = month(events_before)
        events = rowcount(session, delete(Event).where(
            Event.occurred_at >= boundary.start, Event.occurred_at < events_before))
        events += rowcount(session, delete(Event).where(
            Event.occurred_at < boundary.start, *_in_default()))
    else:
        events = rowcount(session, delete(Event).where(Event.occurred_at < events_before))
    session.execute(delete(EventKey).where(EventKey.occurred_at < events_before))
    # Refused seqs settle gaps like stored events fill them: they go with the events' horizon.
    session.execute(delete(RefusedSeq).where(RefusedSeq.at < events_before))
    presences = rowcount(session, delete(Presence).where(
        Presence.exited_at.is_not(None), Presence.exited_at < events_before))
    stays_before = now - retention.stays
    stays = rowcount(session, update(Stay).where(
        Stay.personal_erased_at.is_(None),
        or_(Stay.ended_at < stays_before,
            and_(Stay.ended_at.is_(None), Stay.started_at < stays_before)))
        .values(personal_sealed=b"", subject=None, personal_erased_at=now))
    audit = rowcount(session, delete(AuditLog).where(AuditLog.at < now - retention.audit))
    rejections = rowcount(session, delete(IngestRejection).where(
        IngestRejection.at < now - retention.rejections))
    throttle = rowcount(session, delete(LoginThrottle).where(
        LoginThrottle.window_start < now - THROTTLE_KEEP))
    dropped: list[str] = []
    created: list[str] = []
    if partitioned:
        # Last: detaching a month locks ``events`` until the caller commits, so it is held
        # only for the end of the transaction; a lock not granted in time skips this part
        # (the rows stay until the next run: they are never counted again).
        try:
            with session.begin_nested():
                conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                created = ensure_partitions(conn, now, back=retention.events)
                dropped, rows = drop_partitions_before(conn, events_before)
                events += rows
        except OperationalError as exc:
            log.warning("partition maintenance skipped: %s", type(exc.orig).__name__)
    return PurgeReport(events, presences, stays, audit, rejections, throttle, tuple(dropped),
                       tuple(created))


def _in_default() -> tuple[ColumnElement[bool], ...]:
    """Restricts a statement on ``events`` to its DEFAULT partition (PostgreSQL's
    ``tableoid``): the months older than the boundary are dropped whole, not deleted."""
    return (literal_column("events.tableoid") == literal_column(f"'{DEFAULT}'::regclass"),)


def oldest_event(session: Session) -> datetime | None:
    value = session.execute(func.min(Event.occurred_at).select()).scalar()
    return utc(value) if value is not None else None

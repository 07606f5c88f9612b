"""Counting rules, applied inside the ingest transaction (the read side is central.readside).

* **Rollups** (:class:`central.db.models.Rollup`): one row per (site, UTC hour of
  ``occurred_at``, kind, method, age band, sex, birth province), incremented by ``count``
  (``people``) and by one (``events``). Keyed by ``occurred_at``, so a late event (an agent that
  was offline, docs/protocol.md §4.9) lands in the hour it happened. Unknown dimensions are
  ``''``. A ``manual`` event is rolled up under ``kind = "manual:<counts_as>"`` (``manual:entry``,
  ``manual:exit``, ``manual:visit``: docs/protocol.md §4.6) so its tally is not lost.
* **Occupancy**: entries (and ``manual`` counted as entry) open :class:`Presence` rows and add
  their people; an exit closes the latest open presence of the same ``subject`` at the site
  (manual exits: the oldest anonymous presences). An exit with nothing to close is recorded as
  a presence with ``closed_by = "orphan-exit"`` and never takes occupancy below zero; if its
  entry arrives later (events out of order) the two are paired without counting anyone in.
  :func:`close_out` closes presences still open at the site's close time (``close-time``).
* Every write is an atomic single-statement update or an ``INSERT … ON CONFLICT`` of the
  dialect (SQLite and PostgreSQL), so several ingest workers may count at once
  (docs/design.md §2.5).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Table,
    bindparam,
    case,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from central.db.bulk import insert_rows
from central.db.models import Event, EventKey, Presence, Rollup, Site, SiteOccupancy
from central.readside import CountRow, ReadError, counts

__all__ = ["CountRow", "counts"]  # the one implementation lives in central.readside

LOCAL = timezone(timedelta(hours=7), "UTC+07:00")
"""Vietnam's civil time (no daylight saving)."""



class CountingError(ReadError):
    """A counting request that cannot be answered (bad group, bad period, unknown site)."""


def utc(value: datetime) -> datetime:
    """Aware UTC (SQLite gives naive datetimes back: they are UTC by construction)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hour_of(value: datetime) -> datetime:
    return utc(value).replace(minute=0, second=0, microsecond=0)


def dialect_insert(session: Session, model: Any) -> Any:
    """``INSERT`` with ``on_conflict_do_*`` for the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def rowcount(session: Session, stmt: Executable) -> int:
    """Rows an UPDATE or DELETE touched (the conditional updates that make workers safe)."""
    result = session.execute(stmt)
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


# -- rollups ---------------------------------------------------------------------------------


def rollup_kind(message: dict[str, Any]) -> str:
    kind = str(message["kind"])
    if kind == "manual":
        return f"manual:{message['details'].get('counts_as', 'entry')}"
    return kind


def rollup_insurance(message: dict[str, Any]) -> str:
    """The rollup's insurance dimension: the lookup's answer for a visit, ``paper-card`` for a
    manual visit counted as ``paper-insurance`` (the paper BHYT card), else empty."""
    kind = message["kind"]
    if kind == "visit":
        return str((message.get("details") or {}).get("insurance") or "")
    if kind == "manual" and message.get("reason") == "paper-insurance" and \
            (message.get("details") or {}).get("counts_as") == "visit":
        return "paper-card"
    return ""


def add_rollups(session: Session, items: Iterable[tuple[dict[str, Any], datetime]]) -> int:
    """Add events (message, occurred_at) to the rollups; returns the number of keys touched."""
    totals: dict[tuple[str, datetime, str, str, str, str, str, str], list[int]] = defaultdict(
        lambda: [0, 0])
    for message, occurred_at in items:
        demo = message.get("demographics") or {}
        key = (str(message["site_id"]), hour_of(occurred_at), rollup_kind(message),
               str(message["method"]), demo.get("age_band") or "", demo.get("sex") or "",
               demo.get("birth_province") or "", rollup_insurance(message))
        totals[key][0] += int(message["count"])
        totals[key][1] += 1
    _upsert_rollups(session, totals)
    return len(totals)


def _upsert_rollups(session: Session, totals: dict[tuple[str, datetime, str, str, str, str,
                                                          str, str], list[int]]) -> None:
    table = Rollup.__table__
    for key in sorted(totals):  # a fixed order: two workers never wait on each other in a cycle
        people, events = totals[key]
        stmt = dialect_insert(session, Rollup).values(
            site_id=key[0], hour=key[1], kind=key[2], method=key[3], age_band=key[4],
            sex=key[5], birth_province=key[6], insurance=key[7], people=people, events=events)
        stmt = stmt.on_conflict_do_update(
            index_elements=["site_id", "hour", "kind", "method", "age_band", "sex",
                            "birth_province", "insurance"],
            set_={"people": table.c.people + people, "events": table.c.events + events})
        session.execute(stmt)


def move_insurance(session: Session, follow_ups: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Stored ``visit.insurance`` follow-ups (device_id, message): each moves its visit in the
    rollups from insurance ``unknown`` to the answer (docs/protocol.md §4.12), exactly once.

    A follow-up moves nothing when its visit is not stored (or is not a visit of the same
    device), was not ``unknown``, or another follow-up of the same visit with a lower ``seq``
    is stored (that one moved it). Returns the number of visits moved.
    """
    moved = 0
    totals: dict[tuple[str, datetime, str, str, str, str, str, str], list[int]] = defaultdict(
        lambda: [0, 0])
    for device_id, message in follow_ups:
        visit_id = str(message["details"]["visit_event_id"])
        # The ledger gives the visit's key and time: only its month's partition is read.
        key = session.execute(select(EventKey.seq, EventKey.occurred_at).where(
            EventKey.device_id == device_id, EventKey.event_id == visit_id)).first()
        visit = None if key is None else session.execute(select(Event).where(
            Event.device_id == device_id, Event.seq == key.seq,
            Event.occurred_at == key.occurred_at)).scalar_one_or_none()
        if visit is None or visit.kind != "visit" or (visit.details or {}).get(
                "insurance") != "unknown" or (visit.details or {}).get("training"):
            continue
        earlier = [seq for seq, details in session.execute(
            select(Event.seq, Event.details).where(
                Event.device_id == device_id, Event.kind == "visit.insurance",
                Event.seq < int(message["seq"])))
            if (details or {}).get("visit_event_id") == visit_id]
        if earlier:
            continue
        base = (visit.site_id, hour_of(visit.occurred_at), "visit", visit.method,
                visit.age_band or "", visit.sex or "", visit.birth_province or "")
        totals[(*base, "unknown")][0] -= visit.count
        totals[(*base, "unknown")][1] -= 1
        totals[(*base, str(message["details"]["insurance"]))][0] += visit.count
        totals[(*base, str(message["details"]["insurance"]))][1] += 1
        moved += 1
    _upsert_rollups(session, totals)
    return moved


# -- occupancy -------------------------------------------------------------------------------


def _bump(session: Session, site_id: str, delta: int, now: datetime) -> None:
    """occupancy := max(0, occupancy + delta), atomically."""
    col = SiteOccupancy.__table__.c.occupancy
    stmt = dialect_insert(session, SiteOccupancy).values(
        site_id=site_id, occupancy=max(delta, 0), updated_at=utc(now))
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id"],
        set_={"occupancy": case((col + delta < 0, 0), else_=col + delta),
              "updated_at": utc(now)})
    session.execute(stmt)


@dataclass(frozen=True)
class Movement:
    """What one event did to occupancy."""

    site_id: str
    entered: int = 0
    left: int = 0
    orphan: int = 0
    paired_late: bool = False


def _enter(session: Session, site_id: str, subject: str | None, people: int,
           at: datetime) -> Movement:
    if subject is not None:
        # An exit that arrived before its entry (out of order): pair them, count nobody in.
        orphan = session.execute(
            select(Presence.id).where(
                Presence.site_id == site_id, Presence.subject == subject,
                Presence.closed_by == "orphan-exit", Presence.exited_at >= at)
            .order_by(Presence.exited_at).limit(1)).scalar()
        if orphan is not None:
            done = rowcount(session, update(Presence).where(
                Presence.id == orphan, Presence.closed_by == "orphan-exit")
                .values(entered_at=at, closed_by="exit"))
            if done:
                return Movement(site_id, paired_late=True)
    session.add(Presence(site_id=site_id, subject=subject, people=people, entered_at=at,
                         exited_at=None, closed_by=None))
    return Movement(site_id, entered=people)


def _leave(session: Session, site_id: str, subject: str | None, people: int,
           at: datetime) -> Movement:
    left = 0
    remaining = people
    for _ in range(50):  # bounded: each pass consumes a presence or stops
        if remaining <= 0:
            break
        cond: ColumnElement[bool] = (Presence.subject == subject if subject is not None
                                     else Presence.subject.is_(None))
        order = (Presence.entered_at.desc() if subject is not None
                 else Presence.entered_at.asc())
        row = session.execute(
            select(Presence.id, Presence.people).where(
                Presence.site_id == site_id, cond, Presence.exited_at.is_(None),
                Presence.entered_at <= at)
            .order_by(order, Presence.id).limit(1)).first()
        if row is None:
            break
        pid, have = row
        take = min(have, remaining)
        values: dict[str, Any] = {"people": have - take} if take < have else {
            "exited_at": at, "closed_by": "exit"}
        done = rowcount(session, update(Presence).where(
            Presence.id == pid, Presence.exited_at.is_(None),
            Presence.people == have).values(**values))
        if done:  # else another worker took it first: look again
            left += take
            remaining -= take
    if remaining > 0:
        session.add(Presence(site_id=site_id, subject=subject, people=remaining,
                             entered_at=None, exited_at=at, closed_by="orphan-exit"))
    return Movement(site_id, left=left, orphan=remaining)


def apply_occupancy(session: Session, message: dict[str, Any], occurred_at: datetime,
                    now: datetime) -> Movement | None:
    """Entries, exits and manual counts of one stored event; ``None`` if it does not count."""
    kind = message["kind"]
    if kind == "manual":
        kind = message["details"].get("counts_as")
    if kind not in ("entry", "exit"):
        return None
    site_id = str(message["site_id"])
    at = utc(occurred_at)
    people = int(message["count"])
    subject = message.get("subject") if message["kind"] != "manual" else None
    session.flush()
    move = (_enter if kind == "entry" else _leave)(session, site_id, subject, people, at)
    if move.entered or move.left:
        _bump(session, site_id, move.entered - move.left, now)
    elif session.get(SiteOccupancy, site_id) is None:
        _bump(session, site_id, 0, now)
    return move


@dataclass
class _Row:
    id: int | None
    subject: str | None
    people: int
    entered_at: datetime | None
    exited_at: datetime | None
    closed_by: str | None
    dirty: bool = False


def apply_occupancy_batch(session: Session, items: Sequence[tuple[dict[str, Any], datetime]],
                          now: datetime, *, bump: bool = True) -> list[Movement]:
    """:func:`apply_occupancy` for many stored events at once (a few statements per site).

    The presences an exit or entry of the batch may pair with are read once per site and
    locked (``FOR UPDATE`` on PostgreSQL), paired in memory in ``occurred_at`` order, and
    written back with one ``executemany`` each for updates and inserts. ``bump=False`` leaves
    the occupancy rows to the caller (:func:`bump_occupancy`).
    """
    by_site: dict[str, list[tuple[str, str | None, int, datetime]]] = defaultdict(list)
    for message, occurred_at in items:
        kind = message["kind"]
        if kind == "manual":
            kind = message["details"].get("counts_as")
        if kind not in ("entry", "exit"):
            continue
        subject = message.get("subject") if message["kind"] != "manual" else None
        by_site[str(message["site_id"])].append(
            (kind, subject, int(message["count"]), utc(occurred_at)))
    moves: list[Movement] = []
    for site_id in sorted(by_site):
        todo = sorted(by_site[site_id], key=lambda t: t[3])
        subjects = sorted({t[1] for t in todo if t[1] is not None})
        anonymous_exit = any(t[1] is None and t[0] == "exit" for t in todo)
        conds: list[ColumnElement[bool]] = []
        if subjects:
            # By subject alone (ix_presences_subject), the site checked below: a planner
            # without statistics would otherwise pick the site index and scan every presence
            # of the site for each batch (docs/performance.md, collector ingest).
            conds.append(Presence.subject.in_(subjects))
        if anonymous_exit:
            conds.append(Presence.subject.is_(None) & (Presence.site_id == site_id))
        rows: list[_Row] = []
        if conds:
            found = session.execute(
                select(Presence.id, Presence.subject, Presence.people, Presence.entered_at,
                       Presence.exited_at, Presence.closed_by, Presence.site_id)
                .where((Presence.exited_at.is_(None)) | (Presence.closed_by == "orphan-exit"),
                       conds[0] if len(conds) == 1 else (conds[0] | conds[1]))
                .order_by(Presence.id).with_for_update()).all()
            rows = [_Row(r[0], r[1], r[2], utc(r[3]) if r[3] else None,
                         utc(r[4]) if r[4] else None, r[5]) for r in found if r[6] == site_id]
        by_subject: dict[str | None, list[_Row]] = defaultdict(list)
        for row in rows:
            by_subject[row.subject].append(row)
        entered = left = orphan = 0
        paired = False
        for kind, subject, people, at in todo:
            same = by_subject[subject]
            if kind == "entry":
                match = None
                if subject is not None:
                    candidates = [r for r in same if r.closed_by == "orphan-exit"
                                  and r.exited_at is not None and r.exited_at >= at]
                    match = min(candidates, key=lambda r: r.exited_at or at, default=None)
                if match is not None:
                    match.entered_at, match.closed_by, match.dirty = at, "exit", True
                    paired = True
                else:
                    fresh = _Row(None, subject, people, at, None, None, True)
                    rows.append(fresh)
                    same.append(fresh)
                    entered += people
                continue
            remaining = people
            open_rows = [r for r in same if r.exited_at is None and r.entered_at is not None
                         and r.entered_at <= at]
            open_rows.sort(key=lambda r: r.entered_at or at, reverse=subject is not None)
            for r in open_rows:
                if remaining <= 0:
                    break
                take = min(r.people, remaining)
                if take < r.people:
                    r.people -= take
                else:
                    r.exited_at, r.closed_by = at, "exit"
                r.dirty = True
                remaining -= take
                left += take
            if remaining > 0:
                orphan_row = _Row(None, subject, remaining, None, at, "orphan-exit", True)
                rows.append(orphan_row)
                same.append(orphan_row)
                orphan += remaining
        updates = [{"pid": r.id, "people": r.people, "entered_at": r.entered_at,
                    "exited_at": r.exited_at, "closed_by": r.closed_by}
                   for r in rows if r.dirty and r.id is not None]
        inserts = [{"site_id": site_id, "subject": r.subject, "people": r.people,
                    "entered_at": r.entered_at, "exited_at": r.exited_at,
                    "closed_by": r.closed_by} for r in rows if r.id is None]
        conn = session.connection()
        table = cast(Table, Presence.__table__)
        if updates:
            conn.execute(update(table).where(table.c.id == bindparam("pid")).values(
                people=bindparam("people"), entered_at=bindparam("entered_at"),
                exited_at=bindparam("exited_at"), closed_by=bindparam("closed_by")), updates)
        if inserts:
            insert_rows(session, table, inserts)
        moves.append(Movement(site_id, entered, left, orphan, paired))
    if bump:
        bump_occupancy(session, moves, now)
    return moves


def bump_occupancy(session: Session, moves: Sequence[Movement], now: datetime) -> None:
    """Apply the movements to each site's occupancy row, sites in id order.

    The ingest calls this last, just before its commit: the row is a hot spot that every
    worker's transaction on the site updates, so holding its lock briefly is what lets
    several PostgreSQL workers overlap (docs/design.md §2.5).
    """
    totals: dict[str, int] = defaultdict(int)
    for move in moves:
        totals[move.site_id] += move.entered - move.left
    for site_id in sorted(totals):
        if totals[site_id]:
            _bump(session, site_id, totals[site_id], now)
        elif session.get(SiteOccupancy, site_id) is None:
            _bump(session, site_id, 0, now)


# -- close-out -------------------------------------------------------------------------------


CLOSE_TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
"""``HH:MM``, 24-hour clock (the only close-time form the admin form accepts)."""


def parse_close_time(text: str) -> tuple[int, int]:
    """``HH:MM`` → (hour, minute); anything else → :class:`CountingError` naming the value."""
    match = CLOSE_TIME_RE.match(text or "")
    if match is None:
        raise CountingError(f"close time {text!r}: expected HH:MM (00:00 to 23:59)")
    return int(match.group(1)), int(match.group(2))


def last_close(now: datetime, close_time: str) -> datetime:
    """The most recent local close time at or before ``now`` (UTC)."""
    hh, mm = parse_close_time(close_time)
    local = utc(now).astimezone(LOCAL)
    at = datetime.combine(local.date(), time(hh, mm), LOCAL)
    if at > local:
        at -= timedelta(days=1)
    return at.astimezone(UTC)


@dataclass(frozen=True)
class CloseOut:
    """Visitors closed out at one site (reported: they never exited)."""

    site_id: str
    closed_at: datetime
    presences: int
    people: int


def close_out(session: Session, now: datetime, default_close_time: str = "23:00",
              site_ids: Sequence[str] | None = None) -> list[CloseOut]:
    """Close presences that entered before their site's last close time (``close-time``)."""
    query = select(Site.id, Site.close_time)
    if site_ids is not None:
        query = query.where(Site.id.in_(site_ids))
    report: list[CloseOut] = []
    for site_id, close_time in session.execute(query.order_by(Site.id)).all():
        try:
            at = last_close(now, close_time or default_close_time)
        except CountingError:
            # A malformed close time (stored before the form checked it) must not stop the
            # close-out of every other site: this one falls back to the default.
            at = last_close(now, default_close_time)
        rows = session.execute(
            select(Presence.id, Presence.people).where(
                Presence.site_id == site_id, Presence.exited_at.is_(None),
                Presence.entered_at < at)).all()
        people = count = 0
        for pid, have in rows:
            done = rowcount(session, update(Presence).where(
                Presence.id == pid, Presence.exited_at.is_(None))
                .values(exited_at=at, closed_by="close-time"))
            if done:
                people += have
                count += 1
        if count:
            _bump(session, site_id, -people, now)
            report.append(CloseOut(site_id, at, count, people))
    return report


# -- queries for the web ---------------------------------------------------------------------


@dataclass(frozen=True)
class Occupancy:
    site_id: str
    occupancy: int
    capacity: int | None
    updated_at: datetime | None


def occupancy(session: Session, site_id: str) -> Occupancy:
    """People inside ``site_id`` now (0 if nothing was ever counted there)."""
    row = session.execute(
        select(SiteOccupancy.occupancy, SiteOccupancy.updated_at, Site.capacity)
        .select_from(Site).outerjoin(SiteOccupancy, SiteOccupancy.site_id == Site.id)
        .where(Site.id == site_id)).first()
    if row is None:
        raise CountingError(f"no site {site_id!r}")
    occ, updated, capacity = row
    return Occupancy(site_id, int(occ or 0), capacity, utc(updated) if updated else None)


def orphan_exits(session: Session, site_ids: Sequence[str], start: datetime,
                 end: datetime) -> int:
    """People who exited without a recorded entry in ``[start, end)`` (reported, not counted)."""
    value = session.execute(
        select(func.coalesce(func.sum(Presence.people), 0)).where(
            Presence.site_id.in_(list(site_ids)), Presence.closed_by == "orphan-exit",
            Presence.exited_at >= utc(start), Presence.exited_at < utc(end))).scalar()
    return int(value or 0)


def closed_out(session: Session, site_ids: Sequence[str], start: datetime,
               end: datetime) -> int:
    """People closed out at close time (never exited) in ``[start, end)``."""
    value = session.execute(
        select(func.coalesce(func.sum(Presence.people), 0)).where(
            Presence.site_id.in_(list(site_ids)), Presence.closed_by == "close-time",
            Presence.exited_at >= utc(start), Presence.exited_at < utc(end))).scalar()
    return int(value or 0)


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """UTC bounds of a local (UTC+07:00) calendar day."""
    start = datetime.combine(day, time(0), LOCAL).astimezone(UTC)
    return start, start + timedelta(days=1)


# -- stays (docs/cccd.md §9) ----------------------------------------------------------------------


def stay_deadline(arrival: datetime) -> datetime:
    """Notice deadline: 23:00 local the same day; 08:00 next day for arrivals at 23:00 or later.

    Residence Law 2020 art. 30, Circular 55/2021/TT-BCA (docs/cccd.md §9); local time UTC+07:00.
    """
    local = utc(arrival).astimezone(LOCAL)
    if local.time() >= time(23, 0):
        deadline = datetime.combine(local.date() + timedelta(days=1), time(8, 0), LOCAL)
    else:
        deadline = datetime.combine(local.date(), time(23, 0), LOCAL)
    return deadline.astimezone(UTC)

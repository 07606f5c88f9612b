"""Storing a batch of messages in ONE transaction: events, counting, stays, seq, status.

Exactly once, in effect (docs/protocol.md §4.9): the events' keys are inserted with
``INSERT … ON CONFLICT DO NOTHING`` on the unique keys ``(device_id, event_id)`` and
``(device_id, seq)`` of the ledger :class:`~central.db.models.EventKey` (not partitioned, so
exact across the months of the partitioned ``events``), then the events whose key went in; a
conflicting copy with the same ``sig`` (Ed25519 is deterministic: same
content, same signature) is a duplicate and is acknowledged; another ``sig`` under the same
``event_id``, or another ``event_id`` under a stored ``seq``, is a ``replay``. Counting
(:mod:`central.counting`) runs only for rows actually inserted, in the same transaction, so a
redelivered message never counts twice.

Several workers (docs/design.md §2.5): the devices of a batch are locked in id order
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers), which serialises the seq
bookkeeping and gap alarms per device; all other writes are atomic upserts or conditional
updates. The hot rows (devices, rollups, occupancy) are written last, so their locks are held
only for the end of a transaction (:func:`process`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.signing import VerifyKey
from sqlalchemy import Table, delete, or_, select, update
from sqlalchemy.orm import Session

from central.at_rest import encrypt_personal
from central.counting import (
    Movement,
    add_rollups,
    apply_occupancy_batch,
    bump_occupancy,
    dialect_insert,
    move_insurance,
    rowcount,
    stay_deadline,
    utc,
)
from central.db.bulk import insert_rows
from central.db.models import (
    Alarm,
    Device,
    Event,
    EventKey,
    IngestRejection,
    RefusedSeq,
    Site,
    Stay,
)
from central.ingest.validate import (
    Decoded,
    DeviceView,
    Incoming,
    Reason,
    Rejection,
    ValidEvent,
    check_event,
    check_status,
    decode,
    parse_date,
    parse_time,
)
from central.subjects import SubjectKeys
from wire.kinds import FINAL_REFUSALS
from wire.signing import SignatureError, ed25519_public, verify_signature
from wire.topics import TOPIC_PREFIX, split_topic

log = logging.getLogger("central.ingest")


@dataclass(frozen=True)
class Suppressed:
    """Rejections of one device not recorded one by one during an interval (rate limit)."""

    device_id: str
    since: datetime
    until: datetime
    reasons: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.reasons.values())

    def detail(self) -> str:
        listed = ", ".join(f"{reason} × {n}" for reason, n in sorted(self.reasons.items()))
        return (f"{self.total} further rejections not recorded one by one between "
                f"{self.since.isoformat(timespec='seconds')} and "
                f"{self.until.isoformat(timespec='seconds')}: {listed}")


class RejectionLimiter:
    """Bounds the rejection rows and log lines one device can cause (docs/protocol.md §4.10).

    Per device (the topic's device level: the broker's ACL ties it to the certificate) and per
    ``interval``, the first ``rows`` rejections are recorded and logged one by one; the rest are
    only counted, per reason, and summed up in ONE ``rate-limited`` row and ONE log line when
    the interval ends. Only rejections are limited: a valid event is always stored (a flood
    costs the signature checks, never the events of the same or another device).
    """

    def __init__(self, interval: timedelta = timedelta(seconds=60), rows: int = 20) -> None:
        self.interval = interval
        self.rows = rows
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[datetime, int, dict[str, int]]] = {}

    def admit(self, device_id: str, reason: str, now: datetime) -> bool:
        """True: record this rejection; False: counted in the interval's summary only."""
        with self._lock:
            start, seen, suppressed = self._windows.get(device_id, (now, 0, {}))
            seen += 1
            if seen > self.rows:
                suppressed[reason] = suppressed.get(reason, 0) + 1
            self._windows[device_id] = (start, seen, suppressed)
            return seen <= self.rows

    def due(self, now: datetime, *, everything: bool = False) -> list[Suppressed]:
        """Close the intervals that have ended (all of them with ``everything``)."""
        out: list[Suppressed] = []
        with self._lock:
            for device_id, (start, _seen, suppressed) in list(self._windows.items()):
                if everything or now - start >= self.interval:
                    del self._windows[device_id]
                    if suppressed:
                        out.append(Suppressed(device_id, start, now, suppressed))
        return out


@dataclass(frozen=True)
class IngestContext:
    """What the store needs besides the session (keys and rules from the settings)."""

    centre_key: X25519PrivateKey | None
    data_key: bytes | None
    max_future_skew: timedelta
    seq_gap_grace: timedelta = timedelta(seconds=60)
    """A seq gap becomes a ``seq-gap`` alarm once it has lasted this long."""
    max_age: timedelta | None = None
    """An event (or status ``at``) older than this at receipt is ``too-old`` (the events'
    retention horizon in the worker: older events would be purged at once)."""
    limiter: RejectionLimiter | None = None
    """Rate limit of rejection rows and log lines (None: every rejection recorded)."""
    subjects: SubjectKeys | None = None
    """The centre's subject keys (:mod:`central.subjects`); None: subjects stored as sent and
    sealed subjects refused."""


@dataclass(frozen=True)
class Outcome:
    """The fate of one message: ``stored``, ``duplicate``, ``status`` or ``rejected``."""

    incoming: Incoming
    result: str
    rejection: Rejection | None = None
    recorded: bool = True
    """False for a rejection only counted (the device's rate limit): not stored, not logged."""


@dataclass
class BatchReport:
    outcomes: list[Outcome] = field(default_factory=list)
    movements: list[Movement] = field(default_factory=list)
    suppressed: list[Suppressed] = field(default_factory=list)
    """Intervals of the rejection limit that ended with this batch (logged once each)."""

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)


_KEY_CACHE: dict[bytes, VerifyKey] = {}


def _public(raw: bytes) -> VerifyKey:
    key = _KEY_CACHE.get(raw)
    if key is None:
        if len(_KEY_CACHE) > 100_000:
            _KEY_CACHE.clear()
        key = _KEY_CACHE[raw] = ed25519_public(raw)
    return key


def _read_devices(session: Session, ids: Sequence[str]) -> dict[str, Device]:
    """The registry rows of a batch's devices, not locked (for the checks)."""
    if not ids:
        return {}
    rows = session.execute(select(Device).where(Device.id.in_(sorted(ids)))).scalars().all()
    return {d.id: d for d in rows}


def _lock_devices(session: Session, ids: Sequence[str]) -> dict[str, Device]:
    """The same rows locked in id order and re-read.

    ``FOR NO KEY UPDATE`` on PostgreSQL, not ``FOR UPDATE``: the batch's event inserts already
    hold ``FOR KEY SHARE`` on these rows (the foreign key), which ``FOR UPDATE`` would conflict
    with, so two workers each holding one and wanting the other would deadlock (PostgreSQL
    docs, explicit locking, row-level lock modes).
    """
    if not ids:
        return {}
    rows = session.execute(select(Device).where(Device.id.in_(sorted(ids)))
                           .order_by(Device.id).with_for_update(key_share=True)
                           .execution_options(populate_existing=True)).scalars().all()
    return {d.id: d for d in rows}


def _view(device: Device | None, site_kinds: dict[str, str]) -> DeviceView | None:
    if device is None:
        return None
    return DeviceView(device.id, device.site_id, _public(bytes(device.signing_public_key)),
                      bool(device.revoked), site_kinds.get(device.site_id),
                      utc(device.revoked_at) if device.revoked_at else None,
                      utc(device.drain_until) if device.drain_until else None)


def _site_kinds(session: Session, site_ids: Sequence[str]) -> dict[str, str]:
    if not site_ids:
        return {}
    return {site_id: str(getattr(kind, "value", kind)) for site_id, kind in session.execute(
        select(Site.id, Site.kind).where(Site.id.in_(sorted(set(site_ids)))))}


class StayOwnerConflict(RuntimeError):
    """A stay row of another site or device appeared between the check and the upsert (a
    concurrent worker): the batch fails, is retried message by message, and the check then
    refuses the message (``stay-owner-mismatch``)."""


def _stay_owners(session: Session, candidates: list[tuple[ValidEvent, Device]]
                 ) -> dict[int, Rejection]:
    """Stay events whose ``stay_id`` belongs to another site or device (stored, or opened
    earlier in the batch): index → rejection. A stay belongs to the site and device whose event
    first created it (docs/protocol.md §4.10); nothing of it is overwritten by another."""
    stays = {i: str(ev.message["details"]["stay_id"]) for i, (ev, _d) in enumerate(candidates)
             if ev.message["kind"] in ("stay.start", "stay.end")
             and not is_training(ev.message)}
    if not stays:
        return {}
    owners: dict[str, tuple[str, str]] = {
        stay_id: (site_id, device_id) for stay_id, site_id, device_id in session.execute(
            select(Stay.stay_id, Stay.site_id, Stay.device_id).where(
                Stay.stay_id.in_(sorted(set(stays.values())))))}
    refused: dict[int, Rejection] = {}
    for index, stay_id in stays.items():
        ev = candidates[index][0]
        mine = (str(ev.message["site_id"]), ev.device_id)
        owner = owners.setdefault(stay_id, mine)
        if owner != mine:
            refused[index] = Rejection(
                Reason.STAY_OWNER_MISMATCH,
                f"stay {stay_id} belongs to another "
                f"{'site' if owner[0] != mine[0] else 'device'}", ev.device_id)
    return refused


def _insert_events(session: Session, candidates: list[tuple[ValidEvent, Device]]
                   ) -> list[str | Rejection]:
    """Insert the batch's events at once; one result per candidate, in order.

    Optimistic: new events (``seq`` above the device's contiguous prefix) are inserted with
    ``ON CONFLICT DO NOTHING … RETURNING`` and only the rows that did not go in are looked up
    (a redelivery, a replay, or a copy another worker stored meanwhile). Events at or below the
    prefix are looked up first: a redelivered copy is a duplicate, anything else a replay.
    Copies within the batch follow the fate of the first one.
    """
    results: list[str | Rejection | None] = [None] * len(candidates)
    first_of: dict[tuple[str, str], int] = {}
    seq_owner: dict[tuple[str, int], str] = {}
    copies: list[tuple[int, int]] = []
    below: list[int] = []
    fresh: list[int] = []
    for index, (ev, device) in enumerate(candidates):
        d, e, seq = ev.device_id, ev.event_id, ev.seq
        if (d, e) in first_of:
            copies.append((index, first_of[(d, e)]))
        elif (d, seq) in seq_owner:
            results[index] = Rejection(Reason.REPLAY,
                                       f"seq {seq} already taken by another event_id", d)
        else:
            first_of[(d, e)] = index
            seq_owner[(d, seq)] = e
            (below if seq <= device.contiguous_seq else fresh).append(index)
    revived = _revive_transient(session, candidates, below)
    if revived:
        below = [i for i in below if i not in revived]
        fresh += sorted(revived)
    inserted: set[tuple[str, str]] = set()
    if fresh:
        rows = [_event_row(candidates[i][0], candidates[i][1].seq_base) for i in fresh]
        # The keys first, in the unpartitioned ledger whose unique keys hold across months
        # (a concurrent copy waits here for the other transaction, then is skipped); the event
        # only for a key that went in.
        inserted = {(r[0], r[1]) for r in insert_rows(
            session, cast(Table, EventKey.__table__), [_key_row(row) for row in rows],
            returning=("device_id", "event_id"), skip_conflicts=True)}
        insert_rows(session, cast(Table, Event.__table__),
                    [row for row in rows if (row["device_id"], row["event_id"]) in inserted])
    lookup = below + [i for i in fresh
                      if (candidates[i][0].device_id, candidates[i][0].event_id) not in inserted]
    stored: dict[tuple[str, str], str | None] = {}
    taken: set[tuple[str, int]] = set()
    if lookup:
        wanted = [candidates[i][0] for i in lookup]
        for d, e, q, g in session.execute(select(
                EventKey.device_id, EventKey.event_id, EventKey.seq, EventKey.sig).where(
                EventKey.device_id.in_(sorted({ev.device_id for ev in wanted})),
                or_(EventKey.event_id.in_(sorted({ev.event_id for ev in wanted})),
                    EventKey.seq.in_(sorted({candidates[i][0].seq + candidates[i][1].seq_base
                                             for i in lookup}))))):
            stored[(d, e)] = g
            taken.add((d, q))
    for index in fresh:
        ev = candidates[index][0]
        if (ev.device_id, ev.event_id) in inserted:
            results[index] = "stored"
    for index in lookup:
        ev = candidates[index][0]
        key = (ev.device_id, ev.event_id)
        if key in stored:
            results[index] = "duplicate" if stored[key] == ev.message["sig"] else Rejection(
                Reason.REPLAY, f"event_id {ev.event_id} stored with other content",
                ev.device_id)
        elif (ev.device_id, ev.seq + candidates[index][1].seq_base) in taken:
            results[index] = Rejection(Reason.REPLAY,
                                       f"seq {ev.seq} already taken by another event_id",
                                       ev.device_id)
        elif ev.seq <= candidates[index][1].contiguous_seq:
            # Below the contiguous prefix every seq is (or was, before a purge) stored.
            results[index] = Rejection(
                Reason.REPLAY, f"seq {ev.seq} at or below the contiguous prefix (purged)",
                ev.device_id)
        else:  # not inserted, yet nothing conflicting is visible: a concurrent writer
            results[index] = Rejection(Reason.REPLAY, "conflicting copy stored concurrently",
                                       ev.device_id)
    for index, first in copies:
        ev, original = candidates[index][0], candidates[first][0]
        key = (ev.device_id, ev.event_id)
        outcome = results[first]
        if key in stored:  # compare with what the database holds
            same = stored[key] == ev.message["sig"]
        elif outcome == "stored":  # compare with the first copy, just inserted
            same = original.message["sig"] == ev.message["sig"]
        else:  # the first copy was refused: so is this one
            results[index] = outcome
            continue
        results[index] = "duplicate" if same else Rejection(
            Reason.REPLAY, f"event_id {ev.event_id} stored with other content", ev.device_id)
    assert all(r is not None for r in results)
    return cast(list[str | Rejection], results)


def _revive_transient(session: Session, candidates: list[tuple[ValidEvent, Device]],
                      below: list[int]) -> set[int]:
    """The indexes of ``below`` (seq at or below the device's prefix) whose seq the prefix
    passed only because it was refused for a reason that may pass later (``clock-skew``,
    ``site-mismatch``, ``sealed-stay-unopenable``: :data:`SETTLING` less the final refusals,
    docs/protocol.md §4.11.1). The device kept that event and sends it again; now it is
    inserted like a new one and its ``refused_seqs`` row goes (found by the chaos suite: a gate
    whose clock ran ahead had those events refused ``clock-skew``, then ``replay`` when they
    came again, lost for good)."""
    if not below:
        return set()
    transient = sorted(r.value for r in SETTLING if r.value not in FINAL_REFUSALS)
    wanted = {(candidates[i][0].device_id, candidates[i][0].seq + candidates[i][1].seq_base): i
              for i in below}
    found = {(d, int(q)) for d, q in session.execute(
        select(RefusedSeq.device_id, RefusedSeq.seq).where(
            RefusedSeq.device_id.in_(sorted({d for d, _q in wanted})),
            RefusedSeq.seq.in_(sorted({q for _d, q in wanted})),
            RefusedSeq.reason.in_(transient))).all()} & set(wanted)
    for device_id, seq in sorted(found):
        session.execute(delete(RefusedSeq).where(RefusedSeq.device_id == device_id,
                                                 RefusedSeq.seq == seq))
    return {wanted[key] for key in found}


def _event_row(ev: ValidEvent, seq_base: int = 0) -> dict[str, Any]:
    msg, demo = ev.message, ev.message["demographics"]
    return {
        "device_id": ev.device_id, "event_id": ev.event_id, "seq": seq_base + ev.seq,
        "site_id": msg["site_id"], "occurred_at": ev.occurred_at,
        "received_at": ev.received_at, "kind": msg["kind"], "method": msg["method"],
        "assurance": msg["assurance"], "subject": msg["subject"], "count": msg["count"],
        "age_band": demo["age_band"], "sex": demo["sex"],
        "birth_province": demo["birth_province"], "reason": msg["reason"],
        "details": ({**msg["details"], "training": True} if is_training(msg)
                    else msg["details"]), "sig": msg["sig"]}


def _key_row(row: dict[str, Any]) -> dict[str, Any]:
    """The ledger row (:class:`~central.db.models.EventKey`) of an event row."""
    return {name: row[name] for name in ("device_id", "seq", "event_id", "occurred_at", "sig")}


def is_training(message: dict[str, Any]) -> bool:
    """An event of a device in training mode (docs/protocol.md §4.13): stored with
    ``details.training`` set, never counted (rollups, occupancy, stays and their notices)."""
    return message.get("training") is True


def _store_stay(session: Session, ev: ValidEvent, data_key: bytes | None) -> None:
    msg, details = ev.message, ev.message["details"]
    stay_id = str(details["stay_id"])
    if data_key is None or ev.personal is None:
        raise RuntimeError("stay events need the data key and an opened box")
    sealed = encrypt_personal(data_key, stay_id, ev.personal)
    expected = parse_date(details["expected_departure"])
    values: dict[str, Any] = {
        "stay_id": stay_id, "site_id": msg["site_id"], "device_id": ev.device_id,
        "subject": msg["subject"], "started_at": ev.occurred_at,
        "ended_at": ev.occurred_at if msg["kind"] == "stay.end" else None,
        "expected_departure": expected, "ward_or_room": details["ward_or_room"],
        "reason_code": details["reason_code"],
        "deadline_at": stay_deadline(ev.occurred_at), "personal_sealed": sealed}
    stmt = dialect_insert(session, Stay).values(**values)
    if msg["kind"] == "stay.start":
        # The start is authoritative for arrival, deadline and the guest's data (an end may
        # have arrived first and created the row).
        update_set = {k: stmt.excluded[k] for k in (
            "subject", "started_at", "expected_departure", "ward_or_room", "reason_code",
            "deadline_at", "personal_sealed")}
    else:
        update_set = {"ended_at": stmt.excluded.ended_at}
    # Only the owner's row is updated (the check in process() refused the others; this guards
    # against a concurrent worker creating the row in between).
    written = session.execute(stmt.on_conflict_do_update(
        index_elements=["stay_id"], set_=update_set,
        where=(Stay.site_id == stmt.excluded.site_id)
        & (Stay.device_id == stmt.excluded.device_id)).returning(Stay.stay_id)).first()
    if written is None:
        raise StayOwnerConflict(f"stay {stay_id} is another site's or device's")


def _advance_seq(session: Session, device: Device, seqs: list[int], now: datetime,
                 grace: timedelta) -> None:
    """contiguous_seq / last_seq, and the ``seq-gap`` alarm.

    ``seqs`` are the device's seqs this batch stored or settled (signed events it refused: they
    can never arrive again, so a hole they leave is no lost event and the alarm, if raised,
    clears). Seqs count in the device's own numbering; ``events.seq`` and ``refused_seqs.seq``
    add the generation's ``seq_base``. Several workers sharing the subscription
    commit a device's events out of order, so a gap is normal for a moment: it is timed
    (``gap_since``) and becomes an alarm only when it outlives ``grace`` (here, at a later
    batch, or in :func:`check_seq_gaps` for a device that went quiet); the alarm is cleared
    when the gap fills. When nothing was stored above the prefix before the batch (the usual
    case), the new prefix follows from ``seqs`` alone and no query is needed.
    """
    contiguous, base = device.contiguous_seq, device.seq_base
    if device.last_seq > contiguous:
        above = set(seqs)
        for model in (EventKey, RefusedSeq):
            above.update(int(q) - base for q in session.execute(select(model.seq).where(
                model.device_id == device.id, model.seq > base + contiguous)
                .order_by(model.seq).limit(100_000)).scalars())
        ordered = sorted(above)
    else:
        ordered = sorted(set(seqs))
    for s in ordered:
        if s != contiguous + 1:
            break
        contiguous = s
    last = max(device.last_seq, max(seqs, default=0))
    device.contiguous_seq = contiguous
    device.last_seq = last
    since = utc(device.gap_since) if device.gap_since is not None else None
    if last > contiguous:
        if since is None:
            device.gap_since = now
        elif now - since >= grace:
            _raise_gap_alarm(session, device, now)
    elif since is not None:
        device.gap_since = None
        if now - since >= grace:  # an alarm may have been raised: clear it
            rowcount(session, update(Alarm).where(
                Alarm.kind == "seq-gap", Alarm.device_id == device.id,
                Alarm.cleared_at.is_(None)).values(cleared_at=now))
            log.info("seq gap on %s filled up to %d", device.id, contiguous)


def _raise_gap_alarm(session: Session, device: Device, now: datetime) -> None:
    detail = {"missing_from": device.contiguous_seq + 1, "last_seq": device.last_seq}
    open_alarm = session.execute(select(Alarm).where(
        Alarm.kind == "seq-gap", Alarm.device_id == device.id,
        Alarm.cleared_at.is_(None))).scalars().first()
    if open_alarm is None:
        session.add(Alarm(kind="seq-gap", device_id=device.id, site_id=device.site_id,
                          raised_at=now, cleared_at=None, detail=detail))
        log.warning("seq gap on %s: missing from %d (last %d)", device.id,
                    device.contiguous_seq + 1, device.last_seq)
    elif open_alarm.detail != detail:
        open_alarm.detail = detail


def check_seq_gaps(session: Session, now: datetime, grace: timedelta) -> list[str]:
    """Raise the ``seq-gap`` alarm of devices whose gap has outlived ``grace`` (periodic job:
    a device that stopped publishing gets no further batch to raise it)."""
    raised: list[str] = []
    devices = session.execute(select(Device).where(
        Device.gap_since.is_not(None), Device.gap_since <= now - grace)
        .order_by(Device.id).with_for_update(key_share=True)).scalars().all()
    for device in devices:
        if device.last_seq > device.contiguous_seq:
            _raise_gap_alarm(session, device, now)
            raised.append(device.id)
    return raised


def _apply_status(session: Session, decoded: Decoded, device: Device, now: datetime,
                  max_future_skew: timedelta) -> None:
    msg = decoded.message
    if msg["state"] == "online":
        at = parse_time(msg["at"])
        health = device.health or {}
        previous = _stored_time(health.get("at"))
        # A stored ``at`` beyond the skew limit (accepted before the bound existed) is no
        # reference: it would hide every later heartbeat.
        if previous is not None and at < previous <= now + max_future_skew:
            return  # an older heartbeat delivered late (another worker, a redelivery)
        device.state = "online"
        device.last_seen = min(at, now) if decoded.incoming.retain else now
        device.version = msg["version"]
        device.outbox_depth = msg["outbox_depth"]
        oldest = msg["oldest_undelivered_at"]
        device.oldest_undelivered_at = parse_time(oldest) if oldest else None
        device.health = {k: msg[k] for k in (
            "at", "readers", "scanners", "last_seq", "uptime_s", "heartbeat_s", "outbox_bytes",
            "unreceipted", "oldest_unreceipted_at")
            if k in msg}
        rowcount(session, update(Alarm).where(
            Alarm.kind == "offline", Alarm.device_id == device.id,
            Alarm.cleared_at.is_(None)).values(cleared_at=now))
    else:
        device.state = "offline"
        if msg.get("version"):
            device.version = msg["version"]
        raise_offline_alarm(session, device, now, msg.get("reason") or "offline-status")


def _stored_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None


def raise_offline_alarm(session: Session, device: Device, now: datetime, reason: str) -> None:
    exists = session.execute(select(Alarm.id).where(
        Alarm.kind == "offline", Alarm.device_id == device.id,
        Alarm.cleared_at.is_(None))).first()
    if exists is None:
        session.add(Alarm(kind="offline", device_id=device.id, site_id=device.site_id,
                          raised_at=now, cleared_at=None, detail={"reason": reason}))


def process(session: Session, batch: Sequence[Incoming], ctx: IngestContext,
            now: datetime | None = None) -> BatchReport:
    """Validate and store ``batch`` in the session's current transaction (the caller commits).

    Returns one outcome per message, in order; the caller acknowledges them all after the
    commit (a rejected message is acknowledged too: it would be refused again forever).

    Order of work, so that several workers overlap (docs/design.md §2.5): checks against an
    unlocked read of the registry; then the inserts, which conflict only on the same event or
    subject; then, last and briefly, the rows every transaction of a device or site updates,
    each kind in key order so two workers never wait on each other in a cycle: the devices
    (``FOR UPDATE``, re-read: seq bookkeeping, statuses, last seen), the rollups, the
    occupancy rows. A stale unlocked read is harmless: ``contiguous_seq`` only grows, and a
    lower value only sends more events through the conflict-checked insert.
    """
    now = utc(now or datetime.now(UTC))
    report = BatchReport()
    decoded = [decode(m) for m in batch]
    ids = sorted({d.device_id for d in decoded if isinstance(d, Decoded)}
                 | {d.device_id for d in decoded if isinstance(d, Rejection)
                    and d.reason is Reason.SCHEMA and d.device_id})
    devices = _read_devices(session, ids)
    kinds = _site_kinds(session, [d.site_id for d in devices.values()])
    views = {device_id: _view(device, kinds) for device_id, device in devices.items()}
    stored: list[ValidEvent] = []
    candidates: list[tuple[ValidEvent, Device]] = []
    statuses: list[Decoded] = []
    rejections: list[tuple[Incoming, Rejection]] = []
    settled: list[tuple[str, int, str]] = []
    for incoming, item in zip(batch, decoded, strict=True):
        if isinstance(item, Rejection):
            rejections.append((incoming, item))
            if item.reason is Reason.SCHEMA:
                signed = _signed_seq(incoming, item, views)
                if signed is not None:
                    settled.append((signed[0], signed[1], item.reason.value))
            continue
        device = devices.get(item.device_id)
        if item.kind == "status":
            rejected = check_status(item, views.get(item.device_id),
                                    max_future_skew=ctx.max_future_skew, max_age=ctx.max_age)
            if rejected is not None:
                rejections.append((incoming, rejected))
                continue
            statuses.append(item)
            continue
        checked = check_event(item, views.get(item.device_id),
                              max_future_skew=ctx.max_future_skew, centre_key=ctx.centre_key,
                              max_age=ctx.max_age, subjects=ctx.subjects)
        if isinstance(checked, Rejection):
            rejections.append((incoming, checked))
            if checked.reason in SETTLING:
                settled.append((item.device_id, int(item.message["seq"]),
                                checked.reason.value))
            continue
        assert device is not None
        if checked.personal is not None and ctx.data_key is None:
            rejections.append((incoming, Rejection(
                Reason.SEALED_STAY_UNOPENABLE, "collector has no data key", device.id)))
            settled.append((device.id, checked.seq, Reason.SEALED_STAY_UNOPENABLE.value))
            continue
        candidates.append((checked, device))
    foreign = _stay_owners(session, candidates)
    if foreign:
        rejections.extend((candidates[i][0].incoming, r) for i, r in sorted(foreign.items()))
        settled.extend((candidates[i][0].device_id, candidates[i][0].seq, r.reason.value)
                       for i, r in sorted(foreign.items()))
        candidates = [c for i, c in enumerate(candidates) if i not in foreign]
    for (checked, _device), result in zip(candidates,
                                          _insert_events(session, candidates), strict=True):
        if isinstance(result, Rejection):
            rejections.append((checked.incoming, result))
            continue
        if result == "stored":
            stored.append(checked)
            if checked.message["kind"] in ("stay.start", "stay.end") and \
                    not is_training(checked.message):
                _store_stay(session, checked, ctx.data_key)
        report.outcomes.append(Outcome(checked.incoming, result))
    # Training events (docs/protocol.md §4.13) are stored for the seq bookkeeping only, marked,
    # and never counted; a visit.insurance follow-up (§4.12) moves its visit's insurance
    # dimension instead of counting.
    items = [(ev.message, ev.occurred_at) for ev in stored
             if not is_training(ev.message) and ev.message["kind"] != "visit.insurance"]
    follow_ups = [(ev.device_id, ev.message) for ev in stored
                  if not is_training(ev.message) and ev.message["kind"] == "visit.insurance"]
    if items:
        report.movements.extend(apply_occupancy_batch(session, items, now, bump=False))
    # The hot rows, last: devices, rollups, occupancy.
    seen = sorted({ev.device_id for ev, _ in candidates} | {d.device_id for d in statuses}
                  | {d for d, _q, _r in settled if d in devices})
    locked = _lock_devices(session, seen)
    for item in statuses:
        _apply_status(session, item, locked[item.device_id], now, ctx.max_future_skew)
        report.outcomes.append(Outcome(item.incoming, "status"))
    for device_id in sorted({ev.device_id for ev, _ in candidates}):
        device = locked[device_id]
        device.last_seen = max(utc(device.last_seen), now) if device.last_seen else now
    by_device: dict[str, list[int]] = {}
    for ev in stored:
        by_device.setdefault(ev.device_id, []).append(ev.seq)
    for device_id, seq, reason in settled:
        device = locked.get(device_id)
        if device is None or seq <= device.contiguous_seq:
            continue
        session.execute(dialect_insert(session, RefusedSeq).values(
            device_id=device_id, seq=device.seq_base + seq, reason=reason, at=now)
            .on_conflict_do_nothing())
        by_device.setdefault(device_id, []).append(seq)
    for device_id in sorted(by_device):
        _advance_seq(session, locked[device_id], by_device[device_id], now, ctx.seq_gap_grace)
    if items:
        add_rollups(session, items)
        bump_occupancy(session, report.movements, now)
    if follow_ups:
        move_insurance(session, follow_ups)
    if ctx.limiter is not None:  # intervals that ended before this batch's rejections
        report.suppressed.extend(record_suppressed(session, ctx.limiter.due(now), now))
    for incoming, rejection in rejections:
        report.outcomes.append(record_rejection(session, incoming, rejection, ctx, now))
    session.flush()
    order = {id(m): i for i, m in enumerate(batch)}
    report.outcomes.sort(key=lambda o: order[id(o.incoming)])
    return report


SETTLING = frozenset({Reason.SITE_MISMATCH, Reason.CLOCK_SKEW, Reason.TOO_OLD,
                      Reason.KIND_NOT_FOR_SITE, Reason.SEALED_STAY_UNOPENABLE,
                      Reason.SEALED_SUBJECT_UNOPENABLE, Reason.STAY_OWNER_MISMATCH})
"""Refusals of an event whose signature verified: the device did sign that seq, and it will
never be accepted, so the seq is settled for the gap alarm (a ``replay`` seq is settled by the
stored event, a bad signature proves nothing, a revoked device's gaps do not matter)."""


def _signed_seq(incoming: Incoming, rejection: Rejection,
                views: dict[str, DeviceView | None]) -> tuple[str, int] | None:
    """The device and seq of a schema-refused event whose signature still verifies under the
    device's key (an event the device did sign, e.g. with a kind the collector does not know);
    None for anything unsigned or forged, which must not hide a lost event."""
    where = split_topic(incoming.topic)
    view = views.get(rejection.device_id or "")
    if where is None or where[1] != "event" or view is None or view.revoked:
        return None
    try:
        message = json.loads(incoming.payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or message.get("device_id") != view.id:
        return None
    seq = message.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq < 2**53:
        return None
    try:
        verify_signature(message, view.public_key)
    except (SignatureError, ValueError, TypeError, RecursionError):
        return None
    return view.id, seq


def _limit_key(incoming: Incoming, rejection: Rejection) -> str:
    where = split_topic(incoming.topic)
    return rejection.device_id or (where[0] if where else "?")


def record_rejection(session: Session, incoming: Incoming, rejection: Rejection,
                     ctx: IngestContext, now: datetime) -> Outcome:
    """A rejection row, unless the device's rate limit says only to count it."""
    if ctx.limiter is not None and not ctx.limiter.admit(_limit_key(incoming, rejection),
                                                         rejection.reason.value, now):
        return Outcome(incoming, "rejected", rejection, recorded=False)
    device_id = rejection.device_id[:64] if rejection.device_id else None
    session.add(IngestRejection(at=now, reason=rejection.reason.value,
                                topic=incoming.topic[:200], device_id=device_id,
                                detail=printable(rejection.detail)))
    return Outcome(incoming, "rejected", rejection)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(detail: str) -> str:
    """A detail with its control characters (a member name quoted in a schema message) as
    ``\\xNN``: PostgreSQL text refuses NUL, and logs should not carry the others."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", detail)


def record_suppressed(session: Session, suppressed: list[Suppressed],
                      now: datetime) -> list[Suppressed]:
    """One ``rate-limited`` row per device whose interval ended with rejections only counted."""
    for item in suppressed:
        session.add(IngestRejection(at=now, reason=Reason.RATE_LIMITED.value,
                                    topic=f"{TOPIC_PREFIX}/{item.device_id}"[:200],
                                    device_id=item.device_id[:64] if item.device_id != "?"
                                    else None,
                                    detail=item.detail()))
    return suppressed


def dead_letter(session: Session, incoming: Incoming, exc: BaseException, ctx: IngestContext,
                now: datetime | None = None) -> Outcome:
    """Record a message that made the store fail on its own (a database refusal, a bug) as a
    ``dead-letter`` rejection naming its device, the error class and, when readable, its
    ``event_id`` and ``seq``; the caller acknowledges it, so it blocks nothing any more."""
    where = split_topic(incoming.topic)
    device_id = where[0] if where else None
    ident = ""
    try:
        decoded = decode(incoming)
        if isinstance(decoded, Decoded) and decoded.kind == "event":
            ident = f" (event_id {decoded.message['event_id']}, seq {decoded.message['seq']})"
    except Exception:  # the record must be written whatever the message
        ident = " (undecodable)"
    cause = getattr(exc, "orig", None) or exc  # the driver's class, e.g. NumericValueOutOfRange
    rejection = Rejection(Reason.DEAD_LETTER, f"{type(cause).__name__}{ident}", device_id)
    return record_rejection(session, incoming, rejection, ctx, utc(now or datetime.now(UTC)))

"""Receipts (wire v2, docs/protocol.md §4.11): after a batch commits, tell each device what the
centre holds of its events.

A receipt goes to ``checkin/v1/<device_id>/receipts`` (QoS 1, **retained**; only collector
identities may write it, the device may only read its own, docs/protocol.md §3) and says:

* ``committed_through``: the device's contiguous committed prefix (``devices.contiguous_seq``,
  read after the commit): every ``seq`` up to it is held;
* ``committed``: inclusive ``[from, to]`` ranges of this batch's stored or duplicate events
  above that prefix (held, but after a gap);
* ``rejected``: ``{seq, event_id, reason}`` of this batch's events refused **for good**
  (:data:`FINAL_REASONS`); the device settles them and never sends them again. A refusal that
  may pass later (unknown device, clock skew, no data key, internal error…) is not receipted:
  the device resends after its timeout.

Catch-up without any request message: the receipt is retained, so a device that reconnects gets
the latest ``committed_through`` at SUBSCRIBE (MQTT 5 §3.3.1.3); what it still holds unreceipted
it sends again, and a duplicate is answered like a fresh event (the store is idempotent on
``(device_id, event_id)``, docs/protocol.md §4.9). Several workers may publish receipts of one
device out of order: ``committed_through`` only grows and the device keeps the highest.

:func:`build_receipts` is pure (no I/O); :class:`ReceiptPublisher` reads the prefixes and
publishes, and never raises into the batch loop (a lost receipt only costs a resend).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.models import Device, RefusedSeq
from central.ingest.store import BatchReport, Outcome
from central.ingest.validate import Reason
from wire.kinds import FINAL_REFUSALS
from wire.topics import receipts_topic

log = logging.getLogger("central.ingest.receipts")

RECEIPT_VERSION = 2
FINAL_REASONS = frozenset(Reason(reason) for reason in sorted(FINAL_REFUSALS))
"""Refusals that the same bytes would meet again whenever they were sent (an event only grows
older; a site keeps its kind; a stay keeps its owner): settled by the device. The others
(``unknown-device``, ``revoked-device``, ``site-mismatch``, ``clock-skew``,
``sealed-stay-unopenable``, ``dead-letter``) depend on the registry, the clock or the
collector's configuration and may pass later, so the device keeps and resends the event.
The set is the wire package's (:data:`wire.kinds.FINAL_REFUSALS`), the one the agent accepts: a
receipt naming a reason the agent did not know was ignored whole, commits included, and its
events sent again until refused as ``replay`` (found by the chaos suite's clock fault)."""
MAX_RANGES = 128
MAX_REJECTED = 64
"""Bounds that keep a receipt well under 16 KiB; what does not fit is answered again when the
device resends it."""

_EVENTS_TOPIC = re.compile(r"^checkin/v1/([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)/events$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_SEQ = 2 ** 53 - 1


@dataclass
class DeviceBatch:
    """What one batch settled for one device."""

    held: set[int] = field(default_factory=set)
    rejected: dict[int, tuple[str, str]] = field(default_factory=dict)
    """seq → (event_id, reason)."""


def _envelope(payload: bytes) -> tuple[int, str] | None:
    """``(seq, event_id)`` of an event payload, or None when it carries no usable pair."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    seq, event_id = body.get("seq"), body.get("event_id")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        return None
    if not isinstance(event_id, str) or not _UUID.match(event_id):
        return None
    return seq, event_id


def collect(outcomes: Iterable[Outcome]) -> dict[str, DeviceBatch]:
    """Group a batch's event outcomes by the device of their topic (the ACL vouches for it)."""
    batches: dict[str, DeviceBatch] = {}
    for outcome in outcomes:
        match = _EVENTS_TOPIC.match(outcome.incoming.topic)
        if match is None:
            continue  # a status, or a topic that names no device
        if outcome.result in ("stored", "duplicate"):
            pair = _envelope(outcome.incoming.payload)
            if pair is not None:
                batches.setdefault(match[1], DeviceBatch()).held.add(pair[0])
        elif outcome.result == "rejected" and outcome.rejection is not None \
                and outcome.rejection.reason in FINAL_REASONS:
            pair = _envelope(outcome.incoming.payload)
            if pair is not None:
                batches.setdefault(match[1], DeviceBatch()).rejected[pair[0]] = (
                    pair[1], outcome.rejection.reason.value)
    return batches


def ranges_above(seqs: Iterable[int], floor: int) -> list[list[int]]:
    """Inclusive ``[from, to]`` runs of the ``seqs`` above ``floor``, ascending."""
    runs: list[list[int]] = []
    for seq in sorted(s for s in set(seqs) if s > floor):
        if runs and runs[-1][1] == seq - 1:
            runs[-1][1] = seq
        else:
            runs.append([seq, seq])
    return runs


def build_receipt(device_id: str, committed_through: int, batch: DeviceBatch,
                  at: datetime) -> dict[str, Any]:
    """The receipt message (schema ``receipt.v2``) for one device."""
    rejected = [{"seq": seq, "event_id": event_id, "reason": reason}
                for seq, (event_id, reason) in sorted(batch.rejected.items())]
    return {
        "v": RECEIPT_VERSION,
        "device_id": device_id,
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "committed_through": committed_through,
        "committed": ranges_above(batch.held, committed_through)[:MAX_RANGES],
        "rejected": rejected[:MAX_REJECTED],
    }


def build_receipts(batches: Mapping[str, DeviceBatch], prefixes: Mapping[str, int],
                   at: datetime) -> dict[str, dict[str, Any]]:
    """Receipts of the registered devices among ``batches`` (pure)."""
    return {device_id: build_receipt(device_id, prefixes[device_id], batch, at)
            for device_id, batch in sorted(batches.items()) if device_id in prefixes}


def encode(receipt: Mapping[str, Any]) -> bytes:
    return json.dumps(receipt, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


class _Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Any: ...


class ReceiptPublisher:
    """Publishes the receipts of committed batches (called by the worker after its PUBACKs)."""

    def __init__(self, sessions: Callable[[], Session], client: _Publisher) -> None:
        self._sessions = sessions
        self._client = client

    def prefixes(self, device_ids: Sequence[str]) -> dict[str, int]:
        """``committed_through`` per device: its contiguous prefix, cut before the first seq
        the centre refused for a reason that may pass later (``refused_seqs`` closes seq gaps
        for every signed refusal, but only a final one may be settled by the device)."""
        transient = sorted(r.value for r in Reason if r not in FINAL_REASONS)
        with self._sessions() as session:
            rows = session.execute(select(Device.id, Device.contiguous_seq, Device.seq_base)
                                   .where(Device.id.in_(sorted(device_ids)))).all()
            out: dict[str, int] = {}
            for device_id, contiguous, base in rows:
                first = session.execute(select(func.min(RefusedSeq.seq)).where(
                    RefusedSeq.device_id == device_id, RefusedSeq.reason.in_(transient),
                    RefusedSeq.seq > int(base or 0),
                    RefusedSeq.seq <= int(base or 0) + int(contiguous))).scalar()
                out[device_id] = int(contiguous) if first is None \
                    else int(first) - int(base or 0) - 1
        return out

    def send(self, report: BatchReport, now: datetime | None = None) -> int:
        """Publish one receipt per device of ``report``; the number published. Never raises."""
        try:
            batches = collect(report.outcomes)
            if not batches:
                return 0
            receipts = build_receipts(batches, self.prefixes(list(batches)),
                                      now or datetime.now(UTC))
            for device_id, receipt in receipts.items():
                self._client.publish(receipts_topic(device_id),
                                     encode(receipt), qos=1, retain=True)
            return len(receipts)
        except Exception:  # a lost receipt only makes the device resend
            log.exception("receipts of a committed batch not published")
            return 0

"""Rejected events from unreadable or junk scans, bounded apart from real events.

A scanner pointed at a poster, or a prankster with a phone, would otherwise fill an offline
outbox with ``rejected`` events and leave no room for real entries (the outbox bound counts every
row). :class:`RejectedBudget` lets at most ``per_minute`` such events a minute into the outbox
(a token bucket) and none while ``max_pending`` of them wait undelivered; the rest are shown on
the kiosk and counted (``checkin_rejected_dropped_total``) but not stored. Pure: time and the
pending count are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from edge_agent.events.model import EventDraft, EventKind

JUNK_REASONS = frozenset({"qr-invalid"})
"""Reason codes of a scan that identified nobody (docs/protocol.md, rejected reasons)."""


def is_junk(drafts: Sequence[EventDraft]) -> bool:
    """Whether a presentation's drafts are only the rejection of an unreadable scan."""
    return bool(drafts) and all(d.kind is EventKind.REJECTED and d.reason in JUNK_REASONS
                                for d in drafts)


class RejectedBudget:
    """Token bucket (``per_minute``, burst of the same size) plus a bound on pending ones."""

    def __init__(self, per_minute: int, max_pending: int) -> None:
        if per_minute < 0 or max_pending < 0:
            raise ValueError("per_minute and max_pending must not be negative")
        self.per_minute = per_minute
        self.max_pending = max_pending
        self._tokens = float(per_minute)
        self._at: float | None = None

    def admit(self, now: float, pending: int) -> bool:
        """Whether one more junk rejection may be stored now, ``pending`` already waiting."""
        if self._at is not None:
            self._tokens = min(float(self.per_minute),
                               self._tokens + (now - self._at) * self.per_minute / 60.0)
        self._at = now
        if pending >= self.max_pending or self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

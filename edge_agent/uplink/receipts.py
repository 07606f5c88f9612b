"""The centre's receipts as the device reads them (wire v2, docs/protocol.md §4.11).

Pure: :func:`parse_receipt` turns the payload of ``checkin/v1/<device_id>/receipts`` into a
:class:`Receipt` or raises :class:`ReceiptError` with the member at fault. It checks what the
schema ``receipt.v2`` says (the agent does not import the collector's package) plus that the
receipt names this device.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from wire.kinds import FINAL_REFUSALS

RECEIPT_VERSION = 2
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_SEQ = 2 ** 53 - 1
MAX_RANGES = 128
MAX_REJECTED = 64
FINAL_REASONS = FINAL_REFUSALS
"""What a receipt may name as refused for good: the wire package's set, the collector's."""
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MEMBERS = frozenset({"v", "device_id", "at", "committed_through", "committed", "rejected"})


class ReceiptError(ValueError):
    """A receipt that breaks docs/protocol.md §4.11 (ignored, logged without content)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    committed_through: int
    committed: tuple[tuple[int, int], ...]
    rejected: tuple[tuple[int, str, str], ...]
    """``(seq, event_id, reason)`` of events refused for good."""


def _seq(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_SEQ:
        raise ReceiptError(f"{where}: not an integer from {minimum} to 2^53-1")
    return value


def parse_receipt(payload: bytes, device_id: str) -> Receipt:
    """The receipt in ``payload`` for ``device_id``; :class:`ReceiptError` otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ReceiptError(f"$: {len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReceiptError(f"$: not UTF-8 JSON ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise ReceiptError("$: not a JSON object")
    extra = set(body) - _MEMBERS
    missing = _MEMBERS - set(body)
    if extra or missing:
        raise ReceiptError(f"$: member set wrong (unknown {sorted(extra)}, "
                           f"missing {sorted(missing)})")
    if body["v"] != RECEIPT_VERSION or isinstance(body["v"], bool):
        raise ReceiptError(f"$.v: not {RECEIPT_VERSION}")
    if body["device_id"] != device_id:
        raise ReceiptError("$.device_id: another device's receipt")
    if not isinstance(body["at"], str):
        raise ReceiptError("$.at: not a string")
    through = _seq(body["committed_through"], "$.committed_through", minimum=0)
    runs = body["committed"]
    if not isinstance(runs, list) or len(runs) > MAX_RANGES:
        raise ReceiptError(f"$.committed: not a list of at most {MAX_RANGES} ranges")
    committed: list[tuple[int, int]] = []
    for i, run in enumerate(runs):
        if not isinstance(run, list) or len(run) != 2:
            raise ReceiptError(f"$.committed[{i}]: not a [from, to] pair")
        lo, hi = _seq(run[0], f"$.committed[{i}][0]"), _seq(run[1], f"$.committed[{i}][1]")
        if lo > hi:
            raise ReceiptError(f"$.committed[{i}]: from is above to")
        committed.append((lo, hi))
    items = body["rejected"]
    if not isinstance(items, list) or len(items) > MAX_REJECTED:
        raise ReceiptError(f"$.rejected: not a list of at most {MAX_REJECTED} items")
    rejected: list[tuple[int, str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"seq", "event_id", "reason"}:
            raise ReceiptError(f"$.rejected[{i}]: not an object of seq, event_id, reason")
        seq = _seq(item["seq"], f"$.rejected[{i}].seq")
        event_id, reason = item["event_id"], item["reason"]
        if not isinstance(event_id, str) or not _UUID.match(event_id):
            raise ReceiptError(f"$.rejected[{i}].event_id: not a lower-case UUID")
        if reason not in FINAL_REASONS:
            raise ReceiptError(f"$.rejected[{i}].reason: not a final rejection reason")
        rejected.append((seq, event_id, reason))
    return Receipt(through, tuple(committed), tuple(rejected))


@dataclass(slots=True)
class ReceiptProgress:
    """When receipts last settled a new event, for the resend hold-back (§4.11.2).

    Pure (the caller passes a monotonic ``now``). Receipts are *advancing* while some receipt
    settled a new event within the last ``timeout_s``: the centre is working through this
    device's events, so sent events above the highest receipted ``seq`` are most likely
    still queued at the broker and resending them would only crowd that queue. Only gaps
    below it are resent then; after a full timeout without progress everything unreceipted
    is. Nothing is held back forever: either receipts stop advancing, or they pass a lost
    event's ``seq`` and it becomes a gap.
    """

    timeout_s: float
    last_progress: float | None = None
    """Monotonic time of the last receipt that settled something (None: none yet)."""

    def settled(self, count: int, now: float) -> None:
        """Record that a receipt settled ``count`` new events at ``now``."""
        if count > 0:
            self.last_progress = now

    def advancing(self, now: float) -> bool:
        """Whether receipts settled something within the last ``timeout_s``."""
        return self.last_progress is not None and now - self.last_progress < self.timeout_s

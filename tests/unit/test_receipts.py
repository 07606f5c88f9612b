"""Receipt computation (docs/protocol.md §4.11): which events a batch settles for which device,
the ranges above the contiguous prefix, rejections settled only when final, the schema, and the
agent's strict parser of the same message."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from central.ingest.receipts import (
    MAX_REJECTED,
    DeviceBatch,
    build_receipt,
    build_receipts,
    collect,
    encode,
    ranges_above,
)
from central.ingest.store import Outcome
from central.ingest.validate import Incoming, Reason, Rejection
from edge_agent.uplink.receipts import ReceiptError, parse_receipt
from wire.schemas import WireError, validate

AT = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
GATE, DESK = "gate-ngo-mon-01", "ks-song-huong-le-tan"


def eid(seq: int) -> str:
    return f"0196847a-0000-7000-8000-{seq:012x}"


def event(device_id: str, seq: int, event_id: str | None = None) -> Incoming:
    body = {"v": 1, "device_id": device_id, "seq": seq,
            "event_id": event_id or eid(seq)}
    return Incoming(f"checkin/v1/{device_id}/events", json.dumps(body).encode())


def outcome(incoming: Incoming, result: str, reason: Reason | None = None) -> Outcome:
    return Outcome(incoming, result, None if reason is None else Rejection(reason, "x"))


def test_ranges_above_the_prefix() -> None:
    assert ranges_above([5, 3, 4, 9, 10, 12, 2, 2], 2) == [[3, 5], [9, 10], [12, 12]]
    assert ranges_above([1, 2, 3], 3) == []
    assert ranges_above([], 0) == []


def test_collect_groups_held_and_final_rejections_by_topic_device() -> None:
    ev7 = event(GATE, 7)
    outcomes = [
        outcome(event(GATE, 1), "stored"), outcome(event(GATE, 2), "duplicate"),
        outcome(event(GATE, 5), "stored"), outcome(ev7, "rejected", Reason.BAD_SIGNATURE),
        outcome(event(GATE, 8), "rejected", Reason.CLOCK_SKEW),          # may pass later
        outcome(event(GATE, 9), "rejected", Reason.SEALED_STAY_UNOPENABLE),
        outcome(event(DESK, 40), "rejected", Reason.REPLAY),
        outcome(Incoming(f"checkin/v1/{GATE}/events", b"{oops"), "rejected",
                Reason.MALFORMED_JSON),                                   # no seq to name
        outcome(Incoming(f"checkin/v1/{GATE}/status", b"{}"), "status"),
        outcome(Incoming("checkin/v1/Bad Topic/events", b"{}"), "rejected", Reason.BAD_TOPIC),
    ]
    batches = collect(outcomes)
    assert sorted(batches) == sorted([DESK, GATE])
    assert batches[GATE].held == {1, 2, 5}
    assert batches[GATE].rejected == {7: (eid(7), "bad-signature")}
    assert batches[DESK].held == set()
    assert list(batches[DESK].rejected) == [40]


def test_receipt_follows_the_prefix_and_validates() -> None:
    batches = collect([outcome(event(GATE, s), "stored") for s in (3, 4, 5, 8, 9, 12)]
                      + [outcome(event(GATE, 10), "rejected", Reason.SCHEMA)])
    receipts = build_receipts(batches, {GATE: 5}, AT)  # the database's prefix after commit
    receipt = receipts[GATE]
    assert receipt["committed_through"] == 5
    assert receipt["committed"] == [[8, 9], [12, 12]]
    assert receipt["rejected"] == [{"seq": 10, "event_id": eid(10),
                                    "reason": "schema"}]
    validate("receipt.v2", receipt)
    assert build_receipts(batches, {}, AT) == {}  # an unregistered device gets nothing


def test_receipt_is_bounded() -> None:
    batch = DeviceBatch(held=set(range(2, 1000, 2)),
                        rejected={s: (str(uuid.uuid4()), "replay") for s in range(1, 200, 2)})
    receipt = build_receipt(GATE, 0, batch, AT)
    assert len(receipt["committed"]) == 128 and len(receipt["rejected"]) == MAX_REJECTED
    validate("receipt.v2", receipt)
    assert len(encode(receipt)) < 16 * 1024


def good() -> dict[str, Any]:
    return build_receipt(GATE, 5, DeviceBatch({7, 8}, {9: (str(uuid.uuid4()), "replay")}), AT)


def test_agent_parses_what_the_centre_builds() -> None:
    receipt = parse_receipt(encode(good()), GATE)
    assert receipt.committed_through == 5
    assert receipt.committed == ((7, 8),)
    assert [(r[0], r[2]) for r in receipt.rejected] == [(9, "replay")]


@pytest.mark.parametrize(("change", "words"), [
    ({"v": 1}, "v"), ({"device_id": DESK}, "device_id"),
    ({"committed_through": -1}, "committed_through"),
    ({"committed_through": True}, "committed_through"), ({"committed": [[3]]}, "committed"),
    ({"committed": [[9, 3]]}, "committed"), ({"rejected": [{"seq": 1}]}, "rejected"),
    ({"rejected": [{"seq": 1, "event_id": "x", "reason": "replay"}]}, "event_id"),
    ({"extra": 1}, "member"),
])
def test_agent_refuses_malformed_receipts(change: dict[str, Any], words: str) -> None:
    bad = {**good(), **change}
    with pytest.raises(ReceiptError) as info:
        parse_receipt(json.dumps(bad).encode(), GATE)
    assert words in str(info.value)
    if change not in ({"device_id": DESK}, {"committed": [[9, 3]]}):  # beyond a schema
        with pytest.raises(WireError):
            validate("receipt.v2", bad)


@pytest.mark.parametrize("payload", [b"", b"{", b"[]", b"\xff", b"1" * 20000])
def test_agent_refuses_non_objects(payload: bytes) -> None:
    with pytest.raises(ReceiptError):
        parse_receipt(payload, GATE)


def test_status_carries_the_unreceipted_backlog() -> None:
    from edge_agent.uplink.status import DeviceHealth, online_status

    common: dict[str, Any] = {"device_id": GATE, "version": "0.1.0", "outbox_depth": 0,
                              "oldest_undelivered_at": None, "health": DeviceHealth(), "at": AT}
    waiting = json.loads(online_status(**common, unreceipted=3, oldest_unreceipted_at=AT))
    assert (waiting["unreceipted"], waiting["oldest_unreceipted_at"]) == (
        3, "2026-05-01T08:30:00.000+00:00")
    settled = json.loads(online_status(**common, unreceipted=0))
    assert settled["unreceipted"] == 0 and settled["oldest_unreceipted_at"] is None
    v1 = json.loads(online_status(**common))
    assert "unreceipted" not in v1 and "oldest_unreceipted_at" not in v1
    for status in (waiting, settled, v1):
        validate("status.v1", status)

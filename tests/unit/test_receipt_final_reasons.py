"""Both sides agree on what a receipt may refuse for good (docs/protocol.md §4.11.1).

Found by the chaos suite's clock fault: the collector receipted ``too-old`` refusals, the agent
knew only four final reasons and ignored the whole receipt (its commits too), sent the events
again and again until the collector refused them as ``replay``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from central.ingest.receipts import FINAL_REASONS, DeviceBatch, build_receipt, encode
from central.ingest.validate import Reason
from edge_agent.uplink.receipts import FINAL_REASONS as AGENT_FINAL
from edge_agent.uplink.receipts import ReceiptError, parse_receipt
from wire import validate
from wire.kinds import FINAL_REFUSALS

SCHEMA = Path(__file__).resolve().parents[2] / "wire" / "receipt.v2.schema.json"
EVENT_ID = "0196847a-dfb3-735f-a060-606060606060"


def test_one_set_on_both_sides_and_in_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    enum = schema["properties"]["rejected"]["items"]["properties"]["reason"]["enum"]
    assert set(enum) == FINAL_REFUSALS
    assert {r.value for r in FINAL_REASONS} == FINAL_REFUSALS == AGENT_FINAL
    assert {"too-old", "kind-not-for-site", "stay-owner-mismatch"} <= FINAL_REFUSALS
    # what may pass later is never final
    assert not {Reason.CLOCK_SKEW, Reason.SITE_MISMATCH, Reason.UNKNOWN_DEVICE,
                Reason.SEALED_STAY_UNOPENABLE} & FINAL_REASONS


@pytest.mark.parametrize("reason", sorted(FINAL_REFUSALS))
def test_the_agent_reads_every_receipt_the_collector_builds(reason: str) -> None:
    batch = DeviceBatch(held={1, 2, 4}, rejected={3: (EVENT_ID, reason)})
    receipt = build_receipt("gate-1", 2, batch, datetime(2026, 12, 6, tzinfo=UTC))
    validate("receipt.v2", receipt)
    parsed = parse_receipt(encode(receipt), "gate-1")
    assert parsed.committed_through == 2 and parsed.committed == ((4, 4),)
    assert parsed.rejected == ((3, EVENT_ID, reason),)


def test_a_reason_that_may_pass_later_is_still_refused_by_the_agent() -> None:
    receipt = build_receipt("gate-1", 0, DeviceBatch(rejected={1: (EVENT_ID, "clock-skew")}),
                            datetime(2026, 12, 6, tzinfo=UTC))
    with pytest.raises(ReceiptError, match="not a final rejection reason"):
        parse_receipt(encode(receipt), "gate-1")

"""The rollup key of an event (central/counting.py): kind and insurance dimensions."""

from __future__ import annotations

from typing import Any

from central.counting import rollup_insurance, rollup_kind


def _event(kind: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "method": "chip", "reason": None, "details": {}, **extra}


def test_insurance_dimension_of_visits_and_manual_paper_card_counts() -> None:
    for answer in ("valid", "invalid", "unknown", "not-checked"):
        assert rollup_insurance(_event("visit", details={"insurance": answer})) == answer
    paper = _event("manual", method="manual", reason="paper-insurance",
                   details={"counts_as": "visit"})
    assert rollup_insurance(paper) == "paper-card"
    assert rollup_kind(paper) == "manual:visit"
    # A paper-insurance reason on a gate count, a child counted at the desk, gate events and
    # stays carry no insurance dimension.
    assert rollup_insurance(dict(paper, details={"counts_as": "entry"})) == ""
    assert rollup_insurance(dict(paper, reason="child")) == ""
    assert rollup_insurance(_event("entry")) == ""
    assert rollup_insurance(_event("stay.start", details={"stay_id": "x"})) == ""

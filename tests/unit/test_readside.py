"""The read side's counting rules (central/readside.py): insured visits, gate entries,
notice states. One place, so a new method changes one line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from central import readside
from central.readside import gate_entry, insured_visit, notice_state


@pytest.mark.parametrize(("kind", "method", "insurance", "expected"), [
    ("visit", "chip", "valid", (True, True)),
    ("visit", "vneid-qr", "valid", (True, True)),
    ("visit", "card-qr", "invalid", (False, False)),
    ("visit", "chip", "unknown", (False, False)),
    ("visit", "chip", "not-checked", (False, False)),
    ("manual:visit", "manual", "paper-card", (True, False)),
    ("manual:visit", "manual", "", (False, False)),
    ("entry", "chip", "valid", (False, False)),
])
def test_insured_visit(kind: str, method: str, insurance: str,
                       expected: tuple[bool, bool]) -> None:
    assert insured_visit(kind, method, insurance) == expected


def test_an_insurance_card_method_is_denominator_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readside, "INSURED_METHODS", frozenset({"bhyt-card"}))
    assert insured_visit("visit", "bhyt-card", "") == (True, False)


def test_gate_entries() -> None:
    assert gate_entry("entry", "chip") == (True, True)
    assert gate_entry("manual:entry", "manual") == (True, False)
    assert gate_entry("entry", "manual") == (True, False)
    assert gate_entry("exit", "chip") == (False, False)
    assert gate_entry("visit", "chip") == (False, False)


def test_notice_states() -> None:
    deadline = datetime(2026, 11, 12, 16, tzinfo=UTC)  # 12/11 23:00 Vietnam time
    before, after = deadline - timedelta(minutes=1), deadline + timedelta(minutes=1)
    assert notice_state(deadline, None, before) == "due"
    assert notice_state(deadline, None, deadline) == "due"
    assert notice_state(deadline, None, after) == "overdue"
    assert notice_state(deadline, deadline, after) == "on_time"  # at the deadline: on time
    assert notice_state(deadline, after, after) == "late"
    assert notice_state(deadline.replace(tzinfo=None), before.replace(tzinfo=None),
                        after) == "on_time"  # SQLite's naive UTC


def test_arrival_and_departure_kinds_are_disjoint() -> None:
    assert not readside.ARRIVAL_KINDS & readside.DEPARTURE_KINDS
    assert readside.GATE_ENTRY_KINDS <= readside.ARRIVAL_KINDS

"""Hospital desk: a card shown for a stay action records no second visit, and the insurance
look-up never holds the desk (bounded wait, background re-checks, a ``visit.insurance``
follow-up naming the visit) — edge_agent/flows/hospital.py, edge_agent/insurance_checks.py."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from typing import Any

from edge_agent.cccd.dates import BirthDate
from edge_agent.events.ids import Uuid7Generator
from edge_agent.events.model import EventDraft, EventKind, build_event
from edge_agent.flows import Outcome, Person
from edge_agent.insurance import InsuranceState, InsuranceStatus
from edge_agent.insurance_checks import PENDING, InsuranceChecks, Recheck
from tests.unit.test_flows import CENTRE, MAI, SIGNING, card_qr, chip, hospital
from wire.schemas import validate


class Answers:
    """An insurance gateway that answers from a list (the last answer repeats); ``gate`` holds
    the answer back until it is set."""

    def __init__(self, *states: InsuranceState, gate: threading.Event | None = None) -> None:
        self.states = list(states)
        self.calls = 0
        self.gate = gate

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        if self.gate is not None:
            self.gate.wait(10)
        self.calls += 1
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return InsuranceStatus(state, "synthetic")


def test_discharge_card_and_second_card_of_the_day_record_no_visit() -> None:
    flow, clock, outbox = hospital(Answers(InsuranceState.VALID))
    assert flow.visit(chip(MAI)).outcome is Outcome.ACCEPTED
    clock.advance(3600)  # past the dedupe window: the card for the admission
    again = flow.visit(card_qr(MAI))
    assert again.outcome is Outcome.SELECTED and again.accepted and not again.drafts
    assert "không ghi lượt khám" in again.message_vi
    assert flow.admit(card_qr(MAI), ward="Khoa Nội",
                      expected_departure=clock().date() + timedelta(days=2)).accepted
    clock.advance(3 * 86400)  # another day: an in-patient shows the card to leave
    discharge = flow.visit(card_qr(MAI))
    assert discharge.outcome is Outcome.SELECTED and "Ra viện" in discharge.message_vi
    assert flow.discharge(card_qr(MAI)).accepted
    assert [e["kind"] for e in outbox.events] == ["visit", "stay.start", "stay.end"]
    assert flow.counts.visits == 0  # today (three days later): no visit


def test_desk_choice_for_a_stay_action_records_no_visit() -> None:
    flow, _, outbox = hospital(Answers(InsuranceState.VALID))
    chosen = flow.visit(chip(MAI), for_stay=True)
    assert chosen.outcome is Outcome.SELECTED and chosen.masked_id == "********1234"
    assert outbox.events == []


def test_a_late_answer_is_recorded_unknown_and_shown_as_being_checked() -> None:
    gate = threading.Event()
    checks = InsuranceChecks(Answers(InsuranceState.VALID, gate=gate), wait_s=0.05,
                             retry_delays_s=())
    asked: list[tuple[EventDraft, Person]] = []
    flow, _, outbox = hospital(checks)
    flow._recheck = lambda draft, person: asked.append((draft, person))
    verdict = flow.visit(chip(MAI))
    gate.set()
    checks.stop()
    assert verdict.accepted and verdict.insurance == "unknown"
    assert "Đang kiểm tra BHYT" in verdict.message_vi
    assert outbox.events[0]["details"]["insurance"] == "unknown"
    assert [p.id_number for _, p in asked] == [MAI.id_number]


def test_unknown_is_checked_again_until_answered_then_once_only() -> None:
    adapter = Answers(InsuranceState.UNKNOWN, InsuranceState.UNKNOWN, InsuranceState.INVALID)
    answers: list[tuple[str, str]] = []
    done = threading.Event()

    def on_answer(recheck: Recheck, status: InsuranceStatus) -> None:
        answers.append((recheck.event_id, status.state.value))
        done.set()

    checks = InsuranceChecks(adapter, retry_delays_s=(0.01, 0.01, 0.01, 0.01),
                             on_answer=on_answer)
    checks.start()
    try:
        checks.schedule(Recheck("visit-1", MAI.id_number, MAI.full_name, MAI.date_of_birth))
        assert done.wait(10)
        deadline = time.monotonic() + 10
        while checks.pending and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        checks.stop()
    assert answers == [("visit-1", "invalid")] and adapter.calls == 3 and checks.pending == 0


def test_unknown_after_every_delay_sends_nothing() -> None:
    answers: list[Any] = []
    checks = InsuranceChecks(Answers(InsuranceState.UNKNOWN), retry_delays_s=(0.01, 0.01),
                             on_answer=lambda r, s: answers.append(s))
    checks.start()
    try:
        checks.schedule(Recheck("visit-2", MAI.id_number, MAI.full_name, MAI.date_of_birth))
        deadline = time.monotonic() + 10
        while checks.pending and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        checks.stop()
    assert answers == [] and checks.pending == 0


def test_pending_detail_is_the_marker_the_flow_reads() -> None:
    assert InsuranceStatus.unknown(PENDING).detail == "pending"


def test_follow_up_and_training_events_match_the_wire_schema() -> None:
    flow, clock, outbox = hospital(Answers(InsuranceState.UNKNOWN))
    flow.visit(chip(MAI))
    visit = outbox.events[0]
    follow = EventDraft(kind=EventKind.VISIT_INSURANCE, method=outbox.drafts[0].method,
                        assurance=outbox.drafts[0].assurance, occurred_at=clock(),
                        subject=outbox.drafts[0].subject,
                        subject_ref=outbox.drafts[0].subject_ref,
                        demographics=outbox.drafts[0].demographics,
                        details={"insurance": "valid", "visit_event_id": visit["event_id"]})
    ids = Uuid7Generator()
    event = build_event(follow, device_id="desk-01", site_id="bv-hue", seq=2,
                        event_id=ids(), signing_key=SIGNING,
                        centre_key=CENTRE.public_key(), training=True)
    validate("event", event)
    assert event["training"] is True and event["kind"] == "visit.insurance"
    bad = dict(event, details={"insurance": "unknown", "visit_event_id": visit["event_id"]})
    try:
        validate("event", bad)
    except ValueError:
        pass
    else:
        raise AssertionError("a follow-up must carry a definite answer")


def test_prefetched_answer_is_taken_by_the_visit_without_a_second_look_up() -> None:
    adapter = Answers(InsuranceState.VALID)
    checks = InsuranceChecks(adapter, wait_s=0.5, retry_delays_s=())
    flow, _, _ = hospital(checks)
    person = flow.identify(chip(MAI))
    assert isinstance(person, Person) and flow.would_look_up(person)
    checks.prefetch(person.id_number, person.full_name, person.date_of_birth)
    assert flow.visit(chip(MAI)).insurance == "valid" and adapter.calls == 1
    assert not flow.would_look_up(person)  # visited: a second card asks nobody
    checks.stop()


def test_a_prefetch_that_timed_out_leaves_the_visit_pending_without_waiting_again() -> None:
    gate = threading.Event()
    adapter = Answers(InsuranceState.VALID, gate=gate)
    checks = InsuranceChecks(adapter, wait_s=0.05, retry_delays_s=())
    flow, _, _ = hospital(checks)
    person = flow.identify(chip(MAI))
    assert isinstance(person, Person)
    checks.prefetch(person.id_number, person.full_name, person.date_of_birth)
    verdict = flow.visit(chip(MAI))
    gate.set()
    checks._pool.shutdown(wait=True)  # every look-up submitted has now answered
    checks.stop()
    assert verdict.insurance == "unknown" and "Đang kiểm tra BHYT" in verdict.message_vi
    assert adapter.calls == 1  # the one look-up started ahead, none from the visit itself

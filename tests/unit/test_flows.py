"""Check-in flows: heritage gate, hospital reception, accommodation desk (edge_agent.flows).

Every committed draft is turned into the signed wire object with ``build_event`` and validated
against ``wire/event.v1.schema.json``; personal data must appear only inside ``sealed``.
All people are synthetic (tests/synthetic.py).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.cccd import Sex, VneidToken, parse_qr, parse_td1
from edge_agent.cccd.bhyt import format_bhyt
from edge_agent.cccd.dates import BirthDate
from edge_agent.cccd.mrz import build_td1
from edge_agent.cccd.qr import format_card_qr
from edge_agent.config import CapacityPolicy, Direction, Language, NameDisplay, QrExpiryPolicy
from edge_agent.events.ids import Uuid7Generator
from edge_agent.events.local_subject import SubjectKeyring
from edge_agent.events.model import EventDraft, build_event
from edge_agent.flows import (
    AccommodationFlow,
    ChipPresentation,
    FlowError,
    FlowInputError,
    FlowSettings,
    HeritageGateFlow,
    HospitalFlow,
    ManualPresentation,
    ManualReason,
    Outcome,
    QrPresentation,
    StayReason,
    display_name,
)
from edge_agent.flows.model import UNKNOWN_SUBJECT
from edge_agent.identity import IdentityAnswer, IdentityState, VerifiedIdentity
from edge_agent.insurance import InsuranceState, InsuranceStatus
from edge_agent.reading import Assurance, ChipIdentity, FailureReason, ReadResult
from tests.synthetic import Person, id_for
from wire import validate
from wire.sealing import SealedBox, open_sealed, open_subject_box

ICT = timezone(timedelta(hours=7))
SUBJECT_KEY = b"s" * 32
SIGNING = Ed25519PrivateKey.generate()
CENTRE = X25519PrivateKey.generate()

MAI = Person(id_number="079303001234", surname="Nguyễn", middle="Thị", given="Mai",
             sex=Sex.FEMALE, date_of_birth=date(2003, 5, 15), issue_date=date(2021, 8, 20),
             address="1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh")
BINH = Person(id_number=id_for("001", date(1958, 2, 1), Sex.MALE, 424242), surname="Trần",
              middle="Văn", given="Bình", sex=Sex.MALE, date_of_birth=date(1958, 2, 1),
              issue_date=date(2021, 3, 1), address="12 Phố Hàng Bạc, Hà Nội")


# -- helpers ------------------------------------------------------------------------------------

def sealed_ref(event: dict[str, Any]) -> str:
    """What the centre opens from the event's sealed subject."""
    return open_subject_box(event["subject_sealed"], CENTRE, event["event_id"],
                            event["device_id"])


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Outbox:
    """Records committed drafts and turns them into wire events (seq from 1, UUIDv7 ids)."""

    def __init__(self) -> None:
        self.drafts: list[EventDraft] = []
        self.events: list[dict[str, Any]] = []
        self.fail = False
        self._ids = Uuid7Generator()

    def __call__(self, drafts: Sequence[EventDraft]) -> None:
        if self.fail:
            raise OSError("disk full")
        for draft in drafts:
            self.drafts.append(draft)
            event = build_event(draft, device_id="gate-ngo-mon-01", site_id="hue-dai-noi",
                                seq=len(self.events) + 1, event_id=self._ids(),
                                signing_key=SIGNING, centre_key=CENTRE.public_key())
            validate("event.v1", event)
            self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events]


def chip(person: Person, *, assurance: Assurance = Assurance.CHIP_ANCHORED,
         expiry: date | None = None, qr_mismatch: Sequence[str] = (),
         qr: str | None = None, count: int = 1) -> ChipPresentation:
    lines = build_td1(person.id_number, person.date_of_birth, person.sex, expiry,
                      person.surname, person.given_names)
    mrz = parse_td1(*lines)
    assert mrz.id_number is not None
    identity = ChipIdentity(id_number=mrz.id_number, full_name=person.full_name,
                            date_of_birth=person.date_of_birth, sex=person.sex,
                            nationality="VNM", document_number=mrz.document_number,
                            date_of_expiry=mrz.date_of_expiry, mrz=mrz)
    result = ReadResult(assurance=assurance, identity=identity, qr_mismatch=list(qr_mismatch))
    return ChipPresentation(result, parse_qr(qr) if qr else None, count=count)


def failed_chip(reason: FailureReason) -> ChipPresentation:
    return ChipPresentation(ReadResult(failure=reason, reason="synthetic failure"))


def card_qr(person: Person, count: int = 1) -> QrPresentation:
    payload = format_card_qr(person.id_number, person.full_name, person.date_of_birth,
                             person.sex, person.address, person.issue_date)
    return QrPresentation(payload.encode("utf-8"), count=count)


def settings(**kw: Any) -> FlowSettings:
    base: dict[str, Any] = {"site_id": "hue-dai-noi", "subject_key": SUBJECT_KEY}
    base.update(kw)
    return FlowSettings(**base)


def gate(direction: Direction = Direction.ENTRY, **kw: Any) -> tuple[HeritageGateFlow, Clock,
                                                                     Outbox]:
    clock, outbox = Clock(datetime(2025, 4, 30, 9, 0, tzinfo=ICT)), Outbox()
    return HeritageGateFlow(settings(direction=direction, **kw), clock=clock,
                            commit=outbox), clock, outbox


PERSONAL = re.compile(r"(?<![0-9A-Za-z_-])[0-9]{12}(?![0-9A-Za-z_-])")


def assert_no_personal_data_outside_sealed(event: dict[str, Any], person: Person) -> None:
    clear = json.dumps({k: v for k, v in event.items() if k != "sealed"}, ensure_ascii=False)
    assert not PERSONAL.search(clear), clear
    for word in (person.id_number, person.full_name, person.surname + " ", person.given,
                 person.address, person.date_of_birth.isoformat(),
                 person.date_of_birth.strftime("%d%m%Y")):
        assert word not in clear, word


# -- heritage gate ------------------------------------------------------------------------------

def test_gate_chip_entry_produces_a_valid_identified_event() -> None:
    flow, _, outbox = gate()
    verdict = flow.present(chip(MAI))
    assert verdict.accepted and verdict.outcome is Outcome.ACCEPTED
    assert verdict.title_vi == "Mời vào" and verdict.title_en == "Please enter"
    assert verdict.masked_id == "********1234"
    assert verdict.name == "Nguyễn Thị Mai"
    event = outbox.events[0]
    assert event["kind"] == "entry" and event["method"] == "chip"
    assert event["assurance"] == "chip-anchored" and event["seq"] == 1
    # No subject in clear: the ID number sealed to the centre (docs/protocol.md §4.7.1).
    assert event["subject"] is None and sealed_ref(event) == MAI.id_number
    assert event["demographics"] == {"age_band": "15-24", "sex": "F", "birth_province": "079"}
    assert event["sealed"] is None and event["reason"] is None
    assert event["occurred_at"] == "2025-04-30T09:00:00.000+07:00"
    assert_no_personal_data_outside_sealed(event, MAI)
    assert verdict.counts.entries == 1 and verdict.drafts == tuple(outbox.drafts)


def test_gate_card_qr_has_qr_assurance() -> None:
    flow, _, outbox = gate(Direction.EXIT)
    verdict = flow.present(card_qr(BINH))
    assert verdict.accepted and verdict.title_vi == "Tạm biệt"
    event = outbox.events[0]
    assert (event["kind"], event["method"], event["assurance"]) == ("exit", "card-qr", "qr")
    assert event["demographics"] == {"age_band": "60+", "sex": "M", "birth_province": "001"}
    assert_no_personal_data_outside_sealed(event, BINH)


def test_same_subject_within_window_counts_once() -> None:
    flow, clock, outbox = gate(dedupe_window_s=5)
    assert flow.present(chip(MAI)).outcome is Outcome.ACCEPTED
    clock.advance(2)
    again = flow.present(card_qr(MAI))  # the same person by QR: same subject
    assert again.accepted and again.outcome is Outcome.ALREADY_COUNTED
    assert again.reason == "already-counted" and again.drafts == ()
    assert again.title_vi == "Đã ghi nhận" and "không tính lại" in again.message_vi
    assert len(outbox.events) == 1 and flow.counts.entries == 1
    flow.present(chip(BINH))  # someone else is not affected
    clock.advance(3.5)  # 5.5 s after the first tap: counted again
    assert flow.present(chip(MAI)).outcome is Outcome.ACCEPTED
    assert outbox.kinds == ["entry", "entry", "entry"] and flow.counts.entries == 3


def test_dedupe_is_per_direction_on_a_two_way_gate() -> None:
    flow, _, outbox = gate(Direction.BOTH)
    flow.present(chip(MAI), direction=Direction.ENTRY)
    flow.present(chip(MAI), direction=Direction.EXIT)
    assert outbox.kinds == ["entry", "exit"]
    with pytest.raises(FlowError, match="both directions"):
        flow.present(chip(MAI))


def test_fixed_direction_gate_refuses_the_other_direction() -> None:
    flow, _, _ = gate(Direction.ENTRY)
    with pytest.raises(FlowError, match="entry gate"):
        flow.present(chip(MAI), direction=Direction.EXIT)
    with pytest.raises(FlowError, match="direction"):
        HeritageGateFlow(settings(), clock=Clock(datetime.now(ICT)), commit=Outbox())


def test_group_entry_counts_n_people() -> None:
    flow, _, outbox = gate()
    verdict = flow.present(card_qr(BINH, count=12))
    assert outbox.events[0]["count"] == 12 and verdict.counts.entries == 12
    assert "12 người" in verdict.message_vi and "12 people" in verdict.message_en
    with pytest.raises(FlowInputError, match="count"):
        flow.present(chip(MAI, count=0))


def test_capacity_warn_accepts_with_flag() -> None:
    flow, clock, outbox = gate(capacity_policy=CapacityPolicy.WARN)
    assert flow.set_occupancy("hue-dai-noi", 99, 100, clock.now - timedelta(seconds=1))
    assert flow.present(chip(MAI)).warnings == ()  # 100/100: still fits
    verdict = flow.present(chip(BINH))  # 101 > 100
    assert verdict.accepted and "capacity-warn" in verdict.warnings
    assert "đủ sức chứa (100/100)" in verdict.message_vi
    assert outbox.events[1]["details"] == {"over_capacity": True}
    assert verdict.counts.occupancy == 101 and verdict.counts.capacity == 100
    assert verdict.counts.occupancy_estimated


def test_capacity_refuse_gives_rejected_without_personal_data() -> None:
    flow, clock, outbox = gate(capacity_policy=CapacityPolicy.REFUSE)
    flow.set_occupancy("hue-dai-noi", 100, 100, clock.now)
    verdict = flow.present(chip(MAI, count=3))
    assert not verdict.accepted and verdict.reason == "capacity-full"
    assert verdict.title_vi == "Đã đủ sức chứa" and verdict.masked_id is None
    event = outbox.events[0]
    assert event["kind"] == "rejected" and event["reason"] == "capacity-full"
    assert event["subject"] is None and event["assurance"] == "none" and event["count"] == 3
    assert event["demographics"] == {"age_band": None, "sex": None, "birth_province": None}
    assert event["details"] == {"attempted": "entry"}
    assert_no_personal_data_outside_sealed(event, MAI)
    assert flow.occupancy() == (100, 100, False)  # nobody let in
    # manual entries obey the same rule
    assert flow.present(ManualPresentation(ManualReason.CHILD)).reason == "capacity-full"


def test_capacity_uses_local_estimate_while_offline() -> None:
    flow, clock, _ = gate(Direction.BOTH, capacity_policy=CapacityPolicy.REFUSE)
    flow.set_occupancy("hue-dai-noi", 8, 10, clock.now)
    clock.advance(1)
    flow.present(chip(MAI), direction=Direction.ENTRY)  # 9
    flow.present(card_qr(BINH), direction=Direction.ENTRY)  # 10
    assert flow.occupancy() == (10, 10, True)
    other = Person(id_number=id_for("048", date(1990, 1, 1), Sex.FEMALE, 7), surname="Lê",
                   middle="Ngọc", given="Lan", sex=Sex.FEMALE, date_of_birth=date(1990, 1, 1),
                   issue_date=date(2021, 1, 1), address="Đà Nẵng")
    assert flow.present(chip(other), direction=Direction.ENTRY).reason == "capacity-full"
    flow.present(chip(MAI), direction=Direction.EXIT)  # 9: room again
    assert flow.present(chip(other), direction=Direction.ENTRY).accepted
    # a newer central figure replaces the local moves it already includes
    assert flow.set_occupancy("hue-dai-noi", 4, 10, clock.now + timedelta(seconds=1))
    assert flow.occupancy() == (4, 10, False)
    # late or foreign figures are ignored
    assert not flow.set_occupancy("hue-dai-noi", 50, 10, clock.now - timedelta(hours=1))
    assert not flow.set_occupancy("another-site", 50, 10, clock.now + timedelta(hours=1))
    assert flow.occupancy() == (4, 10, False)


def test_occupancy_without_a_central_figure_is_local_only_and_never_refuses() -> None:
    flow, _, _ = gate(capacity_policy=CapacityPolicy.REFUSE)
    assert flow.occupancy() == (None, None, False)
    assert flow.present(chip(MAI, count=5)).accepted
    assert flow.occupancy() == (5, None, True)


@pytest.mark.parametrize("reason", list(ManualReason))
def test_manual_entries_with_each_reason(reason: ManualReason) -> None:
    flow, _, outbox = gate()
    verdict = flow.present(ManualPresentation(reason, count=2))
    assert verdict.accepted and verdict.reason == reason.value
    event = outbox.events[0]
    assert (event["kind"], event["method"], event["assurance"]) == ("manual", "manual",
                                                                    "manual")
    assert event["subject"] is None and event["reason"] == reason.value
    assert event["count"] == 2 and event["details"] == {"counts_as": "entry"}
    assert event["demographics"] == {"age_band": None, "sex": None, "birth_province": None}
    assert flow.counts.manual == 2 and flow.occupancy()[0] == 2


@pytest.mark.parametrize("failure", list(FailureReason))
def test_failed_chip_read_is_rejected_with_its_code(failure: FailureReason) -> None:
    flow, _, outbox = gate()
    verdict = flow.present(failed_chip(failure))
    assert not verdict.accepted and verdict.reason == failure.value
    assert verdict.masked_id is None and verdict.name is None and verdict.title_vi == "Không hợp lệ"
    event = outbox.events[0]
    assert event["kind"] == "rejected" and event["reason"] == failure.value
    assert event["method"] == "chip" and event["subject"] is None


@pytest.mark.parametrize("payload", [
    b"not a qr code", b"\xff\xfe", b"1|2|3", b"https://vneid.gov.vn/x?y=1",
    b"001234567890|NGUYEN VAN A|1990-01-01|x|y|z",  # ID says born 2034
    b"********1234|NGUYEN THI MAI|2003-05-15|1|2|3",  # masked ID: no subject
])
def test_invalid_or_unusable_qr_is_rejected(payload: bytes) -> None:
    flow, _, outbox = gate()
    verdict = flow.present(QrPresentation(payload))
    assert verdict.reason == "qr-invalid" and "QR" in verdict.message_vi
    event = outbox.events[0]
    assert (event["kind"], event["method"], event["reason"]) == ("rejected", "card-qr",
                                                                 "qr-invalid")


class FakeVerifier:
    """Answers as the identity platform would, without the network."""

    def __init__(self, answer: IdentityAnswer) -> None:
        self.answer = answer
        self.tokens: list[str] = []

    def verify(self, token: VneidToken) -> IdentityAnswer:
        self.tokens.append(token.value)
        return self.answer


TOKEN = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
MAI_VERIFIED = IdentityAnswer(IdentityState.VERIFIED, "", VerifiedIdentity(
    MAI.id_number, MAI.full_name, BirthDate.of(MAI.date_of_birth), Sex.FEMALE, MAI.address, 2))


def vneid_gate(answer: IdentityAnswer | None) -> tuple[HeritageGateFlow, Outbox]:
    verifier = FakeVerifier(answer) if answer else None
    flow = HeritageGateFlow(settings(direction=Direction.ENTRY), clock=Clock(
        datetime(2025, 4, 30, 9, 0, tzinfo=ICT)), commit=(outbox := Outbox()), vneid=verifier)
    return flow, outbox


def test_vneid_token_verified_gives_vneid_assurance_and_level() -> None:
    flow, outbox = vneid_gate(MAI_VERIFIED)
    verdict = flow.present(QrPresentation(TOKEN.upper().encode()))
    assert verdict.accepted and verdict.masked_id == "********1234"
    event = outbox.events[-1]
    assert (event["method"], event["assurance"]) == ("vneid-qr", "vneid-qr")
    assert event["details"] == {"vneid_level": 2}
    assert event["subject"] is None and sealed_ref(event) == MAI.id_number


@pytest.mark.parametrize("reason", ["expired", "replayed", "revoked", "unknown"])
def test_vneid_token_refused_by_the_platform_is_rejected_with_its_reason(reason: str) -> None:
    flow, outbox = vneid_gate(IdentityAnswer(IdentityState.REJECTED, reason))
    verdict = flow.present(QrPresentation(TOKEN))
    assert not verdict.accepted and verdict.reason == f"vneid-{reason}"
    assert (outbox.events[-1]["method"], outbox.events[-1]["reason"]) == ("vneid-qr",
                                                                          f"vneid-{reason}")


@pytest.mark.parametrize("answer", [IdentityAnswer.unavailable("timeout"), None],
                         ids=["platform-down", "no-verifier"])
def test_vneid_unavailable_asks_for_the_card(answer: IdentityAnswer | None) -> None:
    flow, outbox = vneid_gate(answer)
    verdict = flow.present(QrPresentation(TOKEN))
    assert verdict.reason == "vneid-unavailable"
    assert "chạm thẻ CCCD" in verdict.message_vi and "mã QR thẻ CCCD" in verdict.message_vi
    assert outbox.events[-1]["reason"] == "vneid-unavailable"


def test_a_card_qr_is_never_sent_to_the_platform() -> None:
    verifier = FakeVerifier(MAI_VERIFIED)
    flow = HeritageGateFlow(settings(direction=Direction.ENTRY), clock=Clock(
        datetime(2025, 4, 30, 9, 0, tzinfo=ICT)), commit=(outbox := Outbox()), vneid=verifier)
    assert flow.present(card_qr(MAI)).accepted
    assert verifier.tokens == [] and outbox.events[-1]["method"] == "card-qr"


def test_expired_card_is_rejected() -> None:
    flow, _, outbox = gate()
    verdict = flow.present(chip(MAI, expiry=date(2025, 4, 29)))
    assert verdict.reason == "expired-card" and "hết hạn" in verdict.message_vi
    assert outbox.events[0]["reason"] == "expired-card"
    assert flow.present(chip(BINH, expiry=date(2025, 4, 30))).accepted  # last valid day


def test_scan_then_tap_mismatch_is_flagged() -> None:
    flow, _, outbox = gate()
    other_qr = format_card_qr(BINH.id_number, BINH.full_name, BINH.date_of_birth, BINH.sex,
                              BINH.address, BINH.issue_date)
    verdict = flow.present(chip(MAI, qr=other_qr))
    assert verdict.accepted  # the chip wins
    assert "qr-mismatch" in verdict.warnings and "không khớp" in verdict.message_vi
    assert outbox.events[0]["details"]["qr_mismatch"] == ["id_number", "date_of_birth",
                                                          "full_name", "sex"]
    assert_no_personal_data_outside_sealed(outbox.events[0], MAI)
    assert_no_personal_data_outside_sealed(outbox.events[0], BINH)


def test_scan_then_tap_matching_qr_and_session_mismatch() -> None:
    flow, clock, outbox = gate()
    same = format_card_qr(MAI.id_number, MAI.full_name, MAI.date_of_birth, MAI.sex,
                          MAI.address, MAI.issue_date)
    verdict = flow.present(chip(MAI, qr=same))
    assert verdict.warnings == () and "qr_mismatch" not in outbox.events[0]["details"]
    clock.advance(10)
    # the reading session's own comparison is carried through too
    verdict = flow.present(chip(MAI, qr_mismatch=["full_name"]))
    assert outbox.events[1]["details"] == {"qr_mismatch": ["full_name"]}


def test_commit_failure_shows_not_recorded_and_changes_nothing() -> None:
    flow, _, outbox = gate()
    outbox.fail = True
    verdict = flow.present(chip(MAI))
    assert not verdict.accepted and verdict.outcome is Outcome.NOT_RECORDED
    assert verdict.title_vi == "Chưa ghi nhận"
    outbox.fail = False
    assert flow.present(chip(MAI)).outcome is Outcome.ACCEPTED  # not debounced
    assert flow.counts.entries == 1


def test_counts_reset_at_local_midnight() -> None:
    flow, clock, _ = gate()
    clock.now = datetime(2025, 4, 30, 23, 59, 58, tzinfo=ICT)
    flow.present(chip(MAI))
    assert flow.counts.entries == 1
    clock.advance(5)
    assert flow.counts.entries == 0 and flow.counts.day == date(2025, 5, 1)


def test_naive_clock_is_refused() -> None:
    flow = HeritageGateFlow(settings(direction=Direction.ENTRY),
                            clock=lambda: datetime(2025, 1, 1), commit=Outbox())
    with pytest.raises(FlowError, match="aware"):
        flow.present(chip(MAI))


@pytest.mark.parametrize(("policy", "expected"), [
    (NameDisplay.FULL, "Nguyễn Thị Mai"), (NameDisplay.GIVEN, "Mai"),
    (NameDisplay.INITIALS, "N. T. M."), (NameDisplay.NONE, None)])
def test_name_display_policy(policy: NameDisplay, expected: str | None) -> None:
    assert display_name("Nguyễn  Thị Mai", policy) == expected
    flow, _, _ = gate(name_display=policy, language=Language.EN)
    verdict = flow.present(chip(MAI))
    assert verdict.name == expected
    assert verdict.title == "Please enter" and verdict.title_in("vi") == "Mời vào"


def test_chip_signed_assurance_is_carried() -> None:
    flow, _, outbox = gate()
    flow.present(chip(MAI, assurance=Assurance.CHIP_SIGNED))
    assert outbox.events[0]["assurance"] == "chip-signed"


# -- hospital reception -------------------------------------------------------------------------

class FakeInsurance:
    def __init__(self, state: InsuranceState | None = None) -> None:
        self.state = state
        self.calls: list[tuple[str, str, date | BirthDate]] = []

    def lookup(self, id_number: str, full_name: str,
               date_of_birth: date | BirthDate) -> InsuranceStatus:
        self.calls.append((id_number, full_name, date_of_birth))
        if self.state is None:
            raise RuntimeError("adapter bug")
        return InsuranceStatus(self.state, "synthetic")


def hospital(insurance: Any = None) -> tuple[HospitalFlow, Clock, Outbox]:
    clock, outbox = Clock(datetime(2025, 4, 30, 7, 30, tzinfo=ICT)), Outbox()
    ids = iter(uuid.UUID(int=i | (4 << 76) | (0b10 << 62)) for i in range(1, 100))
    return HospitalFlow(settings(), clock=clock, commit=outbox, insurance=insurance,
                        new_stay_id=lambda: next(ids)), clock, outbox


@pytest.mark.parametrize("state", list(InsuranceState))
def test_visit_records_the_insurance_answer(state: InsuranceState) -> None:
    adapter = FakeInsurance(state)
    flow, _, outbox = hospital(adapter)
    verdict = flow.visit(chip(MAI), department="Khoa Nội")
    assert verdict.accepted and verdict.insurance == state.value
    assert adapter.calls == [(MAI.id_number, MAI.full_name, BirthDate.of(MAI.date_of_birth))]
    event = outbox.events[0]
    assert event["kind"] == "visit"
    assert event["details"] == {"insurance": state.value, "department": "Khoa Nội"}
    assert_no_personal_data_outside_sealed(event, MAI)
    assert ("insurance-" + state.value in verdict.warnings) == (state is not InsuranceState.VALID)
    assert verdict.title_vi == "Đã tiếp nhận" and "BHYT" in verdict.message_vi


def test_visit_without_adapter_is_not_checked_and_adapter_errors_are_unknown() -> None:
    flow, _, outbox = hospital(None)
    flow.visit(card_qr(MAI))
    assert outbox.events[0]["details"] == {"insurance": "not-checked"}
    flow, _, outbox = hospital(FakeInsurance(None))
    assert flow.visit(card_qr(MAI)).insurance == "unknown"


def test_visit_double_tap_is_counted_once_without_a_second_lookup() -> None:
    adapter = FakeInsurance(InsuranceState.VALID)
    flow, _, outbox = hospital(adapter)
    flow.visit(chip(MAI))
    assert flow.visit(chip(MAI)).outcome is Outcome.ALREADY_COUNTED
    assert len(adapter.calls) == 1 and len(outbox.events) == 1


def test_visit_rejects_groups_and_bad_departments() -> None:
    flow, _, _ = hospital()
    with pytest.raises(FlowInputError, match="count"):
        flow.visit(chip(MAI, count=2))
    with pytest.raises(FlowInputError, match="department"):
        flow.visit(chip(MAI), department="079303001234")


def test_manual_visit_for_paper_insurance() -> None:
    flow, _, outbox = hospital()
    verdict = flow.visit(ManualPresentation(ManualReason.PAPER_INSURANCE))
    assert verdict.accepted and "thẻ BHYT giấy" in verdict.message_vi
    assert outbox.events[0]["details"] == {"counts_as": "visit"}


def test_failed_read_at_hospital_is_rejected_without_lookup() -> None:
    adapter = FakeInsurance(InsuranceState.VALID)
    flow, _, outbox = hospital(adapter)
    verdict = flow.visit(failed_chip(FailureReason.CLONE_SUSPECTED))
    assert not verdict.accepted and adapter.calls == []
    assert outbox.events[0]["details"] == {"attempted": "visit"}


def open_box(event: dict[str, Any]) -> dict[str, Any]:
    aad = f"{event['event_id']}|{event['device_id']}".encode()
    payload = open_sealed(SealedBox.from_json(event["sealed"]), CENTRE, aad)
    validate("stay-personal.v1", payload)
    return payload


def test_admission_and_discharge_seal_personal_data() -> None:
    flow, clock, outbox = hospital()
    verdict = flow.admit(chip(MAI), ward="Khoa Nội 3", expected_departure=date(2025, 5, 3))
    assert verdict.accepted and verdict.title_vi == "Đã nhập viện" and verdict.stay_id
    start = outbox.events[0]
    assert start["kind"] == "stay.start" and start["sealed"] is not None
    assert start["details"] == {"stay_id": str(verdict.stay_id), "ward_or_room": "Khoa Nội 3",
                                "expected_departure": "2025-05-03", "reason_code": "treatment"}
    assert_no_personal_data_outside_sealed(start, MAI)
    assert open_box(start) == {
        "full_name": "Nguyễn Thị Mai", "id_number": "079303001234",
        "date_of_birth": "2003-05-15", "sex": "F", "nationality": "VNM", "address": None,
        "document_type": "cccd"}
    assert [s.stay_id for s in flow.open_stays] == [verdict.stay_id]
    clock.advance(3 * 86400)
    done = flow.discharge(card_qr(MAI))
    assert done.accepted and done.title_vi == "Đã ra viện" and done.stay_id == verdict.stay_id
    end = outbox.events[1]
    assert end["kind"] == "stay.end" and end["details"]["stay_id"] == str(verdict.stay_id)
    assert_no_personal_data_outside_sealed(end, MAI)
    assert open_box(end)["address"] == MAI.address  # from the card QR this time
    assert flow.open_stays == ()
    assert flow.counts.stays_ended == 1


def test_an_in_patients_card_shown_for_the_discharge_is_not_another_visit() -> None:
    flow, clock, outbox = hospital(FakeInsurance(InsuranceState.VALID))
    flow.visit(card_qr(MAI))
    flow.admit(card_qr(MAI), ward="Khoa Nội 3", expected_departure=date(2025, 5, 3))
    clock.advance(600)  # past the dedupe window, the same day
    shown = flow.visit(chip(MAI))
    assert (shown.outcome, shown.reason, shown.title_vi) == (
        Outcome.SELECTED, "in-patient", "Đang nội trú")
    assert "Khoa Nội 3" in shown.message_vi
    assert flow.discharge(chip(MAI)).accepted
    again = flow.visit(chip(MAI))  # the same day: one visit per person and day at a desk
    assert (again.outcome, again.reason) == (Outcome.SELECTED, "visited-today")
    assert outbox.kinds == ["visit", "stay.start", "stay.end"]
    assert flow.counts.visits == 1


def test_a_ward_with_control_characters_is_refused_before_any_event() -> None:
    flow, _, outbox = hospital()
    with pytest.raises(FlowInputError, match="control characters"):
        flow.admit(chip(MAI), ward="Khoa\x00 3", expected_departure=date(2025, 5, 3))
    assert outbox.events == []


def test_discharge_without_open_stay_or_of_someone_else() -> None:
    flow, _, outbox = hospital()
    verdict = flow.discharge(chip(MAI))
    assert verdict.outcome is Outcome.REFUSED and verdict.reason == "stay-not-found"
    admitted = flow.admit(chip(BINH), ward="Khoa Ngoại", expected_departure=date(2025, 5, 1))
    other = flow.discharge(chip(MAI), stay_id=admitted.stay_id)
    assert other.reason == "stay-other-person" and not other.accepted
    assert outbox.kinds == ["stay.start"]
    again = flow.admit(chip(BINH), ward="Khoa Ngoại", expected_departure=date(2025, 5, 1))
    assert again.reason == "stay-already-open"
    with pytest.raises(FlowInputError, match="stay_id"):
        flow.discharge(chip(BINH), stay_id="not-a-uuid")


def test_admission_input_checks() -> None:
    flow, _, _ = hospital()
    with pytest.raises(FlowInputError, match="expected_departure"):
        flow.admit(chip(MAI), ward="A1", expected_departure=date(2025, 4, 29))
    with pytest.raises(FlowInputError, match="ward"):
        flow.admit(chip(MAI), ward="   ", expected_departure=date(2025, 5, 1))
    with pytest.raises(FlowInputError, match="reason_code"):
        flow.admit(chip(MAI), ward="A1", expected_departure=date(2025, 5, 1),
                   reason_code="holiday")


def test_failed_admission_read_has_no_personal_data() -> None:
    flow, _, outbox = hospital()
    flow.admit(QrPresentation(b"garbage"), ward="A1", expected_departure=date(2025, 5, 1))
    event = outbox.events[0]
    assert event["kind"] == "rejected" and event["sealed"] is None
    assert event["details"] == {"attempted": "stay.start"}


# -- accommodation desk -------------------------------------------------------------------------

def test_accommodation_check_in_and_out() -> None:
    clock, outbox = Clock(datetime(2025, 4, 30, 23, 30, tzinfo=ICT)), Outbox()
    flow = AccommodationFlow(settings(language=Language.VI), clock=clock, commit=outbox)
    verdict = flow.check_in(card_qr(BINH), room="204", expected_departure=date(2025, 5, 2),
                            reason_code=StayReason.BUSINESS)
    assert verdict.accepted and verdict.title == "Đã nhận phòng"
    assert "Phòng 204" in verdict.message_vi and "02/05/2025" in verdict.message_vi
    start = outbox.events[0]
    assert start["method"] == "card-qr" and start["assurance"] == "qr"
    assert start["details"]["reason_code"] == "business"
    assert open_box(start)["address"] == BINH.address
    assert_no_personal_data_outside_sealed(start, BINH)
    clock.advance(36 * 3600)
    out = flow.check_out(chip(BINH), stay_id=verdict.stay_id)
    assert out.accepted and out.title_vi == "Đã trả phòng"
    assert outbox.kinds == ["stay.start", "stay.end"]
    assert_no_personal_data_outside_sealed(outbox.events[1], BINH)
    assert flow.check_out(chip(BINH)).reason == "stay-not-found"


def test_stays_restore_after_restart() -> None:
    clock, outbox = Clock(datetime(2025, 4, 30, 12, 0, tzinfo=ICT)), Outbox()
    first = AccommodationFlow(settings(), clock=clock, commit=outbox)
    first.check_in(chip(MAI), room="101", expected_departure=date(2025, 5, 1))
    second = AccommodationFlow(settings(), clock=clock, commit=outbox)
    second.restore_stays(first.open_stays)
    clock.advance(60)
    assert second.check_out(chip(MAI)).accepted


def test_a_stay_restored_without_its_local_subject_ends_by_its_stay_id() -> None:
    """A crash between the outbox and the stay register: the stay comes back with the unknown
    subject (the event carries none in clear); no card matches it, its stay_id ends it."""
    clock, outbox = Clock(datetime(2025, 4, 30, 12, 0, tzinfo=ICT)), Outbox()
    first = AccommodationFlow(settings(), clock=clock, commit=outbox)
    first.check_in(chip(MAI), room="101", expected_departure=date(2025, 5, 1))
    (stay,) = first.open_stays
    second = AccommodationFlow(settings(), clock=clock, commit=outbox)
    second.restore_stays([replace(stay, subject=UNKNOWN_SUBJECT)])
    clock.advance(60)
    assert second.check_out(chip(MAI)).reason == "stay-not-found"
    out = second.check_out(chip(MAI), stay_id=stay.stay_id)
    assert out.accepted and outbox.kinds == ["stay.start", "stay.end"]
    assert sealed_ref(outbox.events[-1]) == MAI.id_number


def test_local_subjects_match_across_a_key_rotation(tmp_path: Path) -> None:
    """The device-local key rotates daily; a guest checked in under yesterday's key still
    checks out by card, and a repeat tap across the rotation is still a repeat."""
    clock = Clock(datetime(2025, 4, 30, 12, 0, tzinfo=ICT))
    ring = SubjectKeyring(tmp_path / "keys", clock=clock)
    outbox = Outbox()
    desk = AccommodationFlow(settings(subjects=ring), clock=clock, commit=outbox)
    desk.check_in(chip(MAI), room="101", expected_departure=date(2025, 5, 2))
    gate_flow = HeritageGateFlow(settings(direction=Direction.ENTRY, subjects=ring),
                                 clock=clock, commit=outbox)
    clock.advance(24 * 3600 - 1)
    assert gate_flow.present(chip(BINH)).outcome is Outcome.ACCEPTED
    assert ring.generations == [1]
    clock.advance(2)  # the next key is due
    assert gate_flow.present(chip(BINH)).outcome is Outcome.ALREADY_COUNTED
    assert ring.generations == [1, 2]
    assert desk.check_out(chip(MAI)).accepted


# -- BHYT card QR at the desk, QR expiry policy ---------------------------------------------

BHYT = format_bhyt("DN4797930012345", "Nguyễn Thị Mai", date(2003, 5, 15), Sex.FEMALE,
                   "1 Đường C, Phường A", "79 - 001", date(2025, 1, 1), date(2025, 12, 31),
                   date(2024, 12, 20))


def test_bhyt_card_qr_is_a_visit_by_insurance_card() -> None:
    flow, clock, outbox = hospital()
    verdict = flow.visit(QrPresentation(BHYT.encode()), department="Khoa Nội")
    assert verdict.accepted and verdict.insurance == "valid"
    assert verdict.masked_id == "***********2345"
    event = outbox.events[-1]
    assert (event["kind"], event["method"], event["assurance"]) == ("visit", "bhyt-qr", "qr")
    assert event["details"] == {"insurance": "valid", "department": "Khoa Nội"}
    assert event["demographics"] == {"age_band": "15-24", "sex": "F", "birth_province": None}
    assert event["subject"] is None and sealed_ref(event) == "bhyt:7930012345"
    again = flow.visit(QrPresentation(BHYT.encode()))
    assert again.outcome is Outcome.ALREADY_COUNTED and len(outbox.events) == 1
    clock.advance(3600 * 24 * 300)  # 2026: the card's validity has ended
    late = flow.visit(QrPresentation(BHYT.encode()))
    assert late.accepted and late.insurance == "invalid" and "insurance-invalid" in late.warnings


def test_bhyt_card_qr_is_refused_where_an_identity_is_needed() -> None:
    flow, _, outbox = gate()
    verdict = flow.present(QrPresentation(BHYT))
    assert verdict.reason == "bhyt-not-accepted" and not verdict.accepted
    assert outbox.events[-1]["method"] == "bhyt-qr"
    hosp, _, hosp_outbox = hospital()
    admitted = hosp.admit(QrPresentation(BHYT), ward="Khoa Nội",
                          expected_departure=date(2025, 5, 2))
    assert admitted.reason == "bhyt-not-accepted"
    assert hosp_outbox.events[-1]["kind"] == "rejected"


def test_malformed_bhyt_is_qr_invalid() -> None:
    flow, _, outbox = hospital()
    verdict = flow.visit(QrPresentation(BHYT.replace("|2|", "|9|")))
    assert verdict.reason == "qr-invalid" and outbox.events[-1]["kind"] == "rejected"


# Mai born 15/05/2003, card QR issued 20/08/2021: the derived expiry is 15/05/2028.
OLD_QR = format_card_qr(MAI.id_number, MAI.full_name, MAI.date_of_birth, MAI.sex, MAI.address,
                        date(2021, 8, 20))
FUTURE_QR = format_card_qr(MAI.id_number, MAI.full_name, MAI.date_of_birth, MAI.sex,
                           MAI.address, date(2025, 6, 1))


@pytest.mark.parametrize(("payload", "flag"), [(OLD_QR, "card-expired"),
                                               (FUTURE_QR, "issue-date-future")])
def test_qr_expiry_policy_flag_accepts_and_records(payload: str, flag: str) -> None:
    flow, clock, outbox = gate()
    if flag == "card-expired":
        clock.now = datetime(2028, 5, 16, 9, 0, tzinfo=ICT)
    verdict = flow.present(QrPresentation(payload))
    assert verdict.accepted and f"qr-{flag}" in verdict.warnings
    assert "Lưu ý mã QR" in verdict.message_vi
    assert outbox.events[-1]["details"] == {"qr_flags": [flag]}


@pytest.mark.parametrize(("payload", "reason"), [(OLD_QR, "expired-card"),
                                                 (FUTURE_QR, "issue-date-future")])
def test_qr_expiry_policy_refuse_rejects(payload: str, reason: str) -> None:
    flow, clock, outbox = gate(qr_expiry=QrExpiryPolicy.REFUSE)
    if reason == "expired-card":
        clock.now = datetime(2028, 5, 16, 9, 0, tzinfo=ICT)
    verdict = flow.present(QrPresentation(payload))
    assert not verdict.accepted and verdict.reason == reason
    assert outbox.events[-1]["reason"] == reason


def test_qr_expiry_uses_the_latest_candidate_and_lifetime_cards() -> None:
    flow, clock, _ = gate(qr_expiry=QrExpiryPolicy.REFUSE)
    clock.now = datetime(2028, 5, 15, 9, 0, tzinfo=ICT)  # the last valid day
    assert flow.present(QrPresentation(OLD_QR)).accepted
    elder = format_card_qr(BINH.id_number, BINH.full_name, BINH.date_of_birth, BINH.sex,
                           BINH.address, BINH.issue_date)  # issued at 63: never expires
    clock.now = datetime(2050, 1, 1, 9, 0, tzinfo=ICT)
    assert flow.present(QrPresentation(elder)).accepted


def test_partial_birth_date_card_qr_reaches_the_event() -> None:
    flow, _, outbox = gate()
    payload = format_card_qr(BINH.id_number, BINH.full_name, BirthDate(1958), BINH.sex,
                             BINH.address, BINH.issue_date)
    assert flow.present(QrPresentation(payload)).accepted
    assert outbox.events[-1]["demographics"]["age_band"] == "60+"


def test_a_held_vneid_token_is_not_resolved_twice_by_the_desk() -> None:
    """Visit, then admission of the same held presentation: one resolution on the platform
    (a second would be a replay); after the token's 5 minutes the desk asks again."""
    verifier = FakeVerifier(MAI_VERIFIED)
    clock, outbox = Clock(datetime(2025, 4, 30, 7, 30, tzinfo=ICT)), Outbox()
    flow = HospitalFlow(settings(), clock=clock, commit=outbox, vneid=verifier)
    held = QrPresentation(TOKEN)
    assert flow.visit(held).accepted
    admitted = flow.admit(held, ward="Khoa Nội", expected_departure=date(2025, 5, 2))
    assert admitted.accepted and verifier.tokens == [TOKEN]
    clock.advance(301)
    verifier.answer = IdentityAnswer(IdentityState.REJECTED, "replayed")
    assert flow.discharge(held).reason == "vneid-replayed"
    assert verifier.tokens == [TOKEN, TOKEN]

"""Hospital reception: visit check-in with the BHYT look-up; admission and discharge
(DESIGN.md §2.1; CCCD.md §8 — official letter 931/BYT-BH lets the chip CCCD or VNeID replace the
BHYT card; CCCD.md §9 — in-patients are accommodation notices).

- ``visit``: one ``visit`` event, ``details.insurance`` = valid | invalid | unknown |
  not-checked. The patient is checked in whatever the answer (treatment is not refused for an
  insurance problem); the receptionist sees the answer. The adapter bounds its own time-out;
  anything it raises counts as ``unknown``.
- ``admit``: ``stay.start`` (ward, expected discharge, reason, personal data sealed).
- ``discharge``: ``stay.end`` for the patient's open stay. An in-patient's card shown again
  (to be discharged) records no ``visit``: the kiosk says "Đang nội trú" and the desk selects
  the patient; counting it would inflate the visits and the insured-visit ratio.
- ``manual``: a counted visit without a card (child, paper BHYT card, …).
- A BHYT card QR scanned for a visit (docs/cccd.md §5): a ``visit`` with method ``bhyt-qr`` and
  assurance ``qr`` (the code is unsigned); ``details.insurance`` is ``valid`` when the card's
  validity covers today, else ``invalid``. The subject is the keyed HMAC of ``bhyt:`` and the
  card's 10-digit social-insurance number (never the same value as an ID number's subject);
  the demographics are the age band and sex, with no birth province (the card has no ID
  number). Admission and discharge need an identity document and refuse it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

from edge_agent.cccd import BhytCard, mask_id
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    age_band,
)
from edge_agent.events.subject import subject_for
from edge_agent.flows import messages as msg
from edge_agent.flows.base import display_name
from edge_agent.flows.identify import Person, Unidentified
from edge_agent.flows.model import (
    ChipPresentation,
    Clock,
    Commit,
    FlowInputError,
    FlowSettings,
    ManualPresentation,
    Outcome,
    QrPresentation,
    StayReason,
    Verdict,
    VneidDecoder,
)
from edge_agent.flows.stays import StayFlow
from edge_agent.insurance import InsuranceAdapter, InsuranceState

log = logging.getLogger(__name__)

MAX_DEPARTMENT_CHARS = 64


class HospitalFlow(StayFlow):
    """One reception desk of a hospital or commune health station."""

    ACTIONS = ("manual", "admit", "discharge")

    def __init__(self, settings: FlowSettings, *, clock: Clock, commit: Commit,
                 insurance: InsuranceAdapter | None = None, vneid: VneidDecoder | None = None,
                 new_stay_id: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        super().__init__(settings, clock=clock, commit=commit, vneid=vneid,
                         new_stay_id=new_stay_id)
        self._insurance = insurance

    def _lookup(self, person: Person) -> str:
        if self._insurance is None:
            return "not-checked"
        try:
            status = self._insurance.lookup(person.id_number, person.full_name,
                                            person.date_of_birth)
        except Exception:
            log.exception("insurance adapter raised; recorded as unknown")
            return InsuranceState.UNKNOWN.value
        return InsuranceState(status.state).value

    def visit(self, presentation: ChipPresentation | QrPresentation | ManualPresentation, *,
              department: str | None = None) -> Verdict:
        """Check a patient in for a visit (or count one by hand)."""
        if department is not None:
            department = " ".join(department.split())
            if not 1 <= len(department) <= MAX_DEPARTMENT_CHARS or \
                    any(c.isdigit() for c in department):
                raise FlowInputError("department", f"must be 1..{MAX_DEPARTMENT_CHARS} "
                                     "characters without digits")
        now = self._now()
        if isinstance(presentation, ManualPresentation):
            return self._manual(presentation, EventKind.VISIT, now, allow_group=False)
        self._check_count(presentation.count, allow_group=False)
        person = self._identify_any(presentation, now)
        if isinstance(person, BhytCard):
            return self._bhyt_visit(person, now, department)
        if isinstance(person, Unidentified):
            return self._reject(person.reason, person.method, now, attempted=EventKind.VISIT)
        subject = self._subject(person)
        stay = next((s for s in self.open_stays if s.subject == subject), None)
        if stay is not None:  # shown for the discharge, not a new visit
            return self._verdict(Outcome.ALREADY_COUNTED, msg.T_INPATIENT,
                                 msg.M_INPATIENT.format(room=stay.ward_or_room), person=person,
                                 reason="in-patient")
        if self._is_repeat(subject, EventKind.VISIT, now):
            return self._verdict(Outcome.ALREADY_COUNTED, msg.T_DUPLICATE, msg.M_DUPLICATE,
                                 person=person, reason="already-counted")
        insurance = self._lookup(person)
        details: dict[str, object] = {"insurance": insurance}
        if department:
            details["department"] = department
        warnings = [f"insurance-{insurance}"] if insurance in ("invalid", "unknown") else []
        draft = self._draft(EventKind.VISIT, person, subject, now, details=details)
        verdict = self._verdict(Outcome.ACCEPTED, msg.T_VISIT,
                                msg.M_VISIT + msg.INSURANCE[insurance], person=person,
                                warnings=warnings, drafts=(draft,), insurance=insurance)
        return self._record((draft,), verdict, person)

    def _bhyt_visit(self, card: BhytCard, now: datetime, department: str | None) -> Verdict:
        subject = subject_for("bhyt:" + card.social_insurance_number, self.settings.subject_key)
        masked = mask_id(card.card_number)
        name = display_name(card.full_name, self.settings.name_display)
        if self._is_repeat(subject, EventKind.VISIT, now):
            return replace(self._verdict(Outcome.ALREADY_COUNTED, msg.T_DUPLICATE,
                                         msg.M_DUPLICATE, reason="already-counted"),
                           masked_id=masked, name=name)
        insurance = "valid" if card.valid_on(now.date()) else "invalid"
        details: dict[str, object] = {"insurance": insurance}
        if department:
            details["department"] = department
        draft = EventDraft(
            kind=EventKind.VISIT, method=Method.BHYT_QR, assurance=EventAssurance.QR,
            occurred_at=now, subject=subject, count=1,
            demographics=Demographics(age_band=age_band(card.birth_date, now.date()),
                                      sex=card.sex.value, birth_province=None),
            reason=None, details=details)
        warnings = ["insurance-invalid"] if insurance == "invalid" else []
        verdict = self._verdict(Outcome.ACCEPTED, msg.T_VISIT,
                                msg.M_VISIT + msg.INSURANCE[insurance], warnings=warnings,
                                drafts=(draft,), insurance=insurance)
        return self._record((draft,), replace(verdict, masked_id=masked, name=name))

    def admit(self, presentation: ChipPresentation | QrPresentation, *, ward: str,
              expected_departure: date,
              reason_code: StayReason | str = StayReason.TREATMENT) -> Verdict:
        """Admission of an in-patient (or a caregiver staying with one): ``stay.start``."""
        return self._start(presentation, room=ward, expected_departure=expected_departure,
                           reason_code=reason_code, room_field="ward",
                           title=msg.T_ADMITTED, message=msg.M_ADMITTED)

    def discharge(self, presentation: ChipPresentation | QrPresentation, *,
                  stay_id: uuid.UUID | str | None = None) -> Verdict:
        """Discharge: ``stay.end`` of the patient's open stay (or of ``stay_id``)."""
        return self._end(presentation, stay_id, title=msg.T_DISCHARGED,
                         message=msg.M_DISCHARGED)

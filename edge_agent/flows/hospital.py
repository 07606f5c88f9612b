"""Hospital reception: visit check-in with the BHYT look-up; admission and discharge
(docs/design.md §2.1; docs/cccd.md §8 — official letter 931/BYT-BH lets the chip CCCD or VNeID
replace the BHYT card; docs/cccd.md §9 — in-patients are accommodation notices).

- ``visit``: one ``visit`` event, ``details.insurance`` = valid | invalid | unknown |
  not-checked. The patient is checked in whatever the answer (treatment is not refused for an
  insurance problem); the receptionist sees the answer. The adapter bounds its own time-out;
  anything it raises counts as ``unknown``.
- ``admit``: ``stay.start`` (ward, expected discharge, reason, personal data sealed).
- ``discharge``: ``stay.end`` for the patient's open stay. An in-patient's card shown again
  (to be discharged) records no ``visit``: the kiosk says "Đang nội trú" and the desk selects
  the patient; counting it would inflate the visits and the insured-visit ratio.
- ``manual``: a counted visit without a card (child, paper BHYT card, …).
- One visit per person and day at a desk (docs/design.md §2.1): showing the card again does not
  record a second ``visit`` when it is for a stay action. A presentation is *selected* (outcome
  ``selected``, no event, the kiosk says so; the verdict's reason ``selected-for-stay``,
  ``in-patient`` or ``visited-today`` says why) instead of recorded when (1) the receptionist chose
  "the next card is for an admission / a discharge" on the desk page (``for_stay``), or (2) the
  person has an open stay at this desk (an in-patient shows the card to be discharged), or (3)
  this desk already recorded the person's visit today (the admission after the consultation).
  The selection is what the desk's admit and discharge then act on. The visits of the day are
  remembered in memory and restored from the outbox at start-up.
- The look-up goes through :class:`edge_agent.insurance_checks.InsuranceChecks` in the agent
  (bounded wait, background re-checks): an answer still on its way is recorded as ``unknown``
  and the kiosk says "Đang kiểm tra BHYT"; ``recheck`` is told of every ``unknown`` visit once
  it is committed, and a later answer travels as a ``visit.insurance`` follow-up.
- A BHYT card QR scanned for a visit (docs/cccd.md §5): a ``visit`` with method ``bhyt-qr`` and
  assurance ``qr`` (the code is unsigned); ``details.insurance`` is ``valid`` when the card's
  validity covers today, else ``invalid``. The subject is keyed from ``bhyt:`` and the
  card's 10-digit social-insurance number (never the same value as an ID number's subject);
  the demographics are the age band and sex, with no birth province (the card has no ID
  number). Admission and discharge need an identity document and refuse it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta

from edge_agent.cccd import BhytCard, mask_id
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    age_band,
)
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
from edge_agent.insurance_checks import PENDING

log = logging.getLogger(__name__)

MAX_DEPARTMENT_CHARS = 64


class HospitalFlow(StayFlow):
    """One reception desk of a hospital or commune health station."""

    ACTIONS = ("manual", "admit", "discharge", "next")
    """``next``: what the next card is for (visit | admit | discharge), chosen on the desk."""

    def __init__(self, settings: FlowSettings, *, clock: Clock, commit: Commit,
                 insurance: InsuranceAdapter | None = None, vneid: VneidDecoder | None = None,
                 new_stay_id: Callable[[], uuid.UUID] = uuid.uuid4,
                 recheck: Callable[[EventDraft, Person], None] | None = None) -> None:
        super().__init__(settings, clock=clock, commit=commit, vneid=vneid,
                         new_stay_id=new_stay_id)
        self._insurance = insurance
        self._recheck = recheck
        self._visited: tuple[date, set[str]] = (date.min, set())

    def _lookup(self, person: Person) -> tuple[str, bool]:
        """The wire answer, and whether it was still on its way (``pending``)."""
        if self._insurance is None:
            return "not-checked", False
        try:
            status = self._insurance.lookup(person.id_number, person.full_name,
                                            person.date_of_birth)
        except Exception:
            log.exception("insurance adapter raised; recorded as unknown")
            return InsuranceState.UNKNOWN.value, False
        return InsuranceState(status.state).value, status.detail == PENDING

    def would_look_up(self, person: Person) -> bool:
        """Whether a visit by ``person`` now would ask the insurance gateway (no repeat, no
        open stay, no visit today); read-only, for the agent's look-up ahead of its lock."""
        if self._insurance is None:
            return False
        now = self._clock()
        known = self._subjects(person)
        last = self._last_seen(known, EventKind.VISIT)
        if last is not None and now - last < timedelta(seconds=self.settings.dedupe_window_s):
            return False
        visited = self._visited[1] if self._visited[0] == now.date() else set()
        return not (known & visited) and not any(
            s.subject in known for s in list(self._open.values()))

    def restore_visits(self, subjects: list[str]) -> None:
        """Put back the subjects whose visit this desk recorded today (after a restart)."""
        self._visited_today(self._now()).update(subjects)

    def _visited_today(self, now: datetime) -> set[str]:
        if self._visited[0] != now.date():
            self._visited = (now.date(), set())
        return self._visited[1]

    def visit(self, presentation: ChipPresentation | QrPresentation | ManualPresentation, *,
              department: str | None = None, for_stay: bool = False) -> Verdict:
        """Check a patient in for a visit (or count one by hand); or only select the patient
        for a stay action (``for_stay``, an open stay, a visit already today: see above)."""
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
        subject, known = self._subject(person), self._subjects(person)
        stay = next((s for s in self.open_stays if s.subject in known), None)
        if stay is not None:  # shown for the discharge, not a new visit: the patient is selected
            return self._verdict(Outcome.SELECTED, msg.T_INPATIENT,
                                 msg.M_INPATIENT.format(room=stay.ward_or_room), person=person,
                                 reason="in-patient")
        if self._is_repeat(known, EventKind.VISIT, now):
            return self._verdict(Outcome.ALREADY_COUNTED, msg.T_DUPLICATE, msg.M_DUPLICATE,
                                 person=person, reason="already-counted")
        visited = self._visited_today(now)
        why = (("selected-for-stay", msg.M_SELECTED_FOR_STAY) if for_stay
               else ("in-patient", msg.M_SELECTED_IN_PATIENT)
               if any(s.subject in known for s in self._open.values())
               else ("visited-today", msg.M_SELECTED_VISITED) if known & visited else None)
        if why is not None:  # the reason says why no visit was recorded
            return self._verdict(Outcome.SELECTED, msg.T_SELECTED, why[1], person=person,
                                 reason=why[0])
        insurance, pending = self._lookup(person)
        details: dict[str, object] = {"insurance": insurance}
        if department:
            details["department"] = department
        warnings = [f"insurance-{insurance}"] if insurance in ("invalid", "unknown") else []
        draft = self._draft(EventKind.VISIT, person, subject, now, details=details)
        answer = msg.INSURANCE[PENDING if pending else insurance]
        verdict = self._verdict(Outcome.ACCEPTED, msg.T_VISIT, msg.M_VISIT + answer,
                                person=person, warnings=warnings, drafts=(draft,),
                                insurance=insurance)
        verdict = self._record((draft,), verdict, person)
        if verdict.outcome is Outcome.ACCEPTED:
            visited.add(subject)
            if insurance == InsuranceState.UNKNOWN.value and self._recheck is not None:
                self._recheck(draft, person)
        return verdict

    def _bhyt_visit(self, card: BhytCard, now: datetime, department: str | None) -> Verdict:
        ref = "bhyt:" + card.social_insurance_number
        subject = self.settings.local.subject(ref, now)
        masked = mask_id(card.card_number)
        name = display_name(card.full_name, self.settings.name_display)
        if self._is_repeat(self.settings.local.candidates(ref, now), EventKind.VISIT, now):
            return replace(self._verdict(Outcome.ALREADY_COUNTED, msg.T_DUPLICATE,
                                         msg.M_DUPLICATE, reason="already-counted"),
                           masked_id=masked, name=name)
        insurance = "valid" if card.valid_on(now.date()) else "invalid"
        details: dict[str, object] = {"insurance": insurance}
        if department:
            details["department"] = department
        draft = EventDraft(
            kind=EventKind.VISIT, method=Method.BHYT_QR, assurance=EventAssurance.QR,
            occurred_at=now, subject=subject, subject_ref=ref, count=1,
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

    def discharge_stay(self, stay_id: uuid.UUID | str) -> Verdict:
        """Discharge picked from the desk's list of open stays, without the card."""
        return self.end_stay(stay_id, title=msg.T_DISCHARGED, message=msg.M_DISCHARGED)

    def discharge(self, presentation: ChipPresentation | QrPresentation, *,
                  stay_id: uuid.UUID | str | None = None) -> Verdict:
        """Discharge: ``stay.end`` of the patient's open stay (or of ``stay_id``)."""
        return self._end(presentation, stay_id, title=msg.T_DISCHARGED,
                         message=msg.M_DISCHARGED)

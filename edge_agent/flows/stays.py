"""Stays: the events behind accommodation notices (Residence Law 2020 art. 30; Circular
55/2021/TT-BCA; docs/cccd.md §9).

``stay.start`` (admission, hotel check-in) and ``stay.end`` (discharge, check-out) carry the
guest's personal data — full name, ID number, date of birth, sex, nationality, address, document
type — sealed to the centre's X25519 key; only the stay's id, ward or room, expected departure
and reason code travel in clear, with the subject and demographics like every identified event.
The centre files the notice before its deadline (23:00 the same day, 08:00 the next day for
arrivals after 23:00).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime

from edge_agent.cccd import mask_id
from edge_agent.events.model import EventDraft, EventKind
from edge_agent.flows import messages as msg
from edge_agent.flows.base import FlowBase, display_name
from edge_agent.flows.identify import Person, Unidentified
from edge_agent.flows.messages import Text
from edge_agent.flows.model import (
    UNKNOWN_SUBJECT,
    ChipPresentation,
    Clock,
    Commit,
    FlowInputError,
    FlowSettings,
    OpenStay,
    Outcome,
    QrPresentation,
    StayReason,
    Verdict,
    VneidDecoder,
)

MAX_ROOM_CHARS = 32


class StayFlow(FlowBase):
    """Stay start / end shared by hospital reception and the accommodation desk."""

    def __init__(self, settings: FlowSettings, *, clock: Clock, commit: Commit,
                 vneid: VneidDecoder | None = None,
                 new_stay_id: Callable[[], uuid.UUID] = uuid.uuid4) -> None:
        super().__init__(settings, clock=clock, commit=commit, vneid=vneid)
        self._new_stay_id = new_stay_id
        self._open: dict[uuid.UUID, OpenStay] = {}
        self._guests: dict[uuid.UUID, Person] = {}
        """Who each stay opened since start-up belongs to (memory only, never on disk): the
        desk ends such a stay from its list without the card. A stay restored after a
        restart needs the card again."""

    @property
    def open_stays(self) -> tuple[OpenStay, ...]:
        return tuple(sorted(self._open.values(), key=lambda stay: stay.started_at))

    def restore_stays(self, stays: Sequence[OpenStay]) -> None:
        """Put back the open stays after a restart (from the outbox or the centre)."""
        for stay in stays:
            self._open[stay.stay_id] = stay

    def _after_commit(self, drafts: Sequence[EventDraft]) -> None:
        for draft in drafts:
            if not draft.kind.is_stay or draft.subject is None:
                continue
            stay_id = uuid.UUID(str(draft.details["stay_id"]))
            if draft.kind is EventKind.STAY_START:
                self._open[stay_id] = OpenStay(
                    stay_id=stay_id, subject=draft.subject,
                    ward_or_room=str(draft.details["ward_or_room"]),
                    expected_departure=date.fromisoformat(
                        str(draft.details["expected_departure"])),
                    reason_code=StayReason(str(draft.details["reason_code"])),
                    started_at=draft.occurred_at)
            else:
                self._open.pop(stay_id, None)
                self._guests.pop(stay_id, None)

    def stay_list(self) -> list[dict[str, object]]:
        """The open stays for the desk's list: masked ID and name when known, ward or room,
        expected departure, reason, whether it can end without the card."""
        rows: list[dict[str, object]] = []
        for stay in self.open_stays:
            guest = self._guests.get(stay.stay_id)
            rows.append({
                "stay_id": str(stay.stay_id), "ward_or_room": stay.ward_or_room,
                "expected_departure": stay.expected_departure.isoformat(),
                "reason_code": stay.reason_code.value,
                "started_at": stay.started_at.isoformat(timespec="minutes"),
                "masked_id": mask_id(guest.id_number) if guest else None,
                "name": (display_name(guest.full_name, self.settings.name_display)
                         if guest else None),
                "without_card": guest is not None})
        return rows

    def end_stay(self, stay_id: uuid.UUID | str, *, title: Text, message: Text) -> Verdict:
        """End an open stay picked from the desk's list, without the card (docs/design.md
        §2.1): only a stay opened since start-up, whose guest is still in memory."""
        try:
            key = uuid.UUID(str(stay_id))
        except ValueError:
            raise FlowInputError("stay_id", "is not a UUID") from None
        stay, guest = self._open.get(key), self._guests.get(key)
        if stay is None:
            raise FlowInputError("stay_id", "không có lượt lưu trú này / no such open stay")
        if guest is None:
            raise FlowInputError("stay_id", "chạm thẻ để kết thúc lượt này (thiết bị đã khởi "
                                 "động lại) / tap the card to end this stay (the device "
                                 "restarted)")
        return self._end_person(guest, stay, self._now(), title=title, message=message)

    @staticmethod
    def _room(value: str, field: str) -> str:
        room = " ".join(value.split())
        if not 1 <= len(room) <= MAX_ROOM_CHARS:
            raise FlowInputError(field, f"must be 1..{MAX_ROOM_CHARS} characters")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in room):
            # event.v1 refuses them (docs/protocol.md §4.6): the collector would reject the stay
            raise FlowInputError(field, "must not contain control characters")
        return room

    def _start(self, presentation: ChipPresentation | QrPresentation, *, room: str,
               expected_departure: date, reason_code: StayReason | str, room_field: str,
               title: Text, message: Text) -> Verdict:
        room = self._room(room, room_field)
        try:
            reason = StayReason(reason_code)
        except ValueError:
            choices = " | ".join(r.value for r in StayReason)
            raise FlowInputError("reason_code", f"must be one of {choices}") from None
        now = self._now()
        if expected_departure < now.date():
            raise FlowInputError("expected_departure", "is before today")
        self._check_count(presentation.count, allow_group=False)
        person = self._identify(presentation, now)
        if isinstance(person, Unidentified):
            return self._reject(person.reason, person.method, now,
                                attempted=EventKind.STAY_START)
        subject, known = self._subject(person), self._subjects(person)
        if self._is_repeat(known, EventKind.STAY_START, now) or any(
                stay.subject in known for stay in self._open.values()):
            return self._verdict(Outcome.REFUSED, msg.T_STAY_PROBLEM, msg.M_STAY_ALREADY_OPEN,
                                 person=person, reason="stay-already-open")
        stay_id = self._new_stay_id()
        details: dict[str, object] = {
            "stay_id": str(stay_id), "ward_or_room": room,
            "expected_departure": expected_departure.isoformat(), "reason_code": reason.value}
        draft = self._draft(EventKind.STAY_START, person, subject, now, details=details,
                            personal=True)
        verdict = self._verdict(
            Outcome.ACCEPTED, title,
            message.format(room=room, departure=expected_departure.strftime("%d/%m/%Y")),
            person=person, drafts=(draft,), stay_id=stay_id)
        verdict = self._record((draft,), verdict, person)
        if verdict.outcome is Outcome.ACCEPTED:
            self._guests[stay_id] = person
        return verdict

    def _end(self, presentation: ChipPresentation | QrPresentation,
             stay_id: uuid.UUID | str | None, *, title: Text, message: Text) -> Verdict:
        now = self._now()
        self._check_count(presentation.count, allow_group=False)
        person = self._identify(presentation, now)
        if isinstance(person, Unidentified):
            return self._reject(person.reason, person.method, now,
                                attempted=EventKind.STAY_END)
        known = self._subjects(person)
        stay: OpenStay | None
        if stay_id is not None:
            try:
                stay = self._open.get(uuid.UUID(str(stay_id)))
            except ValueError:
                raise FlowInputError("stay_id", "is not a UUID") from None
            if stay is not None and stay.subject != UNKNOWN_SUBJECT and stay.subject not in known:
                return self._verdict(Outcome.REFUSED, msg.T_STAY_PROBLEM,
                                     msg.M_STAY_OTHER_PERSON, person=person,
                                     reason="stay-other-person")
        else:
            stay = next((s for s in self.open_stays if s.subject in known), None)
        if stay is None:
            return self._verdict(Outcome.REFUSED, msg.T_STAY_PROBLEM, msg.M_STAY_NOT_FOUND,
                                 person=person, reason="stay-not-found")
        return self._end_person(person, stay, now, title=title, message=message)

    def _end_person(self, person: Person, stay: OpenStay, now: datetime, *, title: Text,
                    message: Text) -> Verdict:
        # The local subject the stay was opened under (the card's, for a stay restored
        # without one).
        subject = stay.subject if stay.subject != UNKNOWN_SUBJECT else self._subject(person)
        details: dict[str, object] = {
            "stay_id": str(stay.stay_id), "ward_or_room": stay.ward_or_room,
            "expected_departure": stay.expected_departure.isoformat(),
            "reason_code": stay.reason_code.value}
        draft = self._draft(EventKind.STAY_END, person, subject, now, details=details,
                            personal=True)
        verdict = self._verdict(Outcome.ACCEPTED, title,
                                message.format(room=stay.ward_or_room),
                                person=person, drafts=(draft,), stay_id=stay.stay_id)
        return self._record((draft,), verdict, person)

"""Accommodation desk (hotel, guest house, homestay): check-in and check-out as ``stay.start``
and ``stay.end`` — the accommodation notice of Residence Law 2020 art. 30 and Circular
55/2021/TT-BCA (docs/cccd.md §9). Foreign guests (passport regime) are out of scope here.
"""

from __future__ import annotations

import uuid
from datetime import date

from edge_agent.flows import messages as msg
from edge_agent.flows.model import ChipPresentation, QrPresentation, StayReason, Verdict
from edge_agent.flows.stays import StayFlow


class AccommodationFlow(StayFlow):
    """One front desk."""

    ACTIONS = ("check_in", "check_out")

    def check_in(self, presentation: ChipPresentation | QrPresentation, *, room: str,
                 expected_departure: date,
                 reason_code: StayReason | str = StayReason.TOURISM) -> Verdict:
        """A guest arrives: ``stay.start`` with the room, expected departure and reason."""
        return self._start(presentation, room=room, expected_departure=expected_departure,
                           reason_code=reason_code, room_field="room",
                           title=msg.T_ROOM_IN, message=msg.M_ROOM_IN)

    def check_out(self, presentation: ChipPresentation | QrPresentation, *,
                  stay_id: uuid.UUID | str | None = None) -> Verdict:
        """The guest leaves: ``stay.end`` of the guest's open stay (or of ``stay_id``)."""
        return self._end(presentation, stay_id, title=msg.T_ROOM_OUT, message=msg.M_ROOM_OUT)

    def check_out_stay(self, stay_id: uuid.UUID | str) -> Verdict:
        """Check-out picked from the desk's list of open stays, without the card."""
        return self.end_stay(stay_id, title=msg.T_ROOM_OUT, message=msg.M_ROOM_OUT)

"""Heritage-site gate: entry or exit per device, debounce, capacity (docs/design.md §1, §2.1).

The programme asks sites to record each person's entry and exit and to control visitor volume.
Occupancy comes from the centre (``checkin/v1/sites/<site_id>/occupancy``, docs/protocol.md §7);
while the device is offline it adds its own entries and exits made after the centre's figure, so
the capacity check keeps working (other gates' traffic is then unknown: the figure is an
estimate, shown as such).

At capacity the policy either warns (entry accepted, ``over_capacity`` in the event, a warning on
the kiosk) or refuses (a ``rejected`` event with reason ``capacity-full``, nobody let in). Exits
are never refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from edge_agent.config import CapacityPolicy, Direction
from edge_agent.events.model import EventDraft, EventKind, Method
from edge_agent.flows import messages as msg
from edge_agent.flows.base import FlowBase
from edge_agent.flows.identify import Unidentified
from edge_agent.flows.model import (
    Clock,
    Commit,
    Counts,
    FlowError,
    FlowSettings,
    ManualPresentation,
    Outcome,
    Presentation,
    Verdict,
    VneidDecoder,
)


@dataclass(frozen=True, slots=True)
class CentralOccupancy:
    occupancy: int
    capacity: int | None
    at: datetime


class HeritageGateFlow(FlowBase):
    """One gate device. ``present`` handles chip, QR and manual presentations."""

    ACTIONS = ("manual",)

    def __init__(self, settings: FlowSettings, *, clock: Clock, commit: Commit,
                 vneid: VneidDecoder | None = None) -> None:
        if settings.direction is None:
            raise FlowError("a heritage gate needs a direction (entry | exit | both)")
        super().__init__(settings, clock=clock, commit=commit, vneid=vneid)
        self._central: CentralOccupancy | None = None
        self._local: list[tuple[datetime, int]] = []

    # -- occupancy ----------------------------------------------------------------------------

    def set_occupancy(self, site_id: str, occupancy: int, capacity: int | None,
                      at: datetime) -> bool:
        """The centre's figure (retained occupancy message). Returns False when ignored: another
        site, or older than the figure already held (retained messages can arrive late)."""
        if site_id != self.settings.site_id:
            return False
        if at.tzinfo is None:
            raise FlowError("occupancy 'at' must carry its UTC offset")
        if occupancy < 0 or (capacity is not None and capacity < 1):
            raise FlowError("occupancy must be >= 0 and capacity >= 1 (or None)")
        if self._central is not None and at < self._central.at:
            return False
        self._central = CentralOccupancy(occupancy, capacity, at)
        # Local moves the centre's figure already includes are dropped.
        self._local = [(t, delta) for t, delta in self._local if t > at]
        return True

    def occupancy(self) -> tuple[int | None, int | None, bool]:
        """(estimate, capacity, estimated): the centre's figure plus local moves after it."""
        local = sum(delta for _, delta in self._local)
        if self._central is None:
            return (max(0, local) if self._local else None), None, bool(self._local)
        return (max(0, self._central.occupancy + local), self._central.capacity,
                bool(self._local))

    def _occupancy_view(self, counts: Counts) -> Counts:
        estimate, capacity, estimated = self.occupancy()
        return replace(counts, occupancy=estimate, capacity=capacity,
                       occupancy_estimated=estimated)

    def _after_commit(self, drafts: Sequence[EventDraft]) -> None:
        for draft in drafts:
            kind = draft.kind
            if kind is EventKind.MANUAL:
                kind = EventKind(draft.details["counts_as"])
            if kind is EventKind.ENTRY:
                self._local.append((draft.occurred_at, draft.count))
            elif kind is EventKind.EXIT:
                self._local.append((draft.occurred_at, -draft.count))

    # -- presentations ------------------------------------------------------------------------

    def _direction(self, direction: Direction | None) -> EventKind:
        device = self.settings.direction
        if direction is None or direction is Direction.BOTH:
            if device is Direction.BOTH:
                raise FlowError("this gate serves both directions: say entry or exit")
            direction = device
        elif device is not Direction.BOTH and direction is not device:
            raise FlowError(f"this gate is an {device} gate, not {direction}")
        return EventKind.ENTRY if direction is Direction.ENTRY else EventKind.EXIT

    def _capacity_problem(self, count: int) -> tuple[int, int] | None:
        estimate, capacity, _ = self.occupancy()
        if capacity is None:
            return None
        current = estimate or 0
        if current + count > capacity:
            return current, capacity
        return None

    def present(self, presentation: Presentation, *,
                direction: Direction | None = None) -> Verdict:
        """Decide, commit the event(s), return the verdict for the kiosk."""
        kind = self._direction(direction)
        now = self._now()
        if isinstance(presentation, ManualPresentation):
            return self._present_manual(presentation, kind, now)
        self._check_count(presentation.count, allow_group=True)
        person = self._identify(presentation, now)
        if isinstance(person, Unidentified):
            return self._reject(person.reason, person.method, now, attempted=kind,
                                count=presentation.count)
        subject = self._subject(person)
        if self._is_repeat(self._subjects(person), kind, now):
            return self._verdict(Outcome.ALREADY_COUNTED, msg.T_DUPLICATE, msg.M_DUPLICATE,
                                 person=person, reason="already-counted")
        details: dict[str, object] = {}
        warnings: list[str] = []
        extra = msg.EMPTY
        if kind is EventKind.ENTRY:
            problem = self._capacity_problem(presentation.count)
            if problem is not None:
                occupancy, capacity = problem
                if self.settings.capacity_policy is CapacityPolicy.REFUSE:
                    return self._reject(
                        "capacity-full", person.method, now, attempted=kind,
                        count=presentation.count, title=msg.T_FULL,
                        message=msg.M_CAPACITY_FULL.format(occupancy=occupancy,
                                                           capacity=capacity))
                details["over_capacity"] = True
                warnings.append("capacity-warn")
                extra = msg.M_CAPACITY_WARN.format(occupancy=occupancy, capacity=capacity)
        draft = self._draft(kind, person, subject, now, count=presentation.count,
                            details=details)
        title, message = ((msg.T_ENTRY, msg.M_ENTRY) if kind is EventKind.ENTRY
                          else (msg.T_EXIT, msg.M_EXIT))
        verdict = self._verdict(Outcome.ACCEPTED, title,
                                message.format(count=presentation.count) + extra,
                                person=person, warnings=warnings, drafts=(draft,))
        return self._record((draft,), verdict, person)

    def _present_manual(self, presentation: ManualPresentation, kind: EventKind,
                        now: datetime) -> Verdict:
        self._check_count(presentation.count, allow_group=True)
        if kind is EventKind.ENTRY:
            problem = self._capacity_problem(presentation.count)
            if problem is not None:
                occupancy, capacity = problem
                if self.settings.capacity_policy is CapacityPolicy.REFUSE:
                    return self._reject(
                        "capacity-full", Method.MANUAL, now, attempted=kind,
                        count=presentation.count, title=msg.T_FULL,
                        message=msg.M_CAPACITY_FULL.format(occupancy=occupancy,
                                                           capacity=capacity))
                return self._manual(presentation, kind, now, allow_group=True,
                                    warnings=("capacity-warn",),
                                    extra=msg.M_CAPACITY_WARN.format(occupancy=occupancy,
                                                                     capacity=capacity))
        return self._manual(presentation, kind, now, allow_group=True)

"""Check-in flows per site kind: pure decision logic (docs/design.md §2.1 "Flows").

A flow turns one presentation (chip read, QR scan, manual count) into a :class:`Verdict` for
the kiosk and the :class:`~edge_agent.events.model.EventDraft` s it committed. No I/O: the clock,
the outbox commit and the insurance adapter are injected.

- :class:`HeritageGateFlow` — ``present(p, direction=...)``, ``set_occupancy(...)``
- :class:`HospitalFlow` — ``visit``, ``admit``, ``discharge``
- :class:`AccommodationFlow` — ``check_in``, ``check_out``

:func:`make_flow` picks the flow of a configuration's ``device.site_kind``.
"""

from __future__ import annotations

from collections.abc import Callable

from edge_agent.config import Config, SiteKind
from edge_agent.events.model import EventDraft
from edge_agent.flows.accommodation import AccommodationFlow
from edge_agent.flows.base import FlowBase, display_name
from edge_agent.flows.gate import HeritageGateFlow
from edge_agent.flows.hospital import HospitalFlow
from edge_agent.flows.identify import Person, Unidentified
from edge_agent.flows.messages import Text
from edge_agent.flows.model import (
    ChipPresentation,
    Clock,
    Commit,
    Counts,
    FlowError,
    FlowInputError,
    FlowSettings,
    LocalSubjects,
    ManualPresentation,
    ManualReason,
    OpenStay,
    Outcome,
    Presentation,
    QrPresentation,
    StayReason,
    Verdict,
    VneidDecoder,
)
from edge_agent.flows.stays import StayFlow
from edge_agent.insurance import InsuranceAdapter

__all__ = [
    "AccommodationFlow", "ChipPresentation", "Clock", "Commit", "Counts", "FlowBase",
    "FlowError", "FlowInputError", "FlowSettings", "HeritageGateFlow", "HospitalFlow",
    "LocalSubjects",
    "ManualPresentation", "ManualReason", "OpenStay", "Outcome", "Person", "Presentation",
    "QrPresentation", "StayFlow", "StayReason", "Text", "Unidentified", "Verdict",
    "VneidDecoder", "display_name", "make_flow",
]


def make_flow(config: Config, subjects: LocalSubjects, *, clock: Clock, commit: Commit,
              insurance: InsuranceAdapter | None = None,
              vneid: VneidDecoder | None = None,
              recheck: Callable[[EventDraft, Person], None] | None = None) -> FlowBase:
    """The flow for ``config.device.site_kind`` (``recheck``: hospital visits recorded with
    an unknown insurance answer)."""
    settings = FlowSettings.from_config(config, subjects)
    kind = config.device.site_kind
    if kind is SiteKind.HERITAGE_GATE:
        return HeritageGateFlow(settings, clock=clock, commit=commit, vneid=vneid)
    if kind is SiteKind.HOSPITAL_RECEPTION:
        return HospitalFlow(settings, clock=clock, commit=commit, insurance=insurance,
                            vneid=vneid, recheck=recheck)
    return AccommodationFlow(settings, clock=clock, commit=commit, vneid=vneid)

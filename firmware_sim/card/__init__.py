"""The simulated CCCD chip (card side of ICAO 9303 eMRTD protocols).

Independent of ``edge_agent`` and ``drivers`` by design (docs/design.md §2): a bug shared by reader
and card cannot hide. Public API::

    from firmware_sim.card import SimulatedChip, load_card, TagLost, TimingModel, Faults
    chip = load_card(card_dir, faults=None, timing=None, profile=None)  # profile: see profiles
    atr = chip.power_on()
    resp = chip.process(apdu)          # data || SW1 SW2; raises TagLost
    chip.power_off()
    chip.card_time_s, chip.last_delay_s, chip.apdu_count, chip.bytes_sent
"""

from __future__ import annotations

from .chip import ATR, SimulatedChip
from .errors import ISOError, PersonalisationError, SimulatorError, TagLost
from .faults import Faults
from .issue import issue_cards
from .personalise import CardOptions, load_card, personalise
from .profiles import DEFAULT_PROFILE, PROFILE_NAMES, PROFILES, CardProfile, atr_for
from .timing import TimingModel

__all__ = [
    "ATR",
    "DEFAULT_PROFILE",
    "PROFILES",
    "PROFILE_NAMES",
    "CardOptions",
    "CardProfile",
    "Faults",
    "ISOError",
    "PersonalisationError",
    "SimulatedChip",
    "SimulatorError",
    "TagLost",
    "TimingModel",
    "atr_for",
    "issue_cards",
    "load_card",
    "personalise",
]

"""Behaviour profiles of the simulated chip: what it refuses, as real chips do.

A reader that passes only against a forgiving card has not been tested against the field. The
default profile, ``strict``, refuses what deployed eMRTD chips refuse (ICAO 9303-10 §3.6,
9303-11 §4; docs/cccd.md §2):

- BAC before the eMRTD application is selected: GET CHALLENGE answers 6985 (the application is
  selected with a plain SELECT *before* BAC);
- PACE anywhere but at the MF level: MSE:Set AT for PACE with the application selected answers
  6985 (PACE runs at the MF, the application is selected afterwards under secure messaging);
- extended-length APDUs when the card does not advertise them (the ATR's card capabilities,
  ISO/IEC 7816-4 §8.1.1.2.7, third software function table, b7): 6700; likewise a short APDU
  whose (secure-messaging) response would exceed 256 bytes: 6700;
- application files by short EF identifier before the application is selected: 6A82, and
  EF.CardAccess (an EF of the MF) once the application is the current DF: 6A82.

Variants:

``strict-no-mf``
    strict, and SELECT MF answers 6D00 and READ BINARY with a short EF identifier is refused at
    the MF level (6A86), so EF.CardAccess can only be reached by ``00 A4 02 0C 02 01 1C`` — the
    behaviour reported for Vietnamese chips and the worst case a reader must handle.
``bac-only``
    strict, without EF.CardAccess and without PACE (MSE:Set AT for PACE answers 6A80): an older
    eMRTD with BAC and 3DES secure messaging only.
``extended``
    strict, but extended length is advertised in the ATR and accepted.
``lenient``
    the simulator's earlier behaviour, kept only for comparison: BAC and PACE in any order,
    extended length advertised and accepted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CardProfile:
    """What the chip accepts; every flag names a refusal of real chips."""

    name: str
    bac_needs_application: bool = True
    """GET CHALLENGE answers 6985 until the eMRTD application is selected."""
    pace_at_mf_only: bool = True
    """MSE:Set AT for PACE answers 6985 once the eMRTD application is selected."""
    refuse_select_mf: bool = False
    """SELECT MF answers 6D00."""
    short_ef_at_mf: bool = True
    """READ BINARY naming EF.CardAccess by short EF identifier works at the MF level."""
    extended_length: bool = False
    """Extended Lc/Le accepted and advertised in the ATR's card capabilities."""
    pace: bool = True
    """EF.CardAccess present and PACE offered (False: BAC only)."""
    mf_files_from_application: bool = False
    """EF.CardAccess (an EF of the MF) stays reachable with the application selected."""


PROFILES: dict[str, CardProfile] = {
    "strict": CardProfile("strict"),
    "strict-no-mf": CardProfile("strict-no-mf", refuse_select_mf=True, short_ef_at_mf=False),
    "bac-only": CardProfile("bac-only", pace=False),
    "extended": CardProfile("extended", extended_length=True),
    "lenient": CardProfile("lenient", bac_needs_application=False, pace_at_mf_only=False,
                           extended_length=True, mf_files_from_application=True),
}
"""Every named profile; ``strict`` is the default everywhere a card is made."""

DEFAULT_PROFILE = "strict"
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: str | CardProfile | None) -> CardProfile:
    """The profile of that name (the default for None); ValueError for an unknown name."""
    if isinstance(name, CardProfile):
        return name
    try:
        return PROFILES[name or DEFAULT_PROFILE]
    except KeyError:
        raise ValueError(f"unknown card profile {name!r}; profiles: "
                         f"{', '.join(PROFILE_NAMES)}") from None


# PC/SC ATR of a contactless ISO 14443-4 card (PC/SC Part 3 §3.1.3.2.3): TS 3B, T0 85 (TD1,
# 5 historical bytes), TD1 80 (TD2, T=0), TD2 01 (T=1), historical bytes = category 80 and the
# compact-TLV card capabilities 73 C0 21 xx (ISO 7816-4 §8.1.1.2.7): selection by full DF name
# and by FID, data unit one byte, third byte b8 command chaining, b7 extended Lc and Le; TCK.
_CHAINING = 0x80
_EXTENDED = 0x40


def _with_tck(body: bytes) -> bytes:
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


def atr_for(profile: CardProfile) -> bytes:
    """The ATR the chip answers with: extended length advertised only when accepted."""
    third = _CHAINING | (_EXTENDED if profile.extended_length else 0)
    return _with_tck(bytes.fromhex("3B8580018073C021") + bytes([third]))

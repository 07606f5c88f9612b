"""Desk forms: the kiosk's desk page posts JSON objects; here they become flow arguments.

Each parser rejects a malformed field with a message for the receptionist (``ValueError``,
bilingual where the receptionist reads it) and never partially accepts a form.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from edge_agent.flows import ManualPresentation, ManualReason, StayReason

MAX_ROOM = 64


@dataclass(frozen=True, slots=True)
class StayForm:
    """Admission or check-in: the ward or room and the expected departure."""

    room: str
    expected_departure: date
    reason_code: StayReason | None = None
    """The reason of stay (docs/protocol.md §4.6); None: the desk's default."""


def parse_manual(fields: dict[str, Any]) -> ManualPresentation:
    """``{"reason": "child" | ..., "count": 1}``."""
    try:
        reason = ManualReason(str(fields.get("reason", "")))
        count = fields.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int | str):
            raise ValueError
        count = int(count)
    except ValueError:
        raise ValueError("reason must be child, paper-insurance, no-card or other, "
                         "count a whole number") from None
    return ManualPresentation(reason, count)


def parse_stay(fields: dict[str, Any]) -> StayForm:
    """``{"room": "...", "expected_departure": "YYYY-MM-DD", "reason_code": "treatment"}``
    (``reason_code`` optional)."""
    room = str(fields.get("room", "")).strip()
    try:
        departure = date.fromisoformat(str(fields.get("expected_departure", "")))
    except ValueError:
        raise ValueError("expected_departure must be a date (YYYY-MM-DD)") from None
    if not room:
        raise ValueError("room / ward is required")
    if len(room) > MAX_ROOM:
        raise ValueError(f"room / ward: at most {MAX_ROOM} characters")
    reason = fields.get("reason_code")
    code: StayReason | None = None
    if reason not in (None, ""):
        try:
            code = StayReason(str(reason))
        except ValueError:
            raise ValueError("reason_code must be one of "
                             + " | ".join(r.value for r in StayReason)) from None
    return StayForm(room, departure, code)


def parse_department(fields: dict[str, Any]) -> str | None:
    """``{"department": "Khoa Nội"}``: the department of the next visits (empty: none)."""
    value = " ".join(str(fields.get("department") or "").split())
    if not value:
        return None
    if len(value) > 64 or any(c.isdigit() for c in value):
        raise ValueError("department / khoa: 1..64 characters without digits")
    return value

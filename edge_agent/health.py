"""Peripheral health as the status message carries it (docs/protocol.md §6, status.v1).

Every failure of every reader, scanner or thread maps to one :class:`Health`: a state the
status schema allows (``ok | absent | error | starting | disabled``) and an optional detail of at
most :data:`MAX_DETAIL` printable characters, so a heartbeat from a broken device is still a
valid status and the centre learns that the device is broken. Details come from driver error
messages, which never carry card data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_DETAIL = 200
"""status.v1: ``detail`` maxLength."""
MAX_KEY = 200
"""status.v1: property names (reader and scanner URIs) maxLength."""
MAX_ENTRIES = 16
"""status.v1: maxProperties of ``readers`` and of ``scanners``."""


class HealthState(StrEnum):
    OK = "ok"
    ABSENT = "absent"
    """The device is not there (cannot be opened, unplugged)."""
    ERROR = "error"
    """The device is there but fails (I/O error, its thread stopped)."""
    STARTING = "starting"
    DISABLED = "disabled"


def bounded(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` on one line, control characters replaced, at most ``limit`` characters."""
    clean = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "detail", bounded(self.detail))

    @classmethod
    def ok(cls) -> Health:
        return cls(HealthState.OK)

    @classmethod
    def absent(cls, exc: BaseException | str) -> Health:
        return cls(HealthState.ABSENT, str(exc))

    @classmethod
    def error(cls, exc: BaseException | str) -> Health:
        return cls(HealthState.ERROR, str(exc))

    def to_wire(self) -> str | dict[str, str]:
        """The bare state when there is no detail, else ``{"state", "detail"}``."""
        if not self.detail:
            return self.state.value
        return {"state": self.state.value, "detail": self.detail}


def wire_health(entries: Mapping[str, Health]) -> dict[str, Any]:
    """A ``readers`` or ``scanners`` object of status.v1: keys and count bounded."""
    out: dict[str, Any] = {}
    for key, value in list(entries.items())[:MAX_ENTRIES]:
        name = bounded(key, MAX_KEY) or "?"
        out[name] = value.to_wire()
    return out

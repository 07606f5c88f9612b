"""Reopening a scanner's device after it disappears (a USB unplug), and reporting it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Reconnector:
    """State and counters of a device that is reopened every ``interval`` seconds once lost."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.state = "opening"
        self.disconnects = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.next_at = 0.0

    def opened(self) -> None:
        self.state = "ok"

    def lost(self, exc: BaseException) -> None:
        """The device failed: count it and try to reopen at once."""
        self.disconnects += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.state = "disconnected"
        self.next_at = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() >= self.next_at

    def attempt(self, connect: Callable[[], T],
                errors: tuple[type[BaseException], ...]) -> T | None:
        """Try to reopen now; the device, or None (next try after ``interval``)."""
        self.next_at = time.monotonic() + self.interval
        try:
            device = connect()
        except errors as exc:
            self.last_error = f"reopen failed: {exc}"
            return None
        self.reconnects += 1
        self.state = "ok"
        return device

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "disconnects": self.disconnects,
                "reconnects": self.reconnects, "last_error": self.last_error}

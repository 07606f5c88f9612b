"""UUID version 7 event identifiers (RFC 9562 §5.7).

48 bits of Unix time in milliseconds, then ``rand_a`` used as a 12-bit counter so identifiers made
by one generator within the same millisecond still sort in creation order (RFC 9562 §6.2,
method 1), then 62 random bits.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable


class Uuid7Generator:
    """Monotonic UUIDv7 source; thread-safe."""

    def __init__(self, clock_ms: Callable[[], int] | None = None,
                 rng: Callable[[int], bytes] = os.urandom) -> None:
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._rng = rng
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def __call__(self) -> uuid.UUID:
        with self._lock:
            now = self._clock_ms()
            if now <= self._last_ms:
                # Same millisecond (or the clock stepped back): keep the last time, count up.
                now = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:
                    now += 1
                    self._counter = 0
            else:
                self._counter = int.from_bytes(self._rng(2), "big") & 0x3FF  # leave room
            self._last_ms = now
            rand_b = int.from_bytes(self._rng(8), "big") & ((1 << 62) - 1)
            value = ((now & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (self._counter << 64) \
                | (0b10 << 62) | rand_b
            return uuid.UUID(int=value)


def uuid7_time_ms(value: uuid.UUID) -> int:
    """The Unix time in milliseconds carried by a UUIDv7."""
    if value.version != 7:
        raise ValueError("not a version 7 UUID")
    return value.int >> 80


new_event_id = Uuid7Generator()
"""The process-wide generator."""

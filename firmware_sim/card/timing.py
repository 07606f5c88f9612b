"""Timing model of the contactless link and the chip (modelled time, never slept here).

``delay(command_len, response_len) = per_apdu_s + bits_on_air / bit_rate`` where every byte is
sent as 9 bits (ISO/IEC 14443-2 Type A: 8 data bits + odd parity) and every I-block adds 3 bytes
(PCB + CRC_A, ISO/IEC 14443-4 §7.1). Public-key operations of the chip (PACE mapping and key
agreement, Chip Authentication, AA signatures) add ``public_key_op_s`` each.

``realistic()`` figures and their sources:

* ``bit_rate = 106_000``: fc/128, the ISO/IEC 14443-2 base rate every PCD/PICC supports (readers
  often negotiate 212/424 kbit/s; 106 is the conservative default).
* ``per_apdu_s = 0.003``: frame delay, reader/driver turn-around and the chip's APDU dispatch of a
  few milliseconds as measured on PC/SC readers with eMRTDs.
* ``public_key_op_s = 0.08``: one 256-bit ECC scalar multiplication or signature on a smart-card
  coprocessor takes some 50-150 ms; PACE-GM costs 5 of them (≈0.4 s), CA 1, AA 1.

The chip only accumulates ``card_time_s``; the in-process reader driver decides whether to sleep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

BITS_PER_BYTE = 9
FRAME_OVERHEAD_BYTES = 3


@dataclass(frozen=True, slots=True)
class TimingModel:
    """Per-APDU latency, air bit rate (None = infinitely fast) and public-key operation cost."""

    per_apdu_s: float = 0.0
    bit_rate: int | None = None
    public_key_op_s: float = 0.0

    def delay(self, command_len: int, response_len: int) -> float:
        """Modelled seconds for one command/response exchange."""
        t = self.per_apdu_s
        if self.bit_rate:
            on_air = (command_len + response_len + 2 * FRAME_OVERHEAD_BYTES) * BITS_PER_BYTE
            t += on_air / self.bit_rate
        return t

    def public_key_ops(self, count: int) -> float:
        """Modelled seconds for ``count`` public-key operations on the chip."""
        return count * self.public_key_op_s

    @classmethod
    def zero(cls) -> TimingModel:
        """No modelled time at all (unit tests)."""
        return cls()

    @classmethod
    def realistic(cls) -> TimingModel:
        """ISO/IEC 14443 figures documented in the module docstring."""
        return cls(per_apdu_s=0.003, bit_rate=106_000, public_key_op_s=0.08)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for card.json."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | str | None) -> TimingModel:
        """Parse card.json's ``timing`` (a preset name or the fields)."""
        if data is None or data == "zero":
            return cls.zero()
        if data == "realistic":
            return cls.realistic()
        if isinstance(data, str):
            raise ValueError(f"unknown timing preset {data!r}")
        if "preset" in data:
            return cls.from_json(str(data["preset"]))
        return cls(
            per_apdu_s=float(data.get("per_apdu_s", 0.0)),
            bit_rate=int(data["bit_rate"]) if data.get("bit_rate") else None,
            public_key_op_s=float(data.get("public_key_op_s", 0.0)),
        )

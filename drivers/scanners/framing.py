"""Byte-stream framing for serial scanners: terminators, prefix/suffix, inter-character timeout.

A serial or USB-CDC scanner sends each code as ``[prefix] payload [suffix] [terminator]``, in as
many reads as the USB packets or the UART happen to split it into. :class:`Framer` is fed those
chunks with their arrival time and returns whole frames:

- a frame ends at the terminator (``cr``, ``lf``, ``crlf``, ``tab`` or any byte string), or, when
  the scanner sends none (or a frame lost its terminator), once no byte has come for ``gap``
  seconds (the inter-character timeout);
- the prefix and suffix are stripped; bytes before the prefix (line noise, a half frame after a
  reconnect) are discarded with a reason, and so is a frame missing its prefix or suffix;
- more than ``max_length`` bytes without a terminator is garbage (a baud-rate mismatch, a
  scanner stuck in a loop): it is discarded with a reason and so is the rest of it, up to the
  next terminator or gap.

Nothing here decodes the payload: bytes in, bytes out. Empty frames (a blank CR LF line) are
ignored silently. Without a configured prefix, noise that arrives on its own and is followed by
a pause cannot be told from a short scan and comes out as a frame; configure a prefix (STX, a
letter) on the scanner if the line is noisy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drivers.code_scanner import ScannerConfigError

TERMINATORS: dict[str, bytes] = {
    "cr": b"\r",
    "lf": b"\n",
    "crlf": b"\r\n",
    "tab": b"\t",
    "none": b"",
}


def parse_terminator(raw: str) -> bytes:
    """``cr``, ``lf``, ``crlf``, ``tab``, ``none`` or hex (``0x03``, ``hex:0d0a``, ``03``)."""
    low = raw.strip().lower()
    if low in TERMINATORS:
        return TERMINATORS[low]
    digits = low[2:] if low.startswith("0x") else low.partition(":")[2] if low.startswith(
        "hex:") else low
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise ScannerConfigError(
            f"terminator {raw!r}: expected cr, lf, crlf, tab, none or hex bytes (0x03)"
        ) from None
    if not value:
        raise ScannerConfigError(f"terminator {raw!r} is empty (use 'none')")
    return value


@dataclass(frozen=True, slots=True)
class Framing:
    """How a scanner delimits codes. ``gap`` is the inter-character timeout in seconds."""

    terminator: bytes = b"\r"
    prefix: bytes = b""
    suffix: bytes = b""
    gap: float = 0.2
    max_length: int = 4096

    def __post_init__(self) -> None:
        if not self.gap > 0:
            raise ScannerConfigError("inter-character timeout must be positive")
        if self.max_length < 1:
            raise ScannerConfigError("maximum frame length must be at least 1")

    def describe(self) -> dict[str, object]:
        """JSON-able summary for health reports."""
        return {
            "terminator": self.terminator.hex() or "none",
            "prefix": self.prefix.hex(),
            "suffix": self.suffix.hex(),
            "gap_s": self.gap,
            "max_length": self.max_length,
        }


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete payload (prefix and suffix stripped); ``ended_by`` is ``terminator`` or
    ``timeout``."""

    payload: bytes
    ended_by: str


@dataclass(frozen=True, slots=True)
class Discard:
    """Bytes thrown away, and why."""

    reason: str
    data: bytes = field(repr=False)


Event = Frame | Discard


class Framer:
    """Assembles frames from chunks of a byte stream (see the module docstring)."""

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self._buffer = bytearray()
        self._last_byte_at: float | None = None
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buffer)

    def flush_due(self) -> float | None:
        """When the inter-character timeout will end the held bytes (monotonic), if any."""
        if self._last_byte_at is None or not (self._buffer or self._skipping):
            return None
        return self._last_byte_at + self.framing.gap

    def feed(self, data: bytes, now: float) -> list[Event]:
        """Add bytes received at ``now`` (monotonic seconds); return the events they complete."""
        events = self.poll(now)
        if not data:
            return events
        self._buffer += data
        self._last_byte_at = now
        terminator = self.framing.terminator
        if terminator:
            while (idx := self._buffer.find(terminator)) >= 0:
                raw = bytes(self._buffer[:idx])
                del self._buffer[: idx + len(terminator)]
                if self._skipping:
                    self._skipping = False
                    if raw:
                        events.append(Discard("rest of an over-long frame", raw))
                elif len(raw) > self.framing.max_length:
                    events.append(Discard(self._too_long(), raw))
                else:
                    events.extend(self._finish(raw, "terminator"))
        # Bytes that may still be the start of a split terminator do not count as over-long.
        if len(self._buffer) > self.framing.max_length + max(len(terminator) - 1, 0):
            raw = bytes(self._buffer)
            self._buffer.clear()
            if self._skipping:
                events.append(Discard("rest of an over-long frame", raw))
            else:
                self._skipping = True
                events.append(Discard(self._too_long(), raw))
        return events

    def _too_long(self) -> str:
        return f"over-long frame: more than {self.framing.max_length} bytes without a terminator"

    def poll(self, now: float) -> list[Event]:
        """Apply the inter-character timeout: held bytes older than ``gap`` end a frame."""
        due = self.flush_due()
        if due is None or now < due:
            return []
        raw = bytes(self._buffer)
        self._buffer.clear()
        if self._skipping:
            self._skipping = False
            return [Discard("rest of an over-long frame", raw)] if raw else []
        return self._finish(raw, "timeout")

    def reset(self, reason: str) -> list[Event]:
        """Drop held bytes (the device went away mid-frame)."""
        raw = bytes(self._buffer)
        self._buffer.clear()
        self._skipping = False
        self._last_byte_at = None
        return [Discard(reason, raw)] if raw else []

    def _finish(self, raw: bytes, ended_by: str) -> list[Event]:
        if not raw:
            return []
        events: list[Event] = []
        prefix, suffix = self.framing.prefix, self.framing.suffix
        if prefix:
            idx = raw.find(prefix)
            if idx < 0:
                return [Discard("frame without the configured prefix", raw)]
            if idx > 0:
                events.append(Discard(f"{idx} byte(s) of noise before the prefix", raw[:idx]))
            raw = raw[idx + len(prefix):]
        if suffix:
            if not raw.endswith(suffix):
                events.append(Discard("frame without the configured suffix", raw))
                return events
            raw = raw[: len(raw) - len(suffix)]
        if not raw:
            events.append(Discard("empty frame between prefix and suffix", b""))
            return events
        events.append(Frame(raw, ended_by))
        return events

"""Serial and USB-CDC code scanners through pyserial (scanner URI ``serial:PORT?options``).

``serial:/dev/ttyACM0?baud=9600&terminator=crlf&prefix=%02&suffix=%03&timeout=0.2`` with options:

- ``baud``: line speed (default 9600; USB-CDC ignores it);
- ``terminator``: ``cr`` (default), ``lf``, ``crlf``, ``tab``, ``none`` (frames end by the
  inter-character timeout alone) or hex bytes (``0x03``, ``hex:0d0a``);
- ``prefix`` / ``suffix``: bytes the scanner adds around each code, stripped (percent-encoded
  text such as ``%02``, or ``0x..`` / ``hex:..``);
- ``timeout``: the inter-character timeout in seconds (default 0.2) that ends a frame when no
  terminator comes;
- ``max``: the longest frame in bytes (default 4096); longer is discarded as garbage;
- ``reconnect``: seconds between attempts to reopen a device that disappeared (default 0.5).

PORT may also be a pyserial URL (``loop://``, ``socket://host:port``, ``rfc2217://...``).

A USB-CDC scanner that is unplugged makes reads fail: the driver closes the port, drops the half
frame (with a reason), reports ``state: disconnected`` in :meth:`SerialScanner.health`, and
reopens the same path every ``reconnect`` seconds while :meth:`SerialScanner.read` is being
called; use a stable ``/dev/serial/by-id/...`` path (or a udev symlink) so that the path
survives re-enumeration. Framing is in :mod:`drivers.scanners.framing`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from typing import Any

import serial

from drivers.code_scanner import (
    CodeScanner,
    Scan,
    ScannerClosedError,
    ScannerConfigError,
    ScannerUnavailableError,
    utc_now,
)
from drivers.scanners.framing import Discard, Event, Frame, Framer, Framing, parse_terminator
from drivers.scanners.options import (
    byte_value,
    float_value,
    int_value,
    reject_unknown,
    split_uri,
)
from drivers.scanners.reconnect import Reconnector

_POLL_S = 0.02
_OPTIONS = {"baud", "terminator", "prefix", "suffix", "timeout", "max", "reconnect"}


class SerialScanner(CodeScanner):
    """A scanner on a serial port: frames assembled from the byte stream, reopened on unplug."""

    def __init__(self, port: str, *, baudrate: int = 9600, framing: Framing | None = None,
                 reconnect_interval: float = 0.5) -> None:
        if not port:
            raise ScannerConfigError("serial: needs a port (serial:/dev/ttyACM0)")
        self.port = port
        self.baudrate = baudrate
        self.framing = framing or Framing()
        self.reconnect_interval = reconnect_interval
        self.source = f"serial:{port}"
        self._framer = Framer(self.framing)
        self._pending: deque[Scan] = deque()
        self._lock = threading.Lock()
        self._serial: Any = None
        self._closed = False
        self._link = Reconnector(reconnect_interval)
        self._frames = 0
        self._frames_by_timeout = 0
        self._bytes_in = 0
        self._discard_count = 0
        self._discards: deque[dict[str, Any]] = deque(maxlen=10)
        self._open()

    @classmethod
    def from_uri(cls, rest: str) -> SerialScanner:
        """``PORT?baud=..&terminator=..&prefix=..&suffix=..&timeout=..&max=..&reconnect=..``."""
        port, options = split_uri(rest)
        reject_unknown(options, _OPTIONS, "serial")
        framing = Framing(
            terminator=parse_terminator(options.get("terminator", "cr")),
            prefix=byte_value(options.get("prefix", ""), "prefix"),
            suffix=byte_value(options.get("suffix", ""), "suffix"),
            gap=float_value(options.get("timeout", "0.2"), "timeout", 0.001),
            max_length=int_value(options.get("max", "4096"), "max", 1),
        )
        return cls(
            port,
            baudrate=int_value(options.get("baud", "9600"), "baud", 1),
            framing=framing,
            reconnect_interval=float_value(options.get("reconnect", "0.5"), "reconnect", 0.01),
        )

    # -- device ---------------------------------------------------------------------------

    def _connect(self) -> Any:
        kwargs: dict[str, Any] = {"baudrate": self.baudrate, "timeout": _POLL_S}
        if self.port.startswith("/"):
            kwargs["exclusive"] = True
        return serial.serial_for_url(self.port, **kwargs)

    def _open(self) -> None:
        try:
            self._serial = self._connect()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ScannerUnavailableError(f"cannot open serial scanner {self.port}: {exc}") from exc
        self._link.opened()

    def _disconnected(self, exc: BaseException) -> None:
        self._link.lost(exc)
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.close()
        self._serial = None
        self._note(self._framer.reset("device disconnected mid-frame"))

    def _try_reopen(self) -> None:
        self._serial = self._link.attempt(self._connect,
                                          (serial.SerialException, OSError, ValueError))

    # -- reading --------------------------------------------------------------------------

    def _note(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Frame):
                self._frames += 1
                if event.ended_by == "timeout":
                    self._frames_by_timeout += 1
                self._pending.append(Scan(event.payload, self.source, utc_now()))
            elif isinstance(event, Discard):
                self._discard_count += 1
                self._discards.append({
                    "reason": event.reason,
                    "bytes": len(event.data),
                    "head_hex": event.data[:16].hex(),
                    "at": utc_now().isoformat(),
                })

    def _step(self, remaining: float | None) -> None:
        """One bounded wait for bytes (or one reconnect attempt)."""
        if self._serial is None:
            now = time.monotonic()
            if now >= self._link.next_at:
                self._try_reopen()
            if self._serial is None:
                wait = max(0.0, self._link.next_at - time.monotonic())
                time.sleep(min(wait, _POLL_S, remaining if remaining is not None else wait))
                return
        try:
            waiting = self._serial.in_waiting
            data = self._serial.read(max(1, waiting))
        except (serial.SerialException, OSError) as exc:
            self._disconnected(exc)
            return
        if data:
            self._bytes_in += len(data)
            self._note(self._framer.feed(data, time.monotonic()))

    def read(self, timeout: float | None = None) -> Scan | None:
        """The next scan within ``timeout`` seconds (None: wait), or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._closed:
                    raise ScannerClosedError(f"{self.source} is closed")
                if self._pending:
                    return self._pending.popleft()
                now = time.monotonic()
                self._note(self._framer.poll(now))
                if self._pending:
                    continue
                remaining = None if deadline is None else deadline - now
                if remaining is not None and remaining <= 0:
                    return None
                self._step(remaining)

    def close(self) -> None:
        """Close the port; a blocked :meth:`read` returns within one poll interval."""
        self._closed = True
        port = self._serial
        if port is not None and hasattr(port, "cancel_read"):
            with contextlib.suppress(serial.SerialException, OSError):
                port.cancel_read()
        with self._lock:
            if self._serial is not None:
                with contextlib.suppress(serial.SerialException, OSError):
                    self._serial.close()
                self._serial = None
            self._link.state = "closed"

    def health(self) -> dict[str, Any]:
        """State, counters, recent discards with reasons, disconnects and reconnects."""
        return {
            "driver": "serial",
            "source": self.source,
            "state": self._link.state,
            "port": self.port,
            "baudrate": self.baudrate,
            "framing": self.framing.describe(),
            "frames": self._frames,
            "frames_ended_by_timeout": self._frames_by_timeout,
            "bytes_in": self._bytes_in,
            "pending_bytes": self._framer.pending,
            "discards": self._discard_count,
            "recent_discards": list(self._discards),
            "disconnects": self._link.disconnects,
            "reconnects": self._link.reconnects,
            "last_error": self._link.last_error,
        }

"""Keyboard-wedge scanners through python-evdev (scanner URI ``evdev:/dev/input/eventN``).

``evdev:/dev/input/by-id/usb-SCANNER-event-kbd?grab=1&end=enter&timeout=0`` with options:

- ``grab`` (default 1): take the device exclusively (``EVIOCGRAB``) so that the scanned text
  does not also land in whatever window has the focus;
- ``end``: ``enter`` (default) or ``tab`` (also) ends a code;
- ``timeout``: seconds without a key that end a code when the scanner sends no ENTER (0: off);
- ``reconnect``: seconds between attempts to reopen a device that disappeared (default 1).

Key events are mapped to text by :class:`drivers.scanners.keymap.KeyMapper` (US layout) and the
payload is that text in UTF-8. **Keyboard wedges cannot type Vietnamese reliably** (see
:mod:`drivers.scanners.keymap`): only the Alt+keypad and Ctrl+Shift+U modes carry non-ASCII
text; otherwise letters with diacritics are lost without trace. :meth:`EvdevScanner.health`
reports ``non_ascii_chars`` (seen through those modes) and ``unmapped_keys``, and says so in
``note``. Prefer a USB-CDC (serial) mode for the card QR.
"""

from __future__ import annotations

import contextlib
import errno
import select
import time
from collections import deque
from typing import Any

from drivers.code_scanner import (
    CodeScanner,
    Scan,
    ScannerClosedError,
    ScannerConfigError,
    ScannerUnavailableError,
    utc_now,
)
from drivers.scanners.keymap import KEY_ENTER, KEY_KPENTER, KEY_TAB, KeyMapper
from drivers.scanners.options import bool_value, float_value, reject_unknown, split_uri
from drivers.scanners.reconnect import Reconnector

EV_KEY = 0x01
NOTE = ("keyboard wedge: non-ASCII characters (Vietnamese diacritics) arrive only in Alt+keypad "
        "or Ctrl+Shift+U modes; otherwise they are silently lost. Use the scanner's USB-CDC mode.")


class EvdevScanner(CodeScanner):
    """A keyboard-wedge scanner read from its evdev node, grabbed, US layout."""

    def __init__(self, path: str, *, grab: bool = True, end: str = "enter",
                 gap: float = 0.0, reconnect_interval: float = 1.0) -> None:
        if not path:
            raise ScannerConfigError("evdev: needs a device (evdev:/dev/input/eventN)")
        if end not in {"enter", "tab"}:
            raise ScannerConfigError(f"end {end!r}: expected enter or tab")
        try:
            import evdev  # noqa: PLC0415 - Linux only, imported when a URI names it
        except ImportError as exc:
            raise ScannerUnavailableError(f"python-evdev is not installed: {exc}") from exc
        self._evdev = evdev
        self.path = path
        self.grab = grab
        self.gap = gap
        self.reconnect_interval = reconnect_interval
        self.source = f"evdev:{path}"
        end_keys = {KEY_ENTER, KEY_KPENTER} | ({KEY_TAB} if end == "tab" else set())
        self.mapper = KeyMapper(end_keys=frozenset(end_keys))
        self._device: Any = None
        self._pending: deque[Scan] = deque()
        self._closed = False
        self._link = Reconnector(reconnect_interval)
        self._last_key_at = 0.0
        self._frames = 0
        self._open()

    @classmethod
    def from_uri(cls, rest: str) -> EvdevScanner:
        """``PATH?grab=1&end=enter|tab&timeout=0&reconnect=1``."""
        path, options = split_uri(rest)
        reject_unknown(options, {"grab", "end", "timeout", "reconnect"}, "evdev")
        return cls(
            path,
            grab=bool_value(options.get("grab", "1"), "grab"),
            end=options.get("end", "enter"),
            gap=float_value(options.get("timeout", "0"), "timeout"),
            reconnect_interval=float_value(options.get("reconnect", "1"), "reconnect", 0.01),
        )

    @property
    def device_name(self) -> str | None:
        """The input device's name, when open."""
        return None if self._device is None else str(self._device.name)

    def _connect(self) -> Any:
        device = self._evdev.InputDevice(self.path)
        if self.grab:
            try:
                device.grab()
            except OSError:
                device.close()
                raise
        return device

    def _open(self) -> None:
        try:
            self._device = self._connect()
        except OSError as exc:
            raise ScannerUnavailableError(f"cannot open {self.path}: {exc}") from exc
        self._link.opened()

    def _disconnected(self, exc: OSError) -> None:
        self._link.lost(exc)
        with contextlib.suppress(OSError):
            self._device.close()
        self._device = None
        self.mapper.reset()

    def _emit(self, line: str | None) -> None:
        if line:
            self._frames += 1
            self._pending.append(Scan(line.encode("utf-8"), self.source, utc_now()))

    def _step(self, wait: float) -> None:
        if self._device is None:
            if self._link.due():
                self._device = self._link.attempt(self._connect, (OSError,))
            if self._device is None:
                time.sleep(min(wait, 0.05))
                return
        try:
            ready, _, _ = select.select([self._device.fd], [], [], wait)
            if not ready:
                return
            events = list(self._device.read())
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in {errno.EAGAIN, errno.EINTR}:
                return
            self._disconnected(exc)
            return
        for event in events:
            if event.type == EV_KEY:
                self._last_key_at = time.monotonic()
                self._emit(self.mapper.feed(event.code, event.value))

    def read(self, timeout: float | None = None) -> Scan | None:
        """The next scanned line within ``timeout`` seconds (None: wait), or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise ScannerClosedError(f"{self.source} is closed")
            if self._pending:
                return self._pending.popleft()
            now = time.monotonic()
            if self.gap > 0 and self.mapper.pending and now - self._last_key_at >= self.gap:
                self._emit(self.mapper.flush())
                continue
            remaining = None if deadline is None else deadline - now
            if remaining is not None and remaining <= 0:
                return None
            self._step(min(0.05, remaining) if remaining is not None else 0.05)

    def close(self) -> None:
        """Release the grab and the device."""
        self._closed = True
        self._link.state = "closed"
        if self._device is not None:
            try:
                if self.grab:
                    self._device.ungrab()
            except OSError:
                pass
            self._device.close()
            self._device = None

    def health(self) -> dict[str, Any]:
        """State, counters, non-ASCII characters seen and keys lost, and the wedge caveat."""
        return {
            "driver": "evdev",
            "source": self.source,
            "state": self._link.state,
            "device_name": self.device_name,
            "grabbed": self.grab and self._device is not None,
            "frames": self._frames,
            "pending_chars": len(self.mapper.text),
            "non_ascii_chars": self.mapper.non_ascii_chars,
            "unmapped_keys": self.mapper.unmapped_keys,
            "overflows": self.mapper.overflows,
            "disconnects": self._link.disconnects,
            "reconnects": self._link.reconnects,
            "last_error": self._link.last_error,
            "note": NOTE,
        }

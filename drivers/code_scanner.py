"""The ``CodeScanner`` interface: scanned code payloads as raw bytes, nothing about CCCD.

Implementations (``drivers.scanners``): serial / USB-CDC scanners through pyserial, keyboard-wedge
scanners through evdev, and camera frames decoded by zxing-cpp or zbar in binary mode. A scanner
moves bytes and reports health; decoding the bytes (UTF-8, the card QR layout) is the caller's
business, so a payload is never re-encoded on the way.

Use::

    with open_scanner("serial:/dev/ttyACM0?terminator=cr") as scanner:
        for scan in scanner.scans(stop_event):
            handle(scan.payload)
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class ScannerError(Exception):
    """A scanner-level failure (base class)."""


class ScannerConfigError(ScannerError, ValueError):
    """A scanner URI or option that is malformed or names an unsupported setting."""


class ScannerUnavailableError(ScannerError):
    """The device cannot be opened (absent, unplugged, permission denied, stack missing)."""


class ScannerClosedError(ScannerError):
    """The scanner was used after :meth:`CodeScanner.close`."""


class ScannerExhaustedError(ScannerError):
    """A finite source (a folder of frames, a replay) has nothing more to give."""


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (what :class:`Scan` carries)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Scan:
    """One scanned code: the raw payload bytes, the scanner that read it, and when.

    ``source`` names the scanner (its URI, and for cameras the decoder), ``at`` is timezone-aware.
    """

    payload: bytes
    source: str
    at: datetime

    @property
    def text(self) -> str | None:
        """The payload as UTF-8 text, or None when it is not valid UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            return None


class CodeScanner(abc.ABC):
    """A source of scanned codes (QR, barcodes) as raw bytes."""

    source: str = "scanner"

    @abc.abstractmethod
    def read(self, timeout: float | None = None) -> Scan | None:
        """Wait up to ``timeout`` seconds (None: until one comes) for the next scan.

        Returns None on time-out. Raises :class:`ScannerExhaustedError` when a finite source
        has run out, :class:`ScannerClosedError` after :meth:`close`. A device that disappears
        is reopened in the background of later reads; :meth:`health` says so.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device (and any grab or thread); safe to call twice."""

    @abc.abstractmethod
    def health(self) -> dict[str, Any]:
        """A JSON-able snapshot: ``state`` (``ok``, ``disconnected``, ``closed``...), counters,
        the last error and discards with their reasons."""

    def scans(self, stop: threading.Event | None = None, poll: float = 0.1) -> Iterator[Scan]:
        """Yield scans until ``stop`` is set, the source is exhausted or the scanner is closed.

        ``stop`` is checked at least every ``poll`` seconds.
        """
        while stop is None or not stop.is_set():
            try:
                scan = self.read(timeout=poll)
            except (ScannerExhaustedError, ScannerClosedError):
                return
            if scan is not None:
                yield scan

    def __enter__(self) -> CodeScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

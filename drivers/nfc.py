"""NFC readers through nfcpy (reader URI ``nfc:PATH``): PN53x / ACR122U on USB, PN532 on a UART,
nfcpy's UDP pseudo-device.

``NfcReader(path)`` takes the nfcpy device path after ``nfc:``: ``usb[:VID[:PID]]``,
``tty:DEVICE:pn532`` (DEVICE a name under /dev such as ``USB0`` or ``S0``, or an absolute path
such as ``/dev/pts/3`` or ``/dev/serial/by-id/...``), ``udp:HOST:PORT``. nfcpy resolves ``tty``
devices by listing /dev, which cannot name a pseudo-terminal or a by-id link, so for an absolute
DEVICE this driver opens the serial transport and loads nfcpy's chip driver itself, exactly as
``nfc.clf.device.connect`` would (the driver code runs unchanged).

Only ISO/IEC 14443-4 Type A cards (ICAO 9303 eMRTDs, CCCD) are polled:

* discovery: ``ContactlessFrontend.sense`` for a 106A target (ISO/IEC 14443-3 §6: REQA,
  anticollision, SELECT); a SAK without bit 6 (``20``, "compliant with ISO/IEC 14443-4") is not
  a card this reader wants;
* activation: RATS with the largest FSD the frontend can receive, then the ATS is parsed
  (ISO/IEC 14443-4 §5.2: FSCI in T0, FWI/SFGI in TB(1), historical bytes) and nfcpy's ISO-DEP
  initiator (``nfc.tag.tt4.IsoDepInitiator``: I-block chaining, R(ACK)/R(NAK) recovery, S(WTX))
  is set up with FSC and FWT from it. The activation is done here rather than by
  ``nfc.tag.activate`` because nfcpy keeps neither the ATS nor honours its T0 presence bits;
* the "ATR" of :class:`~drivers.card_reader.CardPresence` is the one a PC/SC reader reports
  for such a card (PC/SC part 3 §3.1.3.2.3.1): ``3B 8n 80 01`` + the ATS historical bytes
  (at most 15) + TCK, so the same card looks the same through PC/SC and nfcpy;
* APDUs are exchanged as ISO-DEP blocks (ISO/IEC 14443-4 §7); nfcpy's timeout, transmission
  and protocol errors (after its own retries) mean the card left the field:
  :class:`~drivers.card_reader.CardLostError`. An I/O error of the device itself is
  :class:`~drivers.card_reader.ReaderUnavailableError`.

Presence events: INSERTED when a card is activated, REMOVED when it stops answering. With
listeners registered, a monitor thread also polls while the reader is idle (a sense when no card
is activated, the ISO-DEP R(NAK) presence check nfcpy itself uses when one is), every
``presence_interval`` seconds. Every method is thread-safe (one lock around the frontend).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from typing import Any

from drivers.card_reader import (
    CardEvent,
    CardLostError,
    CardPresence,
    CardReader,
    NoCardError,
    PresenceListener,
    ReaderUnavailableError,
)

log = logging.getLogger(__name__)

FS_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)
"""ISO/IEC 14443-4 §5.2.3: FSDI / FSCI → frame size in bytes (RFU values above 8 read as 8)."""

CARRIER_HZ = 13.56e6
RATS_TIMEOUT_S = 0.03
"""RATS → ATS time-out: the activation frame waiting time is a few ms (ISO/IEC 14443-4 §5.7);
nfcpy's own Type 4A activation uses 30 ms."""

DEFAULT_FWI = 4
"""FWI when the ATS has no TB(1) (ISO/IEC 14443-4 §5.2.5)."""


def _nfc() -> Any:
    try:
        return importlib.import_module("nfc")
    except ImportError as exc:  # nfcpy not installed on this site
        raise ReaderUnavailableError(f"nfcpy is not installed: {exc}") from exc


def parse_ats(ats: bytes) -> tuple[int, int, int, bytes]:
    """(FSCI, FWI, SFGI, historical bytes) of an ATS (ISO/IEC 14443-4 §5.2)."""
    if not ats or ats[0] > len(ats) or ats[0] < 1:
        raise ValueError(f"malformed ATS {ats.hex()}")
    tl = ats[0]
    fsci, fwi, sfgi = 2, DEFAULT_FWI, 0  # defaults when T0 / TB(1) are absent (§5.2.3, §5.2.5)
    pos = 1
    if tl > 1:
        t0 = ats[1]
        fsci = t0 & 0x0F
        pos = 2
        if t0 & 0x10:  # TA(1): bit rates
            pos += 1
        if t0 & 0x20:  # TB(1): FWI b8-b5, SFGI b4-b1
            if pos >= tl:
                raise ValueError(f"ATS too short for TB(1): {ats.hex()}")
            fwi, sfgi = ats[pos] >> 4, ats[pos] & 0x0F
            pos += 1
        if t0 & 0x40:  # TC(1): NAD / CID support
            pos += 1
    if fwi == 15:
        fwi = DEFAULT_FWI  # RFU (§5.2.5)
    if sfgi == 15:
        sfgi = 0
    return min(fsci, 8), fwi, sfgi, bytes(ats[pos:tl])


def pcsc_atr(historical: bytes) -> bytes:
    """The ATR a PC/SC reader builds for an ISO/IEC 14443-4 Type A card (PC/SC part 3
    §3.1.3.2.3.1): TS 3B, T0 8n, TD1 80, TD2 01 (T=1), the ATS historical bytes, TCK."""
    hist = historical[:15]
    body = bytes([0x3B, 0x80 | len(hist), 0x80, 0x01]) + hist
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


def fwt_seconds(fwi: int) -> float:
    """FWT = (256 × 16 / fc) × 2^FWI (ISO/IEC 14443-4 §7.2)."""
    return 256 * 16 / CARRIER_HZ * (1 << fwi)


class NfcReader(CardReader):
    """A contactless reader driven by nfcpy; see the module docstring."""

    def __init__(self, path: str, *, poll_interval: float = 0.05,
                 presence_interval: float = 0.5) -> None:
        self.path = path
        self.name = f"nfc:{path}"
        self.poll_interval = poll_interval
        self.presence_interval = presence_interval
        self._lock = threading.RLock()
        self._listeners: list[PresenceListener] = []
        self._dep: Any = None
        self._present = False
        self._closed = False
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        self.ats: bytes | None = None
        self.uid: bytes | None = None
        self.clf: Any = self._open(path)

    # -- opening ----------------------------------------------------------------------------
    @staticmethod
    def _open(path: str) -> Any:
        nfc = _nfc()
        try:
            kind, _, rest = path.partition(":")
            device, _, driver = rest.rpartition(":")
            if kind == "tty" and device.startswith("/"):
                transport = importlib.import_module("nfc.clf.transport")
                module = importlib.import_module(f"nfc.clf.{driver}")
                tty = transport.TTY(device)
                try:
                    dev = module.init(tty)
                except Exception:
                    tty.close()
                    raise
                dev._path = device
                clf = nfc.ContactlessFrontend()
                clf.device = dev
                return clf
            return nfc.ContactlessFrontend(path)
        except ImportError as exc:
            raise ReaderUnavailableError(f"no nfcpy driver for {path!r}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise ReaderUnavailableError(f"cannot open NFC reader {path!r}: {exc}") from exc
        except Exception as exc:  # serial.SerialException and friends
            raise ReaderUnavailableError(f"cannot open NFC reader {path!r}: {exc}") from exc

    # -- events -----------------------------------------------------------------------------
    def add_listener(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)
        if self._monitor is None and self.presence_interval > 0:
            self._monitor = threading.Thread(target=self._watch, name=f"{self.name} presence",
                                             daemon=True)
            self._monitor.start()

    def _set_present(self, present: bool) -> None:
        if present == self._present:
            return
        self._present = present
        event = CardEvent.INSERTED if present else CardEvent.REMOVED
        for listener in list(self._listeners):
            try:
                listener(event, self.name)
            except Exception:  # a listener must not break the reader
                log.exception("presence listener failed")

    def _watch(self) -> None:
        while not self._stop.wait(self.presence_interval):
            if not self._lock.acquire(timeout=self.presence_interval):
                continue  # a session is using the reader
            try:
                if self._closed:
                    return
                if self._dep is not None:
                    if not self._presence_check():
                        self._lost("presence check failed")
                else:
                    self._set_present(self._sense() is not None)
            except ReaderUnavailableError as exc:
                log.warning("%s: %s", self.name, exc)
            finally:
                self._lock.release()

    def _presence_check(self) -> bool:
        nfc = _nfc()
        try:
            self._dep.exchange(None)
            return True
        except (nfc.clf.CommunicationError, nfc.tag.TagCommandError, IndexError, TypeError):
            return False

    # -- CardReader ---------------------------------------------------------------------------
    def connect(self, timeout: float | None = None) -> CardPresence:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self._closed:
                    raise ReaderUnavailableError("reader closed")
                self._dep = None  # a new activation resets the card (RF off in sense)
                target = self._sense()
                if target is not None:
                    presence = self._activate(target)
                    if presence is not None:
                        self._set_present(True)
                        return presence
                else:
                    self._set_present(False)
            if deadline is not None and time.monotonic() >= deadline:
                raise NoCardError("no ISO/IEC 14443-4 Type A card in the field")
            wait = self.poll_interval
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)

    def _sense(self) -> Any:
        nfc = _nfc()
        try:
            target = self.clf.sense(nfc.clf.RemoteTarget("106A"), iterations=1)
        except nfc.clf.CommunicationError as exc:
            log.debug("sense: %s", exc)
            return None
        except OSError as exc:
            raise ReaderUnavailableError(f"{self.name}: {exc}") from exc
        if target is None or not target.sel_res or not target.sel_res[0] & 0x20:
            return None  # nothing, or not ISO/IEC 14443-4 compliant (SAK b6)
        return target

    def _activate(self, target: Any) -> CardPresence | None:
        nfc = _nfc()
        tt4 = importlib.import_module("nfc.tag.tt4")
        try:
            fsd = max(i for i, size in enumerate(FS_TABLE)
                      if size <= self.clf.max_recv_data_size)
            ats = bytes(self.clf.exchange(bytearray([0xE0, fsd << 4]), RATS_TIMEOUT_S))
            fsci, fwi, sfgi, hist = parse_ats(ats)
        except (nfc.clf.CommunicationError, ValueError, TypeError) as exc:
            log.debug("activation failed: %s", exc)
            return None
        except OSError as exc:
            raise ReaderUnavailableError(f"{self.name}: {exc}") from exc
        if sfgi:
            time.sleep(fwt_seconds(sfgi))  # SFGT before the first block (§5.2.5)
        fsc = min(FS_TABLE[fsci], self.clf.max_send_data_size)
        self._dep = tt4.IsoDepInitiator(self.clf, fsc, fwt_seconds(fwi))
        self.ats = ats
        self.uid = bytes(target.sdd_res or b"")
        log.debug("activated %s ATS %s FSC %d FWI %d", self.uid.hex(), ats.hex(), fsc, fwi)
        return CardPresence(atr=pcsc_atr(hist), reader_name=self.name)

    def transmit(self, apdu: bytes) -> bytes:
        nfc = _nfc()
        with self._lock:
            if self._dep is None:
                raise CardLostError("no card activated")
            try:
                response = self._dep.exchange(bytearray(apdu))
            except (nfc.clf.CommunicationError, nfc.tag.TagCommandError, IndexError,
                    TypeError) as exc:
                self._lost(str(exc) or type(exc).__name__)
                raise CardLostError(f"tag lost: {exc}") from None
            except OSError as exc:
                self._lost(str(exc))
                raise ReaderUnavailableError(f"{self.name}: {exc}") from exc
            if response is None or len(response) < 2:
                self._lost("short response")
                raise CardLostError("response without status word")
            return bytes(response)

    def _lost(self, why: str) -> None:
        log.info("%s: card lost (%s)", self.name, why)
        self._dep = None
        self._set_present(False)

    def disconnect(self) -> None:
        with self._lock:
            if self._dep is None or self._closed:
                self._dep = None
                return
            self._dep = None
            try:
                self.clf.sense()  # no targets: only switches the RF field off (card reset)
            except Exception as exc:
                log.debug("field off: %s", exc)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._closed:
                return
            self.disconnect()
            self._closed = True
            try:
                self.clf.close()
            except Exception as exc:  # the device may already be gone
                log.debug("close: %s", exc)
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=2)

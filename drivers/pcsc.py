"""PC/SC readers through pyscard (reader URI ``pcsc`` / ``pcsc:NAME``).

Any reader pcscd drives (CCID contact and contactless readers, vpcd's virtual reader) behind the
:class:`~drivers.card_reader.CardReader` interface, using the PC/SC Resource Manager API of
PC/SC Workgroup specification part 5 (``SCardEstablishContext``, ``SCardListReaders``,
``SCardGetStatusChange``, ``SCardConnect``, ``SCardTransmit``, ``SCardDisconnect``) through
pyscard's thin ``smartcard.scard`` wrapper, so every return code is seen and mapped:

* card removed, reset by another application, mute or the exchange failed (``SCARD_W_REMOVED_CARD``,
  ``SCARD_W_RESET_CARD``, ``SCARD_E_NOT_TRANSACTED``, ...) → :class:`CardLostError`;
* reader unplugged or the daemon gone (``SCARD_E_READER_UNAVAILABLE``, ``SCARD_E_NO_SERVICE``,
  ``SCARD_E_SERVICE_STOPPED``, a handle invalidated by a daemon restart) →
  :class:`ReaderUnavailableError`;
* no card within the time-out (``SCARD_E_TIMEOUT``) → :class:`NoCardError`.

Recovery: a context the daemon no longer knows (pcscd restarted, reader re-plugged) is released
and established again on the next call, so the same :class:`PcscReader` keeps working; the
reader is found again by name or prefix, as pcsc-lite may renumber it.

Monitoring: the first :meth:`PcscReader.add_listener` starts a thread that waits in
``SCardGetStatusChange`` on its own context (pcsc-lite serialises calls per context) for the
readers and for the ``\\\\?PnP?\\Notification`` pseudo-reader (PC/SC part 5 §3.1.3, reader
insertion / removal), and calls listeners with READER_ADDED / READER_REMOVED / INSERTED / REMOVED.
The state found when monitoring starts is reported as events too, so a listener learns where it
starts. Listeners run on the monitor thread and must not block it for long.

This module moves bytes; it knows nothing of the documents in the reader.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from smartcard import scard

from drivers.card_reader import (
    CardEvent,
    CardLostError,
    CardPresence,
    CardReader,
    NoCardError,
    PresenceListener,
    ReaderError,
    ReaderUnavailableError,
)

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
"""The pseudo-reader whose state changes when a reader is added or removed (PC/SC part 5)."""

# Return codes (PC/SC part 5 §3.1, pcsc-lite pcsclite.h), as unsigned 32-bit values.
S_SUCCESS = 0x00000000
E_CANCELLED = 0x80100002
E_INVALID_HANDLE = 0x80100003
E_UNKNOWN_READER = 0x80100009
E_TIMEOUT = 0x8010000A
E_SHARING_VIOLATION = 0x8010000B
E_NO_SMARTCARD = 0x8010000C
E_PROTO_MISMATCH = 0x8010000F
E_NOT_READY = 0x80100010
E_SYSTEM_CANCELLED = 0x80100012
F_COMM_ERROR = 0x80100013
E_NOT_TRANSACTED = 0x80100016
E_READER_UNAVAILABLE = 0x80100017
E_NO_SERVICE = 0x8010001D
E_SERVICE_STOPPED = 0x8010001E
E_NO_READERS_AVAILABLE = 0x8010002E
E_COMM_DATA_LOST = 0x8010002F
W_UNSUPPORTED_CARD = 0x80100065
W_UNRESPONSIVE_CARD = 0x80100066
W_UNPOWERED_CARD = 0x80100067
W_RESET_CARD = 0x80100068
W_REMOVED_CARD = 0x80100069

SERVICE_GONE = frozenset({E_NO_SERVICE, E_SERVICE_STOPPED, E_INVALID_HANDLE, F_COMM_ERROR})
"""The daemon died or restarted: the context (and every card handle) must be re-established."""
READER_GONE = frozenset({E_READER_UNAVAILABLE, E_UNKNOWN_READER, E_NO_READERS_AVAILABLE})
CARD_GONE = frozenset({W_REMOVED_CARD, W_RESET_CARD, E_NO_SMARTCARD, W_UNPOWERED_CARD,
                       W_UNRESPONSIVE_CARD, E_NOT_TRANSACTED, E_COMM_DATA_LOST, E_PROTO_MISMATCH})

# Reader states of SCardGetStatusChange (PC/SC part 5 §3.1.3, SCARD_STATE_*).
STATE_UNAWARE = 0x0000
STATE_CHANGED = 0x0002
STATE_UNKNOWN = 0x0004
STATE_UNAVAILABLE = 0x0008
STATE_EMPTY = 0x0010
STATE_PRESENT = 0x0020
STATE_MUTE = 0x0200

PROTOCOL_T0 = 0x0001
PROTOCOL_T1 = 0x0002
SHARE_EXCLUSIVE = 1
SHARE_SHARED = 2
LEAVE_CARD = 0
RESET_CARD = 1
UNPOWER_CARD = 2
SCOPE_USER = 0
INFINITE = 0x7FFFFFFF  # pyscard's INFINITE for SCardGetStatusChange
CONNECT_RETRY_S = 0.05
"""Pause between power-up attempts of a card reported present that does not answer."""
LOSS_GRACE_S = 0.5
"""After a card loss, how long :meth:`PcscReader.connect` waits for pcscd to report a change
before trusting a "present" state: pcscd polls readers without interrupt notification (vpcd,
serial readers) every 400 ms (pcsc-lite ``PCSCLITE_STATUS_POLL_RATE``)."""


def _code(hresult: int) -> int:
    return int(hresult) & 0xFFFFFFFF


def describe(hresult: int) -> str:
    """``SCardGetErrorMessage`` text with the code, e.g. ``Card was removed. (0x80100069)``."""
    code = _code(hresult)
    try:
        text = str(scard.SCardGetErrorMessage(hresult))
    except Exception:  # pragma: no cover - pyscard always has a text
        text = "PC/SC error"
    return f"{text.strip()} (0x{code:08X})"


def _present(state: int) -> bool:
    return bool(state & STATE_PRESENT) and not state & STATE_MUTE


class _ServiceGone(Exception):
    """The daemon is gone or restarted; the context has to be established again."""

    def __init__(self, hresult: int, where: str) -> None:
        super().__init__(f"{where}: {describe(hresult)}")
        self.hresult = hresult


def error_for(hresult: int, where: str) -> ReaderError:
    """Map a failing PC/SC return code to the :mod:`drivers.card_reader` exception."""
    code = _code(hresult)
    message = f"{where}: {describe(hresult)}"
    if code in CARD_GONE:
        return CardLostError(message)
    if code in SERVICE_GONE or code in READER_GONE:
        return ReaderUnavailableError(message)
    if code == E_TIMEOUT:
        return NoCardError(message)
    if code == E_SHARING_VIOLATION:
        return ReaderUnavailableError(f"{message} (card in use by another application)")
    return ReaderError(message)


class PcscReader(CardReader):
    """One PC/SC reader, chosen by exact name, name prefix, or (``name=None``) the first one.

    ``share`` is ``SCARD_SHARE_SHARED`` (default) or ``SCARD_SHARE_EXCLUSIVE``; ``disposition``
    is what :meth:`disconnect` does to the card (default ``SCARD_RESET_CARD``: the chip forgets
    its secure-messaging session; a contactless reader keeps the field on, so no spurious
    removal / insertion events follow a read).
    """

    def __init__(self, name: str | None = None, *, share: int = SHARE_SHARED,
                 disposition: int = RESET_CARD, poll_s: float = 1.0) -> None:
        self.selector = name or None
        self.name = f"pcsc:{name}" if name else "pcsc"
        self.share = share
        self.disposition = disposition
        self.poll_s = poll_s
        self.reader_name: str | None = None
        """The PC/SC name of the reader last used or connected to."""
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._ctx: int | None = None
        self._card: int | None = None
        self._protocol = 0
        self._atr = b""
        self._lost_state: tuple[str, int] | None = None
        self._closed = False
        self._listeners: list[PresenceListener] = []
        self._listeners_lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._monitor_ctx: int | None = None
        self._monitor_lock = threading.Lock()
        self._stop = threading.Event()
        self._seen: dict[str, bool] = {}
        """Monitor's view: matching reader name → card present."""

    # -- selection ------------------------------------------------------------------------------

    def matches(self, reader: str) -> bool:
        """Whether a PC/SC reader name is one this object stands for."""
        return self.selector is None or reader.startswith(self.selector)

    def _choose(self, readers: Sequence[str]) -> str | None:
        if self.selector is not None and self.selector in readers:
            return self.selector
        for reader in readers:
            if self.matches(reader):
                return reader
        return None

    # -- context --------------------------------------------------------------------------------

    @staticmethod
    def _establish(where: str) -> int:
        hresult, ctx = scard.SCardEstablishContext(SCOPE_USER)
        if _code(hresult) != S_SUCCESS:
            raise _ServiceGone(hresult, where)
        return int(ctx)

    @staticmethod
    def _release(ctx: int | None) -> None:
        if ctx is not None:
            try:
                scard.SCardReleaseContext(ctx)
            except Exception:  # a context of a dead daemon: nothing to release
                log.debug("SCardReleaseContext failed", exc_info=True)

    def _context(self) -> int:
        if self._ctx is None:
            self._ctx = self._establish("SCardEstablishContext")
        return self._ctx

    def _drop_context(self) -> None:
        self._forget_card()
        ctx, self._ctx = self._ctx, None
        self._release(ctx)

    def _forget_card(self) -> None:
        # Leave the card alone: asking pcscd to reset or unpower a card that is gone makes it
        # mark the slot empty, and if the card is back before its next presence poll it never
        # notices the return (seen with pcsc-lite 1.9 and vpcd).
        card, self._card = self._card, None
        if card is not None:
            try:
                scard.SCardDisconnect(card, LEAVE_CARD)
            except Exception:
                log.debug("SCardDisconnect of a lost card failed", exc_info=True)

    @staticmethod
    def _list(ctx: int) -> list[str]:
        hresult, readers = scard.SCardListReaders(ctx, [])
        code = _code(hresult)
        if code in (E_NO_READERS_AVAILABLE, E_UNKNOWN_READER):
            return []
        if code in SERVICE_GONE:
            raise _ServiceGone(hresult, "SCardListReaders")
        if code != S_SUCCESS:
            raise error_for(hresult, "SCardListReaders")
        return [str(r) for r in readers]

    def _fail(self, exc: ReaderError) -> ReaderError:
        self.last_error = str(exc)
        return exc

    # -- CardReader -----------------------------------------------------------------------------

    def readers(self) -> list[str]:
        """The PC/SC names of the readers this object may use (by its name selector)."""
        with self._lock:
            for attempt in range(2):
                try:
                    return [r for r in self._list(self._context()) if self.matches(r)]
                except _ServiceGone as exc:
                    self._drop_context()
                    if attempt:
                        raise self._fail(ReaderUnavailableError(str(exc))) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def connect(self, timeout: float | None = None) -> CardPresence:
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        with self._lock:
            if self._closed:
                raise ReaderUnavailableError(f"{self.name} is closed")
            self._disconnect_locked()
            for attempt in range(2):
                try:
                    return self._connect_once(deadline)
                except _ServiceGone as exc:
                    # A context from before a daemon restart: establish a new one, once.
                    self._drop_context()
                    if attempt:
                        raise self._fail(ReaderUnavailableError(
                            f"PC/SC service unavailable: {exc}")) from None
                except ReaderError as exc:
                    raise self._fail(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect_once(self, deadline: float | None) -> CardPresence:
        ctx = self._context()
        reader = self._choose(self._list(ctx))
        if reader is None:
            what = f"matching {self.selector!r}" if self.selector else "at all"
            raise ReaderUnavailableError(f"no PC/SC reader {what}")
        self.reader_name = reader
        state = STATE_UNAWARE
        grace: float | None = None
        lost, self._lost_state = self._lost_state, None
        if lost is not None and lost[0] == reader:
            # The card was lost on the last exchange. pcscd may not have polled the reader
            # since, and still report the card present: give it one poll interval to notice
            # (the reader's event counter moves), then trust whatever it reports.
            state = lost[1]
            grace = time.monotonic() + LOSS_GRACE_S
        while True:
            now = time.monotonic()
            limit = deadline if grace is None else min(grace, deadline or grace)
            if state == STATE_UNAWARE:
                wait_ms = 0
            elif limit is None:
                wait_ms = INFINITE
            else:
                wait_ms = max(0, int((limit - now) * 1000))
            hresult, states = scard.SCardGetStatusChange(ctx, wait_ms, [(reader, state)])
            code = _code(hresult)
            if code == E_TIMEOUT and grace is not None:
                grace, state = None, STATE_UNAWARE  # pcscd saw no change: take its state
                continue
            if code == E_TIMEOUT:
                raise NoCardError(f"no card in {reader}")
            if code in (E_CANCELLED, E_SYSTEM_CANCELLED):
                raise NoCardError(f"waiting for a card in {reader} was cancelled")
            if code in SERVICE_GONE:
                raise _ServiceGone(hresult, "SCardGetStatusChange")
            if code != S_SUCCESS:
                raise error_for(hresult, "SCardGetStatusChange")
            grace = None
            event_state = int(states[0][1])
            if event_state & (STATE_UNKNOWN | STATE_UNAVAILABLE):
                raise ReaderUnavailableError(f"reader {reader} is gone")
            if _present(event_state):
                presence = self._power_up(ctx, reader)
                if presence is not None:
                    return presence
                # Present but not answering: it left and the reader has not noticed yet, or
                # it is coming back. Poll rather than wait for a change that may not come.
                if deadline is not None and time.monotonic() >= deadline:
                    raise NoCardError(f"card in {reader} does not answer")
                time.sleep(CONNECT_RETRY_S)
                state = STATE_UNAWARE
                continue
            if deadline is not None and time.monotonic() >= deadline:
                raise NoCardError(f"no card in {reader}")
            state = event_state & ~STATE_CHANGED

    def _reader_state(self) -> int | None:
        """pcscd's current state word of the connected reader (event counter included)."""
        if self._ctx is None or self.reader_name is None:
            return None
        try:
            hresult, states = scard.SCardGetStatusChange(self._ctx, 0,
                                                         [(self.reader_name, STATE_UNAWARE)])
        except Exception:
            return None
        if _code(hresult) != S_SUCCESS:
            return None
        return int(states[0][1]) & ~STATE_CHANGED

    def _power_up(self, ctx: int, reader: str) -> CardPresence | None:
        hresult, card, protocol = scard.SCardConnect(ctx, reader, self.share,
                                                     PROTOCOL_T0 | PROTOCOL_T1)
        code = _code(hresult)
        if code in CARD_GONE:
            return None
        if code in SERVICE_GONE:
            raise _ServiceGone(hresult, "SCardConnect")
        if code != S_SUCCESS:
            raise error_for(hresult, f"SCardConnect({reader})")
        self._card, self._protocol = int(card), int(protocol)
        hresult, _, _, _, atr = scard.SCardStatus(self._card)
        if _code(hresult) != S_SUCCESS:
            self._forget_card()
            if _code(hresult) in SERVICE_GONE:
                raise _ServiceGone(hresult, "SCardStatus")
            return None
        self._atr = bytes(atr)
        self.last_error = None
        return CardPresence(atr=self._atr, reader_name=reader)

    def transmit(self, apdu: bytes) -> bytes:
        with self._lock:
            if self._card is None:
                raise CardLostError("no card connected (connect first, or the card was lost)")
            response = self._transmit_raw(bytes(apdu))
            if self._protocol == PROTOCOL_T0 and len(response) == 2:
                response = self._t0_fixup(bytes(apdu), response)
            return response

    def _transmit_raw(self, apdu: bytes) -> bytes:
        assert self._card is not None
        hresult, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        code = _code(hresult)
        if code == S_SUCCESS:
            if len(response) >= 2:
                return bytes(response)
            # No SW1 SW2 (ISO/IEC 7816-4 §5.1): the card went away mid-exchange.
            self._card_lost()
            raise self._fail(CardLostError(f"SCardTransmit: {len(response)}-byte response"))
        error = error_for(hresult, "SCardTransmit")
        if code in SERVICE_GONE:
            self._drop_context()
        elif isinstance(error, CardLostError):
            self._card_lost()
        else:
            self._forget_card()
        raise self._fail(error)

    def _card_lost(self) -> None:
        self._forget_card()
        state = self._reader_state()
        if state is not None and self.reader_name is not None:
            self._lost_state = (self.reader_name, state)

    def _t0_fixup(self, apdu: bytes, response: bytes) -> bytes:
        """ISO/IEC 7816-3 §12.2.2 / 7816-4 §5.3.4 procedures under T=0: 6Cxx and 61xx."""
        sw1, sw2 = response
        if sw1 == 0x6C and len(apdu) >= 5:
            response = self._transmit_raw(apdu[:4] + bytes([sw2]))
        data = bytearray()
        while len(response) >= 2 and response[-2] == 0x61:
            data += response[:-2]
            response = self._transmit_raw(bytes([apdu[0] & 0x03, 0xC0, 0, 0, response[-1]]))
        return bytes(data) + response

    def disconnect(self) -> None:
        with self._lock:
            self._disconnect_locked()

    def _disconnect_locked(self) -> None:
        card, self._card = self._card, None
        if card is None:
            return
        disposition = self.disposition
        try:
            hresult, *_ = scard.SCardStatus(card)
            if _code(hresult) != S_SUCCESS:
                disposition = LEAVE_CARD  # gone or reset: see _forget_card
            hresult = scard.SCardDisconnect(card, disposition)
        except Exception:
            log.debug("SCardDisconnect failed", exc_info=True)
            return
        code = _code(hresult)
        if code in SERVICE_GONE:
            self._drop_context()
        elif code not in (S_SUCCESS, *CARD_GONE, *READER_GONE):
            log.debug("SCardDisconnect: %s", describe(hresult))

    def close(self) -> None:
        self._closed = True
        self.stop_monitor()
        ctx = self._ctx
        if ctx is not None:  # wake a connect() waiting in another thread
            try:
                scard.SCardCancel(ctx)
            except Exception:
                log.debug("SCardCancel failed", exc_info=True)
        with self._lock:
            self._disconnect_locked()
            self._drop_context()

    # -- health -----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a card handle is open."""
        return self._card is not None

    def health(self) -> dict[str, Any]:
        """Reader name, whether pcscd answers, card presence, connection and the last error."""
        info: dict[str, Any] = {"reader": self.reader_name or self.selector, "service": False,
                                "present": False, "connected": self.connected,
                                "monitoring": self._monitor is not None,
                                "last_error": self.last_error}
        if not self._lock.acquire(timeout=0.5):  # a connect() is waiting for a card
            info.update(service=True, busy=True)
            return info
        try:
            for attempt in range(2):
                try:
                    ctx = self._context()
                    reader = self._choose(self._list(ctx))
                    info["service"] = True
                    if reader is None:
                        info["reader"] = None
                        break
                    info["reader"] = reader
                    hresult, states = scard.SCardGetStatusChange(ctx, 0, [(reader, STATE_UNAWARE)])
                    if _code(hresult) in SERVICE_GONE:
                        raise _ServiceGone(hresult, "SCardGetStatusChange")
                    if _code(hresult) == S_SUCCESS:
                        info["present"] = _present(int(states[0][1]))
                        info["atr"] = bytes(states[0][2]).hex().upper()
                    break
                except _ServiceGone as exc:
                    self._drop_context()
                    info["service"] = False
                    if attempt:
                        info["last_error"] = str(exc)
                except ReaderError as exc:
                    info["last_error"] = str(exc)
                    break
            info["connected"] = self.connected
        finally:
            self._lock.release()
        return info

    # -- monitoring -------------------------------------------------------------------------------

    def add_listener(self, listener: PresenceListener) -> None:
        with self._listeners_lock:
            self._listeners.append(listener)
        self.start_monitor()

    def remove_listener(self, listener: PresenceListener) -> None:
        """Unregister a callback added with :meth:`add_listener`."""
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def start_monitor(self) -> None:
        """Start the monitor thread (idempotent; :meth:`add_listener` calls it)."""
        with self._monitor_lock:
            if self._monitor is not None or self._closed:
                return
            self._stop.clear()
            self._monitor = threading.Thread(target=self._monitor_loop, daemon=True,
                                             name=f"pcsc-monitor-{self.name}")
            self._monitor.start()

    def stop_monitor(self) -> None:
        """Stop the monitor thread and wait for it."""
        with self._monitor_lock:
            thread, self._monitor = self._monitor, None
            self._stop.set()
            ctx = self._monitor_ctx
        if ctx is not None:
            try:
                scard.SCardCancel(ctx)
            except Exception:
                log.debug("SCardCancel of the monitor failed", exc_info=True)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _notify(self, event: CardEvent, reader: str) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event, reader)
            except Exception:
                log.exception("PC/SC presence listener failed on %s %s", event.value, reader)

    def _reconcile(self, readers: Sequence[str]) -> None:
        """Report readers that appeared or vanished since the monitor's last view."""
        for reader in [r for r in self._seen if r not in readers]:
            if self._seen.pop(reader):
                self._notify(CardEvent.REMOVED, reader)
            self._notify(CardEvent.READER_REMOVED, reader)
        for reader in readers:
            if reader not in self._seen:
                self._seen[reader] = False
                self._notify(CardEvent.READER_ADDED, reader)

    def _set_present(self, reader: str, present: bool) -> None:
        if reader in self._seen and self._seen[reader] != present:
            self._seen[reader] = present
            self._notify(CardEvent.INSERTED if present else CardEvent.REMOVED, reader)

    def _monitor_loop(self) -> None:
        backoff = 0.05
        ctx: int | None = None
        states: dict[str, int] = {}
        pnp_state = STATE_UNAWARE
        poll_ms = max(1, int(self.poll_s * 1000))
        while not self._stop.is_set():
            try:
                if ctx is None:
                    ctx = self._establish("SCardEstablishContext")
                    with self._monitor_lock:
                        self._monitor_ctx = ctx
                    states, pnp_state = {}, STATE_UNAWARE
                    backoff = 0.05
                readers = [r for r in self._list(ctx) if self.matches(r)]
                self._reconcile(readers)
                states = {r: states.get(r, STATE_UNAWARE) for r in readers}
                query = [(PNP_NOTIFICATION, pnp_state), *states.items()]
                hresult, result = scard.SCardGetStatusChange(ctx, poll_ms, query)
                code = _code(hresult)
                if code in (E_TIMEOUT, E_CANCELLED, E_SYSTEM_CANCELLED):
                    continue
                if code in SERVICE_GONE:
                    raise _ServiceGone(hresult, "SCardGetStatusChange")
                if code in READER_GONE:
                    continue  # a reader vanished between listing and waiting: list again
                if code != S_SUCCESS:
                    log.warning("PC/SC monitor: %s", describe(hresult))
                    self._stop.wait(self.poll_s)
                    continue
                for name, raw_state, _atr in result:
                    event_state = int(raw_state) & ~STATE_CHANGED
                    if name == PNP_NOTIFICATION:
                        pnp_state = event_state
                    elif name in states:
                        states[name] = event_state
                        if not event_state & (STATE_UNKNOWN | STATE_UNAVAILABLE):
                            self._set_present(name, _present(event_state))
            except _ServiceGone as exc:
                log.info("PC/SC monitor: service gone (%s); waiting for it", exc)
                with self._monitor_lock:
                    self._monitor_ctx = None
                self._release(ctx)
                ctx = None
                self._reconcile([])
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 1.0)
            except ReaderError as exc:
                log.warning("PC/SC monitor: %s", exc)
                self._stop.wait(self.poll_s)
            except Exception:
                log.exception("PC/SC monitor failed; restarting it")
                self._stop.wait(self.poll_s)
        with self._monitor_lock:
            self._monitor_ctx = None
        self._release(ctx)


__all__ = ["PNP_NOTIFICATION", "PcscReader", "describe", "error_for"]

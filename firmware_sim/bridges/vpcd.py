"""The simulated chip as a virtual ICC of pcscd's ``vpcd`` driver (vsmartcard).

``vpcd`` (``libifdvpcd.so``, package vsmartcard-vpcd) is a PC/SC IFD handler whose "reader" is a
TCP server; a virtual ICC ("vicc") is the TCP client. So a card in this bridge is seen by pcscd,
and through it by pyscard, exactly like a card in a CCID reader (PC/SC part 5: the application
side does not know the difference).

Wire protocol (vsmartcard ``vpcd/vpcd.c``, "vpcd protocol"): every message in both directions is
a 2-byte big-endian length followed by that many bytes. From vpcd:

* a 1-byte payload is a control: ``0x00`` power off, ``0x01`` power on, ``0x02`` reset (no
  answer for these three), ``0x04`` get ATR (answered with the ATR, ISO/IEC 7816-3 §8);
* any longer payload is a command APDU (ISO/IEC 7816-4), answered with data || SW1 SW2.

Card insertion is connecting to vpcd's port (default 0x8C7B = 35963 for the first reader, the
next reader listens on port + 1); removal is closing the socket. pcscd polls presence with "get
ATR" every 400 ms, so a change is seen within that time. vpcd listens on every interface: run
pcscd and this bridge in a network namespace that holds only loopback (``tests/hil``).

Latency: ``TCP_NODELAY`` is set, and ``TCP_QUICKACK`` before every receive (Linux clears it after
use), otherwise delayed ACK and Nagle cost 40 ms per APDU.

Command line (it must run in pcscd's network namespace)::

    ip netns exec NS python -m firmware_sim.bridges.vpcd --card DIR [--port 35963]
        [--realtime] [--timing zero|realistic] [--fault KIND[=N] ...] [--reinsert-delay S]
        [--removed]

Control through stdin, one command a line, each answered by one stdout line ``ok {json}`` or
``error MESSAGE``: ``insert``, ``remove``, ``remove-after N`` (answer N more APDUs, then remove
the card when the next one arrives, unanswered), ``card DIR`` (another card, while removed),
``status``, ``quit``. The first stdout line
``ok {"ready": true, ...}`` says the bridge is running. End of stdin keeps the bridge running
until SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from firmware_sim.card import Faults, TagLost, TimingModel, load_card

log = logging.getLogger(__name__)

VPCD_PORT = 0x8C7B
"""vpcd's default TCP port (vsmartcard ``VPCD_PORT``), first reader; reader *n* uses +n."""

CTRL_OFF = 0x00
CTRL_ON = 0x01
CTRL_RESET = 0x02
CTRL_ATR = 0x04

_LENGTH = struct.Struct(">H")


class Chip(Protocol):
    """What the bridge needs of a chip (``firmware_sim.card.SimulatedChip``)."""

    last_delay_s: float

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    """Read exactly ``size`` bytes; None when the peer closed the connection."""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    while got < size:
        _quickack(sock)
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buf)


def _quickack(sock: socket.socket) -> None:
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def _abort_on_close(sock: socket.socket) -> None:
    """Make close() send a TCP reset: vpcd then sees an error, not a clean end of stream.

    vpcd reports a response of 0 bytes as a successful exchange (``IFDHTransmitToICC`` only
    fails on a negative length), so a card yanked while an APDU is pending must reset the
    connection for the host to see a failed transmission, as with a real reader.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _send_message(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


class VpcdCard:
    """One simulated card presented to vpcd from a background thread.

    ``card`` is a card folder (loaded with :func:`firmware_sim.card.load_card`) or a chip
    object. With ``realtime`` the bridge sleeps the chip's modelled time (``last_delay_s``)
    before answering, so reads take as long as over a real contactless link. When the chip
    raises :class:`TagLost` the connection is closed (the card left the field) and re-opened
    ``reinsert_delay_s`` later (the card is presented again).
    """

    def __init__(self, card: str | Path | Chip, host: str = "127.0.0.1", port: int = VPCD_PORT,
                 *, realtime: bool = False, timing: TimingModel | None = None,
                 faults: Faults | None = None, reinsert_delay_s: float = 0.5,
                 retry_s: float = 0.1,
                 on_event: Callable[[str], None] | None = None) -> None:
        if isinstance(card, str | Path):
            self.chip: Chip = load_card(Path(card), faults=faults, timing=timing)
        else:
            self.chip = card
        self.host = host
        self.port = port
        self.realtime = realtime
        self.reinsert_delay_s = reinsert_delay_s
        self.retry_s = retry_s
        self.on_event = on_event
        self.apdu_count = 0
        self.connections = 0
        self.tag_losses = 0
        self._cond = threading.Condition()
        self._want_inserted = False
        self._stopped = False
        self._sock: socket.socket | None = None
        self._remove_after: int | None = None
        self._polled = False
        """vpcd accepted this connection and sent its first control (presence poll)."""
        self._thread: threading.Thread | None = None
        self._atr = b""

    # -- control ----------------------------------------------------------------------------

    def start(self, inserted: bool = True) -> VpcdCard:
        """Start the bridge thread, with the card presented unless ``inserted`` is False."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("bridge already started")
            self._want_inserted = inserted
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name=f"vpcd-{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def swap_card(self, card: str | Path | Chip) -> None:
        """Put another card on the reader (take the present one away first)."""
        chip = load_card(Path(card)) if isinstance(card, str | Path) else card
        with self._cond:
            if self._want_inserted:
                raise RuntimeError("remove the card before putting another one")
            self.chip = chip

    def insert(self) -> None:
        """Present the card (connect to vpcd); returns at once, the thread connects."""
        with self._cond:
            self._want_inserted = True
            self._cond.notify_all()

    def remove(self) -> None:
        """Take the card away (close the connection)."""
        with self._cond:
            self._want_inserted = False
            self._remove_after = None
            self._drop_socket()
            self._cond.notify_all()

    def remove_after(self, apdus: int) -> None:
        """Answer ``apdus`` more command APDUs, then remove the card when the next one comes."""
        with self._cond:
            self._remove_after = apdus

    def stop(self) -> None:
        """Remove the card and end the thread."""
        with self._cond:
            self._stopped = True
            self._want_inserted = False
            self._drop_socket()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        with self._cond:
            self._thread = None

    @property
    def connected(self) -> bool:
        """True while the card is in vpcd's reader (the TCP connection is up)."""
        with self._cond:
            return self._sock is not None

    @property
    def inserted(self) -> bool:
        """True when the card is meant to be present (it may still be connecting)."""
        with self._cond:
            return self._want_inserted

    @property
    def ready(self) -> bool:
        """True once vpcd accepted the connection and polled the card (pcscd sees it)."""
        with self._cond:
            return self._sock is not None and self._polled

    def wait_ready(self, timeout: float) -> bool:
        """Wait until vpcd has accepted and polled the card (:attr:`ready`)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._sock is not None and self._polled, timeout)

    def wait_connected(self, timeout: float, connected: bool = True) -> bool:
        """Wait until the TCP connection is up (or down with ``connected=False``).

        Up does not yet mean vpcd accepted it (the kernel completes the handshake from the
        listen backlog): use :meth:`wait_ready` to know pcscd can see the card.
        """
        with self._cond:
            return self._cond.wait_for(lambda: (self._sock is not None) == connected, timeout)

    def status(self) -> dict[str, Any]:
        """A JSON-able snapshot for the control channel."""
        with self._cond:
            return {"inserted": self._want_inserted, "connected": self._sock is not None,
                    "ready": self._sock is not None and self._polled,
                    "apdus": self.apdu_count, "connections": self.connections,
                    "tag_losses": self.tag_losses, "remove_after": self._remove_after,
                    "port": self.port}

    def __enter__(self) -> VpcdCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- thread -------------------------------------------------------------------------------

    def _event(self, name: str) -> None:
        log.debug("vpcd bridge: %s", name)
        if self.on_event is not None:
            try:
                self.on_event(name)
            except Exception:
                log.exception("vpcd bridge event callback failed")

    def _drop_socket(self) -> None:
        # Caller holds the condition; shutdown() wakes a recv() blocked in the bridge thread.
        sock = self._sock
        if sock is not None:
            _abort_on_close(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _wait(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopped or not self._want_inserted, seconds)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopped or self._want_inserted)
                if self._stopped:
                    return
            try:
                sock = socket.create_connection((self.host, self.port), timeout=2.0)
            except OSError:
                self._wait(self.retry_s)  # vpcd not listening (yet): pcscd starting or restarting
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._stopped or not self._want_inserted:
                    sock.close()
                    continue
                self._sock = sock
                self._polled = False
                self.connections += 1
                self._cond.notify_all()
            self._atr = self.chip.power_on()  # the card enters the field and is powered
            self._event("inserted")
            lost = False
            try:
                lost = self._serve(sock)
            except OSError as exc:
                log.debug("vpcd connection ended: %s", exc)
            finally:
                with self._cond:
                    self._sock = None
                    self._cond.notify_all()
                sock.close()
                self.chip.power_off()
                self._event("removed")
            if lost:
                self._wait(self.reinsert_delay_s)
            elif self.inserted:
                self._wait(self.retry_s)  # vpcd closed on us (pcscd stopped): try again

    def _serve(self, sock: socket.socket) -> bool:
        """Answer vpcd until the connection ends; True when it ended by a tag loss."""
        while True:
            header = _recv_exact(sock, _LENGTH.size)
            if header is None:
                return False
            (size,) = _LENGTH.unpack(header)
            payload = _recv_exact(sock, size) if size else b""
            if payload is None:
                return False
            if size == 1:
                self._control(sock, payload[0])
                if not self._polled:
                    with self._cond:
                        self._polled = True
                        self._cond.notify_all()
                continue
            with self._cond:
                if self._remove_after is not None:
                    if self._remove_after <= 0:
                        self._remove_after = None
                        self._want_inserted = False
                        _abort_on_close(sock)
                        return False
                    self._remove_after -= 1
                self.apdu_count += 1
            started = time.perf_counter()
            try:
                response = self.chip.process(payload)
            except TagLost as exc:
                log.info("vpcd bridge: tag lost (%s)", exc)
                with self._cond:
                    self.tag_losses += 1
                _abort_on_close(sock)
                return True
            if self.realtime:
                remaining = float(self.chip.last_delay_s) - (time.perf_counter() - started)
                if remaining > 0:
                    time.sleep(remaining)
            _send_message(sock, response)

    def _control(self, sock: socket.socket, code: int) -> None:
        if code == CTRL_OFF:
            self.chip.power_off()
        elif code == CTRL_ON:
            self._atr = self.chip.power_on()
        elif code == CTRL_RESET:
            self.chip.power_off()
            self._atr = self.chip.power_on()
        elif code == CTRL_ATR:
            _send_message(sock, self._atr)
        else:
            log.warning("vpcd bridge: unknown control byte %02X", code)


# -- command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.bridges.vpcd",
                                     description="present a simulated card to pcscd's vpcd")
    parser.add_argument("--card", type=Path, required=True, help="card folder (cards/NNNN)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=VPCD_PORT)
    parser.add_argument("--realtime", action="store_true",
                        help="sleep the chip's modelled time before each answer")
    parser.add_argument("--timing", choices=["zero", "realistic"],
                        help="override the card's timing model")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND[=N]",
                        help="override the card's faults (firmware-sim fault kinds)")
    parser.add_argument("--reinsert-delay", type=float, default=0.5,
                        help="seconds before a lost tag is presented again")
    parser.add_argument("--removed", action="store_true", help="start with the card removed")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _reply(ok: bool, body: Any) -> None:
    line = f"ok {json.dumps(body)}" if ok else f"error {body}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _command(card: VpcdCard, line: str) -> bool:
    """Run one control command; False to quit."""
    words = line.split()
    if not words:
        return True
    cmd, args = words[0], words[1:]
    if cmd == "insert":
        card.insert()
    elif cmd == "remove":
        card.remove()
    elif cmd == "remove-after" and len(args) == 1 and args[0].isdigit():
        card.remove_after(int(args[0]))
    elif cmd == "card" and len(args) == 1:
        try:
            card.swap_card(args[0])
        except (RuntimeError, ValueError, OSError) as exc:
            _reply(False, str(exc))
            return True
    elif cmd == "quit":
        _reply(True, card.status())
        return False
    elif cmd != "status":
        _reply(False, f"unknown command {line.strip()!r}")
        return True
    _reply(True, card.status())
    return True


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="vpcd-bridge %(levelname)s %(message)s")
    timing = None
    if args.timing is not None:
        timing = TimingModel.realistic() if args.timing == "realistic" else TimingModel.zero()
    try:
        faults = Faults.parse_cli(args.fault) if args.fault else None
        card = VpcdCard(args.card, args.host, args.port, realtime=args.realtime, timing=timing,
                        faults=faults, reinsert_delay_s=args.reinsert_delay)
    except (ValueError, OSError) as exc:
        print(f"error {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def _control() -> None:
        for line in sys.stdin:
            if not _command(card, line):
                done.set()
                return

    card.start(inserted=not args.removed)
    _reply(True, {"ready": True, **card.status()})
    threading.Thread(target=_control, name="vpcd-control", daemon=True).start()
    while not done.wait(0.5):
        pass
    card.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

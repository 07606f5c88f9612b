"""The simulated chip as an ISO/IEC 14443-4 Type 4A tag behind nfcpy's UDP pseudo-device.

Two parts:

* :class:`TypeAPicc`, the card side of the contactless link (the "PICC"), transport-free: it
  takes one frame as the PCD sent it (without CRC_A; the transports here carry whole frames) and
  returns the frame the card answers, or ``None`` when the card stays silent. It implements

  - ISO/IEC 14443-3 §6 Type A initialisation and anticollision: REQA ``26`` / WUPA ``52`` →
    ATQA (bytes in air order), SDD_REQ ``93|95|97 20`` → UID CLn + BCC, SEL_REQ
    ``93|95|97 70 UID BCC`` → SAK (cascade bit ``04`` while the UID is incomplete, ``20``
    "compliant with ISO/IEC 14443-4" on the last level), HLTA ``50 00`` (HALT state). The
    states are the standard's IDLE, READY, ACTIVE, HALT, plus PROTOCOL after RATS.
  - ISO/IEC 14443-4 §5 activation: RATS ``E0 FSDI|CID`` → ATS ``TL T0 TA TB TC T1..Tk`` with
    FSCI (T0 b4-b1), TB = FWI|SFGI and, as historical bytes, those of the chip's ATR (so the
    PC/SC part 3 ATR a reader builds from the ATS equals the chip's own ATR).
  - ISO/IEC 14443-4 §7 half-duplex block protocol: I-blocks with chaining in both directions
    (§7.5), R(ACK)/R(NAK) and the PICC's block-numbering and error-recovery rules (§7.5),
    S(DESELECT) and S(WTX) (§7.3; a waiting-time extension is requested when the modelled card
    time of an APDU, slept in ``realtime`` mode, exceeds half the frame waiting time), CID
    (§7.1) when the PCD uses one.

  Faults: a :class:`~firmware_sim.card.TagLost` from the chip is a power interruption, so the
  card falls back to IDLE and that frame is never answered (tag loss: the PCD times out and must
  re-activate). :meth:`TypeAPicc.remove` takes the card out of the field (silent to everything)
  and :meth:`TypeAPicc.insert` puts it back in.

* :class:`UdpTagBridge`, the peer of nfcpy's ``nfc/clf/udp.py`` driver (device path
  ``udp:127.0.0.1:PORT``). Each datagram is ASCII ``"<brty> <hex>"`` (``"106A 26"``) in both
  directions, one frame per datagram, no CRC; ``"RFOFF"`` from the reader means the RF field was
  switched off (nfcpy sends it when it mutes, before every new poll), which resets the card. The
  bridge answers only Type A at 106 kbit/s, like a CCCD chip, and only from 127.0.0.1.

Command line (for manual runs and the benchmark)::

    python -m firmware_sim.bridges.nfc_udp --card DIR [--port 0] [--realtime]
        [--timing zero|realistic] [--fault KIND[=N] ...]

prints ``ok {"path": "udp:127.0.0.1:PORT", ...}`` when it runs, until SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, Self

from firmware_sim.card import Faults, TagLost, TimingModel, load_card

log = logging.getLogger(__name__)

FSC_TABLE = (16, 24, 32, 40, 48, 64, 96, 128, 256)
"""ISO/IEC 14443-4 §5.2.3 table 1: FSCI / FSDI → frame size in bytes (values above 8 → 256)."""

CARRIER_HZ = 13.56e6
"""fc, ISO/IEC 14443-2 §6.1."""

PCB_I = 0x02
PCB_R_ACK = 0xA2
PCB_R_NAK = 0xB2
PCB_S_DESELECT = 0xC2
PCB_S_WTX = 0xF2
PCB_CHAINING = 0x10
PCB_CID = 0x08
PCB_NAD = 0x04

ApduObserver = Callable[[bytes, bytes], None]


class Chip(Protocol):
    """What the bridges need of :class:`firmware_sim.card.SimulatedChip`."""

    last_delay_s: float

    def power_on(self) -> bytes: ...

    def power_off(self) -> None: ...

    def process(self, apdu: bytes) -> bytes: ...


class PiccState(Enum):
    """ISO/IEC 14443-3 PICC states, plus ISO/IEC 14443-4 PROTOCOL and "not in field"."""

    ABSENT = "absent"
    IDLE = "idle"
    READY = "ready"
    ACTIVE = "active"
    HALT = "halt"
    PROTOCOL = "protocol"


def fwt_seconds(fwi: int) -> float:
    """Frame waiting time, ISO/IEC 14443-4 §7.2: FWT = (256 × 16 / fc) × 2^FWI."""
    return 256 * 16 / CARRIER_HZ * (1 << fwi)


def historical_bytes(atr: bytes) -> bytes:
    """The historical bytes of an ISO/IEC 7816-3 ATR (§8.2: T0 low nibble K, then TAi..TDi)."""
    if len(atr) < 2:
        return b""
    count = atr[1] & 0x0F
    pos, td = 2, atr[1]
    while True:
        pos += bin(td & 0xF0).count("1")
        if not td & 0x80:
            break
        td = atr[pos - 1]
    return bytes(atr[pos:pos + count])


def bcc(data: bytes) -> int:
    """ISO/IEC 14443-3 (§6, anticollision) UID check byte: XOR of the four UID CLn bytes."""
    value = 0
    for b in data:
        value ^= b
    return value


def cascade_levels(uid: bytes) -> list[bytes]:
    """UID CL1..CLn (4 bytes each, with the cascade tag ``88`` where needed), ISO/IEC 14443-3 §6."""
    if len(uid) == 4:
        return [uid]
    if len(uid) == 7:
        return [b"\x88" + uid[:3], uid[3:]]
    if len(uid) == 10:
        return [b"\x88" + uid[:3], b"\x88" + uid[3:6], uid[6:]]
    raise ValueError("a Type A UID has 4, 7 or 10 bytes")


def random_uid() -> bytes:
    """A single-size random UID (``08`` first: a random ID, ISO/IEC 14443-3), as eMRTDs use."""
    return b"\x08" + os.urandom(3)


class TypeAPicc:
    """The card side of an ISO/IEC 14443 Type A link carrying a simulated chip.

    ``uid``: fixed UID (4, 7 or 10 bytes); None draws a random single-size UID at every power-up.
    ``fsci``: the card's frame size FSC (ATS T0). ``fwi``: frame waiting time integer (ATS TB).
    ``max_frame``: largest frame the card sends (bytes without CRC); None means FSD - 2, a smaller
    value forces response chaining. ``realtime``: sleep the chip's modelled time per APDU
    (requesting S(WTX) when it is long). ``on_apdu(command, response)``: observer called after
    each APDU; it may call :meth:`remove` (the response is then never sent).
    """

    def __init__(self, chip: Chip, *, uid: bytes | None = None, fsci: int = 8, fwi: int = 8,
                 sfgi: int = 0, max_frame: int | None = None, realtime: bool = False,
                 on_apdu: ApduObserver | None = None, present: bool = True) -> None:
        if uid is not None:
            cascade_levels(uid)
        if not 0 <= fsci <= 8 or not 0 <= fwi <= 14 or not 0 <= sfgi <= 14:
            raise ValueError("FSCI must be 0..8, FWI and SFGI 0..14")
        self.chip = chip
        self.fixed_uid = uid
        self.uid = uid or random_uid()
        self.fsci = fsci
        self.fwi = fwi
        self.sfgi = sfgi
        self.max_frame = max_frame
        self.realtime = realtime
        self.on_apdu = on_apdu
        self.apdu_count = 0
        self.frames_in = 0
        self.wtx_requests = 0
        self._lock = threading.RLock()
        self._state = PiccState.IDLE if present else PiccState.ABSENT
        self._level = 0
        self._atr = b""
        self._assigned_cid = 0
        self._reset_protocol()

    # -- field and presence -----------------------------------------------------------------
    @property
    def state(self) -> PiccState:
        return self._state

    @property
    def present(self) -> bool:
        return self._state is not PiccState.ABSENT

    @property
    def fwt_s(self) -> float:
        return fwt_seconds(self.fwi)

    def insert(self) -> None:
        """Put the card into the field: it powers up in IDLE (ISO/IEC 14443-3)."""
        with self._lock:
            if self._state is PiccState.ABSENT:
                self._power_up()

    def remove(self) -> None:
        """Take the card out of the field: unpowered, silent until :meth:`insert`."""
        with self._lock:
            self._power_down()
            self._state = PiccState.ABSENT

    def field_off(self) -> None:
        """The PCD switched its field off: a card in the field loses power and resets."""
        with self._lock:
            if self._state is not PiccState.ABSENT:
                self._power_down()
                self._power_up()

    def _power_up(self) -> None:
        self._state = PiccState.IDLE
        self._level = 0
        if self.fixed_uid is None:
            self.uid = random_uid()
        self._reset_protocol()

    def _power_down(self) -> None:
        if self._state is PiccState.PROTOCOL:
            self.chip.power_off()
        self._reset_protocol()

    def _reset_protocol(self) -> None:
        self._block_number = 1  # ISO/IEC 14443-4 §7.5: the PICC's block number starts at 1
        self._fsd = 256
        self._cid: int | None = None
        self._rx_chain = bytearray()
        self._tx_pending = b""
        self._last_block: bytes | None = None
        self._wtx_until = 0.0
        self._wtx_response: bytes | None = None

    # -- frames -----------------------------------------------------------------------------
    def handle(self, frame: bytes) -> bytes | None:
        """Answer one PCD frame (no CRC), or return None for silence."""
        with self._lock:
            self.frames_in += 1
            if self._state is PiccState.ABSENT or not frame:
                return None
            cmd = frame[0]
            if len(frame) == 1 and cmd in (0x26, 0x52):
                return self._request(cmd)
            if self._state is PiccState.PROTOCOL:
                return self._block(bytes(frame))
            if cmd in (0x93, 0x95, 0x97) and len(frame) >= 2:
                return self._anticollision(bytes(frame))
            if self._state is PiccState.ACTIVE:
                if frame == b"\x50\x00":
                    self._state = PiccState.HALT  # HLTA: no answer, HALT state
                    return None
                if cmd == 0xE0 and len(frame) == 2:
                    return self._rats(frame[1])
            return None

    def _request(self, cmd: int) -> bytes | None:
        # REQA wakes IDLE cards, WUPA also HALT ones (ISO/IEC 14443-3 §6).
        if self._state is PiccState.IDLE or (cmd == 0x52 and self._state is PiccState.HALT):
            self._state = PiccState.READY
            self._level = 0
            # ATQA b7-b8: UID size (00 single, 01 double, 10 triple); b1-b5: bit frame
            # anticollision (one bit set). Air order: LSB byte first.
            size = {4: 0x00, 7: 0x40, 10: 0x80}[len(self.uid)]
            return bytes([size | 0x04, 0x00])
        return None

    def _anticollision(self, frame: bytes) -> bytes | None:
        if self._state is not PiccState.READY:
            return None
        levels = cascade_levels(self.uid)
        level = {0x93: 0, 0x95: 1, 0x97: 2}[frame[0]]
        if level >= len(levels) or level != self._level:
            return None
        cln = levels[level] + bytes([bcc(levels[level])])
        if frame[1] == 0x20:  # SDD_REQ with NVB 20: the whole UID CLn + BCC
            return cln
        if frame[1] == 0x70 and frame[2:7] == cln:  # SEL_REQ
            if level + 1 < len(levels):
                self._level += 1
                return b"\x04"  # SAK: cascade bit, UID not complete
            self._state = PiccState.ACTIVE
            return b"\x20"  # SAK: UID complete, ISO/IEC 14443-4 compliant
        return None

    def ats(self) -> bytes:
        """ATS of ISO/IEC 14443-4 §5.2: TL, T0 (TA TB TC present, FSCI), TA, TB, TC, T1..Tk."""
        hist = historical_bytes(self._atr)[:15]
        body = bytes([0x70 | self.fsci, 0x80, (self.fwi << 4) | self.sfgi, 0x02]) + hist
        # TA 80: same bit rate both ways, 106 kbit/s only. TC 02: CID supported, no NAD.
        return bytes([len(body) + 1]) + body

    def _rats(self, param: int) -> bytes:
        self._atr = self.chip.power_on()
        self._state = PiccState.PROTOCOL
        self._reset_protocol()
        self._fsd = FSC_TABLE[min(param >> 4, 8)]  # §5.1: FSDI in b8-b5, CID in b4-b1
        self._assigned_cid = param & 0x0F
        return self.ats()

    # -- ISO/IEC 14443-4 block protocol -----------------------------------------------------
    def _frame_limit(self) -> int:
        limit = self._fsd - 2  # FSD counts the 2 CRC bytes (§7.1)
        if self.max_frame is not None:
            limit = min(limit, self.max_frame)
        return limit

    def _prologue(self, pcb: int) -> bytes:
        out = bytes([pcb | (PCB_CID if self._cid is not None else 0)])
        return out + (bytes([self._cid]) if self._cid is not None else b"")

    def _send(self, block: bytes) -> bytes:
        self._last_block = block
        return block

    def _block(self, frame: bytes) -> bytes | None:
        pcb = frame[0]
        pos = 1
        if pcb & PCB_CID:  # §7.1.1.2: the CID byte follows the PCB
            if len(frame) < 2 or frame[1] & 0x0F != self._assigned_cid:
                return None  # another card's CID
            self._cid = self._assigned_cid
            pos = 2
        else:
            self._cid = None
        if pcb & 0xE2 == 0x02:  # I-block: 000x xx1x
            if pcb & PCB_NAD:
                pos += 1
            return self._i_block(pcb, frame[pos:])
        if pcb & 0xE6 == 0xA2:  # R-block: 101x x01x
            return self._r_block(pcb)
        if pcb & 0xC7 == 0xC2:  # S-block: 11xx x010
            return self._s_block(pcb, frame[pos:])
        return None  # not a valid block: the PICC ignores it (§7.5)

    def _i_block(self, pcb: int, inf: bytes) -> bytes | None:
        # §7.5: the PICC toggles its block number on every I-block, so that it answers with
        # the PCD's number.
        self._block_number = pcb & 0x01
        if pcb & PCB_CHAINING:  # §7.5: a chained I-block is acknowledged by R(ACK)
            self._rx_chain += inf
            return self._send(self._prologue(PCB_R_ACK | self._block_number))
        apdu = bytes(self._rx_chain + inf)
        self._rx_chain = bytearray()
        result = self._run_apdu(apdu)
        if result is None:
            return None
        response, remaining = result
        if remaining > self.fwt_s / 2:  # §7.3: ask for more time instead of answering late
            self._wtx_until = time.monotonic() + remaining
            self._wtx_response = response
            return self._request_wtx(remaining)
        if remaining > 0:
            time.sleep(remaining)
        return self._respond(response)

    def _run_apdu(self, apdu: bytes) -> tuple[bytes, float] | None:
        """The chip's response and the modelled time still to wait (0 unless ``realtime``)."""
        started = time.perf_counter()
        try:
            response = bytes(self.chip.process(apdu))
        except TagLost as exc:
            log.info("tag lost: %s", exc)
            self._state = PiccState.IDLE  # power interrupted: back to IDLE, unanswered
            self._reset_protocol()
            return None
        self.apdu_count += 1
        if self.on_apdu is not None:
            self.on_apdu(apdu, response)
            if self._state is not PiccState.PROTOCOL:
                return None  # the observer removed the card or reset the field
        remaining = 0.0
        if self.realtime:
            remaining = float(self.chip.last_delay_s) - (time.perf_counter() - started)
        return response, remaining

    def _request_wtx(self, remaining: float) -> bytes:
        # WTXM 1..59 (§7.3): ask for enough multiples of FWT to cover the remaining time.
        wtxm = max(1, min(59, int(remaining / self.fwt_s) + 1))
        self.wtx_requests += 1
        return self._send(self._prologue(PCB_S_WTX) + bytes([wtxm]))

    def _respond(self, response: bytes) -> bytes:
        room = self._frame_limit() - 1 - (1 if self._cid is not None else 0)
        if len(response) > room:
            self._tx_pending = response[room:]
            return self._send(self._prologue(PCB_I | PCB_CHAINING | self._block_number)
                              + response[:room])
        self._tx_pending = b""
        return self._send(self._prologue(PCB_I | self._block_number) + response)

    def _r_block(self, pcb: int) -> bytes | None:
        number = pcb & 0x01
        if pcb & 0x10:  # R(NAK), rule 12/13
            if number == self._block_number and self._last_block is not None:
                return self._last_block
            return self._prologue(PCB_R_ACK | self._block_number)
        if number == self._block_number:  # R(ACK) with our number: re-transmit (rule 11)
            return self._last_block
        # R(ACK) with the other number: toggle and send the next chained part (rule 10).
        if not self._tx_pending:
            return None
        self._block_number ^= 1
        return self._respond(self._tx_pending)

    def _s_block(self, pcb: int, inf: bytes) -> bytes | None:
        if pcb & 0xF7 == PCB_S_DESELECT:
            answer = self._prologue(PCB_S_DESELECT)
            self.chip.power_off()
            self._state = PiccState.HALT  # §8: deselected card enters HALT
            self._reset_protocol()
            return answer
        if pcb & 0xF7 == PCB_S_WTX and self._wtx_response is not None:
            remaining = self._wtx_until - time.monotonic()
            wtxm = inf[0] & 0x3F if inf else 1
            if remaining > wtxm * self.fwt_s / 2:
                return self._request_wtx(remaining)
            if remaining > 0:
                time.sleep(remaining)
            response, self._wtx_response = self._wtx_response, None
            return self._respond(response)
        return None


class PiccBridge:
    """A :class:`TypeAPicc` served by a daemon thread from one readable source.

    The lifecycle shared by the UDP and the PN532 bridges: :meth:`start` / :meth:`stop`, use as
    a context manager, :meth:`present_card` / :meth:`remove_card`. Subclasses say what to wait on
    (:meth:`_source`), what to do when it is readable (:meth:`_on_readable`) and how to release
    it (:meth:`_close`).
    """

    def __init__(self, card_dir: str | Path | None, chip: Chip | None, faults: Faults | None,
                 timing: TimingModel | None, picc_options: dict[str, Any]) -> None:
        if chip is None:
            if card_dir is None:
                raise ValueError(f"{type(self).__name__} needs a card directory or a chip")
            chip = load_card(card_dir, faults=faults, timing=timing)
        self.chip = chip
        self._picc_options = dict(picc_options)
        self.picc = TypeAPicc(chip, **picc_options)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def swap_card(self, chip: Chip) -> None:
        """Put another card on the reader (the previous one leaves the field first)."""
        self.picc.remove()
        self.chip = chip
        self.picc = TypeAPicc(chip, **self._picc_options)
        self.picc.remove()  # not in the field until present_card()

    def _source(self) -> Any:
        raise NotImplementedError

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=type(self).__name__,
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self._close()
        self.picc.remove()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def present_card(self) -> None:
        self.picc.insert()

    def remove_card(self) -> None:
        self.picc.remove()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._source()], [], [], 0.1)
                if ready:
                    self._on_readable()
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.01)


class UdpTagBridge(PiccBridge):
    """A :class:`TypeAPicc` on a UDP socket, as the peer of nfcpy's ``udp`` driver.

    ``UdpTagBridge(card_dir)`` (or ``chip=``) binds 127.0.0.1:``port`` (0: a free port, read
    back from :attr:`port`); :meth:`start` runs it in a daemon thread, :meth:`stop` ends it.
    ``path`` is the nfcpy device path. Options are :class:`TypeAPicc`'s.
    """

    def __init__(self, card_dir: str | Path | None = None, *, chip: Chip | None = None,
                 port: int = 0, faults: Faults | None = None, timing: TimingModel | None = None,
                 **picc_options: Any) -> None:
        super().__init__(card_dir, chip, faults, timing, picc_options)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.port: int = self.sock.getsockname()[1]
        self.path = f"udp:127.0.0.1:{self.port}"
        self.datagrams = 0
        self._peer: Any = None

    def _source(self) -> Any:
        return self.sock

    def _close(self) -> None:
        self.sock.close()

    def _on_readable(self) -> None:
        data, addr = self.sock.recvfrom(4096)
        self.datagrams += 1
        answer = self.handle_datagram(data, addr)
        if answer is not None:
            try:
                self.sock.sendto(answer, addr)
            except OSError as exc:  # the reader's socket went away
                log.debug("send to %s failed: %s", addr, exc)

    def handle_datagram(self, data: bytes, addr: Any = None) -> bytes | None:
        """One datagram of nfcpy's UDP framing in, the answer datagram (or None) out.

        Each nfcpy poll uses a fresh socket; a REQA / WUPA from a new peer is a new field (a
        reader process that died never sent its RFOFF), so the card is reset first.
        """
        if data.startswith(b"RFOFF"):
            self.picc.field_off()
            return None
        try:
            brty, _, hexdata = data.decode("ascii").partition(" ")
            frame = bytes.fromhex(hexdata)
        except (UnicodeDecodeError, ValueError):
            return None
        if brty != "106A":
            return None  # a Type A card does not answer Type B / F polling
        if addr is not None and addr != self._peer and frame in (b"\x26", b"\x52"):
            self._peer = addr
            self.picc.field_off()
        answer = self.picc.handle(frame)
        if answer is None:
            return None
        return f"106A {answer.hex()}".encode("ascii")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.bridges.nfc_udp",
                                     description="simulated card for nfcpy's udp driver")
    parser.add_argument("--card", required=True, type=Path, help="issued card folder")
    parser.add_argument("--port", type=int, default=0, help="UDP port on 127.0.0.1 (0: free)")
    parser.add_argument("--realtime", action="store_true", help="sleep the modelled card time")
    parser.add_argument("--timing", default=None, help="timing preset (zero, realistic)")
    parser.add_argument("--fault", action="append", default=[], help="KIND[=N]")
    args = parser.parse_args(argv)
    timing = TimingModel.from_json(args.timing) if args.timing else None
    faults = Faults.parse_cli(args.fault) if args.fault else None
    bridge = UdpTagBridge(args.card, port=args.port, timing=timing, faults=faults,
                          realtime=args.realtime).start()
    print("ok " + json.dumps({"path": bridge.path, "port": bridge.port}), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with contextlib.suppress(KeyboardInterrupt):
        done.wait()
    bridge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

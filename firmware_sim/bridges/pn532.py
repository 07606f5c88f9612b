"""A PN532 NFC controller simulated on a pseudo-terminal, with the simulated chip in its field.

nfcpy's own PN532 driver (``nfc/clf/pn532.py`` over ``nfc/clf/transport.py``'s TTY transport)
talks to this simulator as to a PN532 on a UART (HSU), unchanged: the host side opens the pty's
slave device (``Pn532Simulator.device``, e.g. ``/dev/pts/4``), this side serves the master.

Host link, NXP PN532 User Manual (UM0701-02) §6.2:

* normal information frame (§6.2.1.1): ``00 00 FF LEN LCS TFI PD0..PDn DCS 00`` with
  LEN = bytes of TFI + PD, LCS = -LEN, DCS = -(TFI + ΣPD) (mod 256); TFI ``D4`` host → PN532,
  ``D5`` PN532 → host; responses use command code + 1;
* extended information frame (§6.2.1.2): ``00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00`` for
  more than 254 bytes (LCS = -(LENM + LENL)); the host may send either, the PN532 uses the
  extended form only when needed (nfcpy's reader treats ``LEN = FF`` as the extended marker);
* ACK ``00 00 FF 00 FF 00`` sent as soon as a valid frame arrives (§6.2.1.3), then the
  response; a host ACK aborts (here: is ignored, commands run to completion at once), a host
  NACK ``00 00 FF FF 00 00`` asks for the last response again (§6.2.1.4); a frame with a bad
  length or data checksum is dropped without ACK; the application-level error frame
  ``00 00 FF 01 FF 7F 81 00`` answers a frame that is not a PN532 command (§6.2.1.5);
* HSU wake-up (§6.2.2, §7.2.11): after PowerDown any incoming byte wakes the chip (the host's
  ``55 55 00 00 ..`` or nfcpy's run of ``00`` preamble bytes is skipped until a start code).

Commands (§7): Diagnose (line, ROM, RAM tests), GetFirmwareVersion (PN532 v1.6, support 07),
GetGeneralStatus, ReadRegister / WriteRegister (a register file with plausible CIU reset
values; ``CIU_FIFOData`` reads ``26``, the unanswered REQA, after a failed 106A poll, which is
how nfcpy tells "no card" from "Type 1 tag"), ReadGPIO / WriteGPIO, SetSerialBaudrate (the
response is followed by the host's ACK, §7.2.8), SetParameters (fAutomaticRATS, bit 4),
SAMConfiguration, PowerDown, RFConfiguration (item 1 RF field on/off, item 2 timeouts, items 4,
5, 0A-0D accepted), InListPassiveTarget (106 kbit/s Type A: REQA, anticollision, SELECT through
the card model; with fAutomaticRATS also RATS, and the ATS is reported), InAutoPoll (106A),
InDataExchange (the PN532 runs ISO/IEC 14443-4 itself: I-block chaining to the card, WTX, and
towards the host the MI bit ``40`` of the status byte for a response longer than one frame and
for the host's own chained commands), InCommunicateThru (one raw frame, the way nfcpy drives
ISO-DEP in software), InDeselect, InRelease, InSelect, InJumpForDEP / InJumpForPSL (no NFC-DEP
target: status 01, time-out), InATR / InPSL (status 27). Target-mode commands are answered with
the error frame. Error status codes are the §7.1 table (01 time-out, 27 wrong context).

The card model is :class:`firmware_sim.bridges.nfc_udp.TypeAPicc` (same ISO/IEC 14443 state
machine as the UDP bridge); the "RF" between the simulated PN532 and it carries whole frames.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_sim.bridges.nfc_udp import (
    FSC_TABLE,
    PCB_CHAINING,
    PCB_I,
    PCB_R_ACK,
    PCB_R_NAK,
    PCB_S_DESELECT,
    PCB_S_WTX,
    Chip,
    PiccBridge,
    TypeAPicc,
)
from firmware_sim.card import Faults, TimingModel

log = logging.getLogger(__name__)

ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")
TFI_HOST = 0xD4
TFI_PN532 = 0xD5
MAX_FRAME_DATA = 265
"""Largest TFI + PD the PN532 accepts or sends (UM §6.2.1.2: 265 bytes host buffer)."""
MAX_DATA_PER_RESPONSE = MAX_FRAME_DATA - 3
"""Card data in one InDataExchange response: 265 - TFI - command code - status."""

FIRMWARE_VERSION = bytes([0x32, 0x01, 0x06, 0x07])
"""IC = 32 (PN532), Ver 1, Rev 6, Support = ISO 18092 | ISO/IEC 14443 B | ISO/IEC 14443 A."""

STATUS_OK = 0x00
STATUS_TIMEOUT = 0x01
STATUS_BAD_CONTEXT = 0x27
MI = 0x40
RATS_FSDI = 5
"""FSD 64 for the ISO-DEP the simulated PN532 runs itself (InDataExchange)."""

REGISTER_DEFAULTS = {
    0x6301: 0x3F,  # CIU_Mode
    0x6302: 0x80,  # CIU_TxMode: TxCRCEn, 106 kbit/s
    0x6303: 0x80,  # CIU_RxMode: RxCRCEn, 106 kbit/s
    0x6304: 0x80,  # CIU_TxControl: field off
    0x6305: 0x40,  # CIU_TxAuto: Force100ASK
    0x6327: 0x80,  # CIU_Version
    0x6339: 0x00,  # CIU_FIFOData
    0x633A: 0x00,  # CIU_FIFOLevel
}


class _SyntaxError(Exception):
    """A command the PN532 does not understand: answered with the error frame."""


def checksum(data: bytes) -> int:
    """The two's complement byte that makes ``sum(data) + checksum`` zero (UM §6.2.1.1)."""
    return (-sum(data)) & 0xFF


def build_frame(payload: bytes) -> bytes:
    """A normal (≤ 254 bytes of TFI + PD) or extended information frame around ``payload``."""
    n = len(payload)
    if n == 0 or n > 0xFFFF:
        raise ValueError("frame payload must have 1..65535 bytes")
    if n <= 254:
        head = bytes([0x00, 0x00, 0xFF, n, checksum(bytes([n]))])
    else:
        length = bytes([n >> 8, n & 0xFF])
        head = b"\x00\x00\xff\xff\xff" + length + bytes([checksum(length)])
    return head + payload + bytes([checksum(payload), 0x00])


class FrameParser:
    """Splits the host byte stream into ACK, NACK and information frames (UM §6.2.1)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.errors = 0

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        """Events in arrival order: ("ack", b""), ("nack", b""), ("frame", TFI + PD)."""
        self.buffer += data
        events: list[tuple[str, bytes]] = []
        buf = self.buffer
        while True:
            start = buf.find(b"\x00\xff")
            if start < 0:
                # Keep a trailing 00: it may be the first byte of a start code.
                del buf[:max(0, len(buf) - 1) if buf.endswith(b"\x00") else len(buf)]
                break
            del buf[:start]
            if len(buf) < 4:
                break
            length, lcs = buf[2], buf[3]
            if (length, lcs) == (0x00, 0xFF):
                events.append(("ack", b""))
                del buf[:4]
                continue
            if (length, lcs) == (0xFF, 0x00):
                events.append(("nack", b""))
                del buf[:4]
                continue
            if (length, lcs) == (0xFF, 0xFF):
                if len(buf) < 7:
                    break
                if (buf[4] + buf[5] + buf[6]) & 0xFF:
                    self.errors += 1
                    del buf[:2]
                    continue
                size, offset = buf[4] << 8 | buf[5], 7
            else:
                if (length + lcs) & 0xFF:
                    self.errors += 1
                    del buf[:2]
                    continue
                size, offset = length, 4
            if len(buf) < offset + size + 1:
                break
            payload = bytes(buf[offset:offset + size])
            dcs = buf[offset + size]
            del buf[:offset + size + 1]
            if (sum(payload) + dcs) & 0xFF:
                self.errors += 1  # data checksum error: dropped, no ACK
                continue
            events.append(("frame", payload))
        return events


class Pn532Firmware:
    """The PN532's host-command side; ``feed`` bytes from the host, answers go to ``write``."""

    def __init__(self, picc: TypeAPicc, write: Callable[[bytes], None]) -> None:
        self.picc = picc
        self.write = write
        self.parser = FrameParser()
        self.registers = dict(REGISTER_DEFAULTS)
        self.parameters = 0x00
        self.rf_on = False
        self.timeout_index = 0x0A
        self.asleep = False
        self.awaiting_ack = False
        self.last_response: bytes | None = None
        self.commands: list[int] = []
        self.baudrate = 115200
        self._target: dict[str, Any] | None = None
        self._chain_in = bytearray()
        self._chain_out = b""
        self._handlers: dict[int, Callable[[bytes], bytes]] = {
            0x00: self._diagnose,
            0x02: lambda _: FIRMWARE_VERSION,
            0x04: self._general_status,
            0x06: self._read_register,
            0x08: self._write_register,
            0x0C: lambda _: bytes([0xFF, 0x07, 0x00]),
            0x0E: lambda _: b"",
            0x10: self._set_serial_baudrate,
            0x12: self._set_parameters,
            0x14: lambda _: b"",
            0x16: self._power_down,
            0x32: self._rf_configuration,
            0x40: self._in_data_exchange,
            0x42: self._in_communicate_thru,
            0x44: self._in_deselect,
            0x46: self._in_jump,
            0x4A: self._in_list_passive_target,
            0x4E: lambda _: bytes([STATUS_BAD_CONTEXT]),
            0x50: lambda _: bytes([STATUS_BAD_CONTEXT]),
            0x52: self._in_release,
            0x54: self._in_select,
            0x56: self._in_jump,
            0x60: self._in_auto_poll,
        }

    # -- host link --------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.asleep and data:
            self.asleep = False  # any byte on HSU wakes the chip (UM §7.2.11)
        for kind, payload in self.parser.feed(data):
            if kind == "ack":
                self.awaiting_ack = False
            elif kind == "nack":
                if self.last_response is not None:
                    self.write(self.last_response)
            else:
                self._command(payload)

    def _command(self, payload: bytes) -> None:
        self.write(ACK)
        if len(payload) < 2 or payload[0] != TFI_HOST or payload[1] not in self._handlers:
            self.last_response = ERROR_FRAME
            self.write(ERROR_FRAME)
            return
        code = payload[1]
        self.commands.append(code)
        try:
            answer = self._handlers[code](payload[2:])
        except _SyntaxError:
            self.last_response = ERROR_FRAME
            self.write(ERROR_FRAME)
            return
        frame = build_frame(bytes([TFI_PN532, code + 1]) + answer)
        self.last_response = frame
        self.write(frame)
        if code == 0x16:
            self.asleep = True

    # -- general commands (§7.2) ------------------------------------------------------------
    def _diagnose(self, data: bytes) -> bytes:
        if not data:
            raise _SyntaxError
        if data[0] == 0x00:  # communication line test: echo NumTst and the data
            return data
        if data[0] in (0x01, 0x02):  # ROM / RAM test: OK
            return b"\x00"
        return b"\x00"

    def _general_status(self, _: bytes) -> bytes:
        targets = b""
        if self._target is not None:
            targets = bytes([0x01, 0x00, 0x00, 0x00])  # Tg 1, 106 kbit/s, Type A
        return bytes([0x00, int(self.rf_on), len(targets) // 4]) + targets + b"\x00"

    def _read_register(self, data: bytes) -> bytes:
        if len(data) % 2:
            raise _SyntaxError
        values = []
        for i in range(0, len(data), 2):
            values.append(self.registers.get(data[i] << 8 | data[i + 1], 0x00))
        return bytes(values)

    def _write_register(self, data: bytes) -> bytes:
        if len(data) % 3:
            raise _SyntaxError
        for i in range(0, len(data), 3):
            self.registers[data[i] << 8 | data[i + 1]] = data[i + 2]
        return b""

    def _set_serial_baudrate(self, data: bytes) -> bytes:
        rates = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
        if len(data) != 1 or data[0] >= len(rates):
            raise _SyntaxError
        self.baudrate = rates[data[0]]
        self.awaiting_ack = True  # the host ACKs, then both sides switch (§7.2.8)
        return b""

    def _set_parameters(self, data: bytes) -> bytes:
        if len(data) != 1:
            raise _SyntaxError
        self.parameters = data[0]
        return b""

    def _power_down(self, _: bytes) -> bytes:
        self._set_field(False)
        return bytes([STATUS_OK])

    def _rf_configuration(self, data: bytes) -> bytes:
        if not data:
            raise _SyntaxError
        item = data[0]
        if item == 0x01 and len(data) >= 2:
            self._set_field(bool(data[1] & 0x01))
        elif item == 0x02 and len(data) >= 4:
            self.timeout_index = data[3]
        return b""

    def _set_field(self, on: bool) -> None:
        if not on:  # field off: every card in it loses power and resets
            self.picc.field_off()
            self._target = None
        self.rf_on = on
        self.registers[0x6304] = 0x83 if on else 0x80

    def rf_timeout(self) -> float:
        """Time-out of InCommunicateThru / InDataExchange: 100 µs × 2^(n-1) (§7.3.1 item 2)."""
        if self.timeout_index == 0:
            return 1.0
        return min(1.0, 100e-6 * (1 << (self.timeout_index - 1)))

    # -- initiator commands (§7.3) ----------------------------------------------------------
    def _rf(self, frame: bytes) -> bytes | None:
        if not self.rf_on:
            self._set_field(True)
        return self.picc.handle(frame)

    def _activate(self, wakeup: int = 0x26, want_uid: bytes = b"") -> dict[str, Any] | None:
        atqa = self._rf(bytes([wakeup]))
        if atqa is None or len(atqa) != 2:
            self.registers[0x6339] = 0x26  # the REQA is still in the FIFO: nobody answered
            return None
        self.registers[0x6339] = 0x00
        uid = b""
        sak = 0
        for sel in (0x93, 0x95, 0x97):
            sdd = self._rf(bytes([sel, 0x20]))
            if sdd is None or len(sdd) != 5 or sdd[0] ^ sdd[1] ^ sdd[2] ^ sdd[3] != sdd[4]:
                return None
            answer = self._rf(bytes([sel, 0x70]) + sdd)
            if answer is None or len(answer) != 1:
                return None
            sak = answer[0]
            if sak & 0x04:
                uid += sdd[1:4]
                continue
            uid += sdd[0:4]
            break
        want = bytes(b for b in want_uid if b != 0x88) if want_uid else b""
        if want and want != uid:
            return None
        target: dict[str, Any] = {"atqa": atqa, "sak": sak, "uid": uid, "ats": b"",
                                  "iso_dep": False, "pni": 0, "fsc": 32}
        if sak & 0x20 and self.parameters & 0x10:  # fAutomaticRATS
            ats = self._rf(bytes([0xE0, RATS_FSDI << 4]))
            if ats is None or not ats or ats[0] > len(ats):
                return None
            fsci = ats[1] & 0x0F if ats[0] > 1 else 2
            target.update(ats=ats, iso_dep=True, fsc=FSC_TABLE[min(fsci, 8)])
        return target

    @staticmethod
    def _target_data(target: dict[str, Any]) -> bytes:
        atqa: bytes = target["atqa"]
        uid: bytes = target["uid"]
        ats: bytes = target["ats"]
        return bytes([atqa[1], atqa[0], target["sak"], len(uid)]) + uid + ats

    def _in_list_passive_target(self, data: bytes) -> bytes:
        if len(data) < 2 or not 1 <= data[0] <= 2:
            raise _SyntaxError
        if data[1] != 0x00:  # only 106 kbit/s Type A cards are simulated
            return b"\x00"
        target = self._activate(0x26, data[2:])
        self._target = target
        if target is None:
            return b"\x00"
        return b"\x01\x01" + self._target_data(target)

    def _in_auto_poll(self, data: bytes) -> bytes:
        if len(data) < 3:
            raise _SyntaxError
        types = data[2:]
        for kind in types:
            if kind in (0x00, 0x10, 0x20):  # generic 106A, MIFARE, ISO/IEC 14443-4 A
                target = self._activate()
                self._target = target
                if target is not None:
                    tg = b"\x01" + self._target_data(target)
                    return bytes([0x01, kind, len(tg)]) + tg
        return b"\x00"

    def _in_select(self, data: bytes) -> bytes:
        if self._target is None:
            return bytes([STATUS_BAD_CONTEXT])
        target = self._activate(0x52, self._target["uid"])
        self._target = target
        return bytes([STATUS_OK if target is not None else STATUS_TIMEOUT])

    def _deselect(self) -> None:
        if self._target is not None and self._target["iso_dep"]:
            self._rf(bytes([PCB_S_DESELECT]))
        elif self._target is not None:
            self._rf(b"\x50\x00")  # HLTA

    def _in_deselect(self, data: bytes) -> bytes:
        self._deselect()
        return bytes([STATUS_OK])

    def _in_release(self, data: bytes) -> bytes:
        self._deselect()
        self._target = None
        return bytes([STATUS_OK])

    def _in_jump(self, data: bytes) -> bytes:
        # No NFC-DEP target answers ATR_REQ: the firmware times out.
        time.sleep(min(0.05, self.rf_timeout()))
        return bytes([STATUS_TIMEOUT])

    def _silence(self) -> bytes:
        time.sleep(self.rf_timeout())
        return bytes([STATUS_TIMEOUT])

    def _in_communicate_thru(self, data: bytes) -> bytes:
        if not data:
            raise _SyntaxError
        answer = self._rf(data)
        if answer is None:
            return self._silence()
        return bytes([STATUS_OK]) + answer

    def _in_data_exchange(self, data: bytes) -> bytes:
        if not data:
            raise _SyntaxError
        tg, payload = data[0], data[1:]
        if self._target is None or tg & 0x3F != 0x01:
            return bytes([STATUS_BAD_CONTEXT])
        if self._chain_out and not payload:  # the host fetches the next part (MI was set)
            return self._data_response(self._chain_out)
        if tg & MI:  # the host's chained command: collect, answer status only
            self._chain_in += payload
            return bytes([STATUS_OK])
        command = bytes(self._chain_in + payload)
        self._chain_in = bytearray()
        iso_dep = self._target["iso_dep"]
        answer = self._iso_dep_exchange(command) if iso_dep else self._rf(command)
        if answer is None:
            return self._silence()
        return self._data_response(answer)

    def _data_response(self, answer: bytes) -> bytes:
        if len(answer) > MAX_DATA_PER_RESPONSE:
            self._chain_out = answer[MAX_DATA_PER_RESPONSE:]
            return bytes([STATUS_OK | MI]) + answer[:MAX_DATA_PER_RESPONSE]
        self._chain_out = b""
        return bytes([STATUS_OK]) + answer

    def _iso_dep_exchange(self, command: bytes) -> bytes | None:
        """The PCD side of ISO/IEC 14443-4 §7 as the PN532 firmware runs it."""
        assert self._target is not None
        target = self._target
        miu = target["fsc"] - 3
        chunks = [command[i:i + miu] for i in range(0, len(command), miu)] or [b""]
        block: bytes | None = None
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            frame = bytes([PCB_I | (PCB_CHAINING if more else 0) | target["pni"]]) + chunk
            block = self._exchange_block(frame)
            while block is not None and block[0] & 0xF7 == PCB_S_WTX:
                block = self._rf(block)  # S(WTX) answered with the same WTXM (§7.3)
            if block is None or block[0] & 0x01 != target["pni"]:
                return None
            target["pni"] ^= 1
            if more and block[0] & 0xF6 != PCB_R_ACK:
                return None
        assert block is not None
        if block[0] & 0xE2 != PCB_I:
            return None
        response = bytearray(block[1:])
        while block[0] & PCB_CHAINING:
            block = self._exchange_block(bytes([PCB_R_ACK | target["pni"]]))
            if block is None or block[0] & 0xE2 != PCB_I or block[0] & 0x01 != target["pni"]:
                return None
            target["pni"] ^= 1
            response += block[1:]
        return bytes(response)

    def _exchange_block(self, frame: bytes) -> bytes | None:
        answer = self._rf(frame)
        for _ in range(2):  # rule 4: R(NAK) after a time-out, twice at most
            if answer is not None:
                return answer
            answer = self._rf(bytes([PCB_R_NAK | self._target["pni"]])) if self._target else None
        return answer


class Pn532Simulator(PiccBridge):
    """A simulated PN532 on a pseudo-terminal; ``device`` is the slave path for the host.

    ``Pn532Simulator(card_dir)`` (or ``chip=``): :meth:`start` serves the pty master in a daemon
    thread, :meth:`stop` closes it; :meth:`present_card` / :meth:`remove_card` move the card.
    ``path`` is the reader path for :class:`drivers.nfc.NfcReader` (``tty:/dev/pts/N:pn532``).
    Options other than ``faults`` / ``timing`` go to :class:`TypeAPicc`.
    """

    def __init__(self, card_dir: str | Path | None = None, *, chip: Chip | None = None,
                 faults: Faults | None = None, timing: TimingModel | None = None,
                 **picc_options: Any) -> None:
        super().__init__(card_dir, chip, faults, timing, picc_options)
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no line editing before the host configures it
        self.device = os.ttyname(self.slave)
        self.path = f"tty:{self.device}:pn532"
        self.firmware = Pn532Firmware(self.picc, self._write)
        self._write_lock = threading.Lock()

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            view = memoryview(data)
            while view:
                written = os.write(self.master, view)
                view = view[written:]

    def _source(self) -> Any:
        return self.master

    def _close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _on_readable(self) -> None:
        data = os.read(self.master, 4096)
        try:
            self.firmware.feed(data)
        except Exception:  # the simulated firmware must never die silently
            log.exception("PN532 simulator failed on %s", data.hex())


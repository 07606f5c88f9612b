"""Chip reads through nfcpy's real UDP and PN532 drivers against the simulated chip.

See :mod:`tests.hil.nfc_fixtures` for the bridges. PN532 frame-level tests of the simulator run
without nfcpy (a byte sink stands for the UART).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from typing import Any

import pytest

from drivers.card_reader import CardEvent, CardLostError, ReaderUnavailableError
from drivers.nfc import NfcReader, parse_ats, pcsc_atr
from edge_agent.reading import Assurance, FailureReason, KeyMaterial, ReadPolicy, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.bridges.nfc_udp import TypeAPicc, historical_bytes
from firmware_sim.bridges.pn532 import (
    ACK,
    ERROR_FRAME,
    NACK,
    FrameParser,
    Pn532Firmware,
    build_frame,
    checksum,
)
from firmware_sim.card import ATR, PROFILE_NAMES, PROFILES, Faults, atr_for
from firmware_sim.sim_reader import SimCardReader
from tests.hil import nfc_fixtures
from tests.hil.issued import IssuedCards, issue_profiles
from tests.hil.nfc_fixtures import TRANSPORTS, edge_agent_script, wait_until

# Fixtures are found by name in the test module.
nfc_cards = nfc_fixtures.nfc_cards
nfc_bridge_factory = nfc_fixtures.nfc_bridge_factory


def _comparable(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = result.to_json(personal=True)
    out.pop("timings_ms")
    out["data_groups"] = {k: v.hex() for k, v in sorted(result.data_groups.items())}
    return out


@pytest.fixture(scope="module")
def reference(nfc_cards: IssuedCards) -> dict[str, Any]:
    """The read through the in-process simulator (zero timing): what every transport must give."""
    trust = load_trust_folder(nfc_cards.trust)
    reader = SimCardReader(nfc_cards.card(1), realtime=False)
    result = read_chip(reader, KeyMaterial.from_can(nfc_cards.info(1)["can"]), ReadPolicy(), trust)
    assert result.ok and result.assurance is Assurance.CHIP_ANCHORED, result.reason
    return _comparable(result)


def _read(reader: Any, nfc_cards: IssuedCards, policy: ReadPolicy | None = None) -> Any:
    trust = load_trust_folder(nfc_cards.trust)
    keys = KeyMaterial.from_can(nfc_cards.info(1)["can"])
    return read_chip(reader, keys, policy or ReadPolicy(), trust)


# -- reads through nfcpy ---------------------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_through_nfcpy_equals_in_process_read(transport: str, nfc_bridge_factory: Any,
                                                   nfc_cards: IssuedCards,
                                                   reference: dict[str, Any]) -> None:
    bridge = nfc_bridge_factory(transport)
    with NfcReader(bridge.path) as reader:
        presence = reader.connect(timeout=2)
        assert presence.atr == ATR  # PC/SC part 3 ATR from the ATS = the chip's own ATR
        for _ in range(2):  # a second read on the same frontend re-activates cleanly
            result = _read(reader, nfc_cards)
            assert result.ok, result.reason
            assert result.assurance is Assurance.CHIP_ANCHORED
            assert _comparable(result) == reference
    assert bridge.picc.apdu_count == 2 * reference["apdu_count"]


@pytest.fixture(scope="module")
def profile_cards(tmp_path_factory: pytest.TempPathFactory) -> IssuedCards:
    nfc_fixtures.require_components()
    return issue_profiles(tmp_path_factory, "nfc-profiles", seed=2713)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_card_profile_reads_through_nfcpy(profile: str, transport: str,
                                                nfc_bridge_factory: Any,
                                                profile_cards: IssuedCards) -> None:
    """ICAO access order through nfcpy against every simulated-card profile."""
    number = profile_cards.profile_number(profile)
    folder = profile_cards.card(number)
    keys = KeyMaterial.from_mrz(*profile_cards.info(number)["mrz"])
    trust = load_trust_folder(profile_cards.trust)
    expected = _comparable(read_chip(SimCardReader(folder, realtime=False), keys, ReadPolicy(),
                                     trust))
    bridge = nfc_bridge_factory(transport, card=folder)
    with NfcReader(bridge.path) as reader:
        assert reader.connect(timeout=2).atr == atr_for(PROFILES[profile])
        result = read_chip(reader, keys, ReadPolicy(), trust)
    assert result.ok, result.reason
    assert result.assurance is Assurance.CHIP_ANCHORED
    assert result.access == ("bac" if profile == "bac-only" else "pace-can")
    assert _comparable(result) == expected


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_iso_dep_chaining_both_ways(transport: str, nfc_bridge_factory: Any,
                                    nfc_cards: IssuedCards, reference: dict[str, Any]) -> None:
    # FSC 32 makes nfcpy chain commands; frames of at most 24 bytes make the card chain answers.
    bridge = nfc_bridge_factory(transport, fsci=2, max_frame=24)
    with NfcReader(bridge.path) as reader:
        result = _read(reader, nfc_cards)
    assert result.ok, result.reason
    assert _comparable(result) == reference


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tag_loss_fault_is_resumed(transport: str, nfc_bridge_factory: Any,
                                   nfc_cards: IssuedCards, reference: dict[str, Any]) -> None:
    bridge = nfc_bridge_factory(transport, faults=Faults(tag_loss_after_bytes=600))
    with NfcReader(bridge.path) as reader:
        result = _read(reader, nfc_cards)
    assert result.ok, result.reason
    assert result.retries >= 1
    assert result.to_json(personal=True)["identity"] == reference["identity"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_card_removed_mid_read_fails_cleanly_then_next_read_succeeds(
        transport: str, nfc_bridge_factory: Any, nfc_cards: IssuedCards) -> None:
    removed = threading.Event()
    bridge: Any = None

    def remove_after_six(command: bytes, response: bytes) -> None:
        if bridge.picc.apdu_count >= 6 and not removed.is_set():
            removed.set()
            bridge.picc.remove()

    bridge = nfc_bridge_factory(transport, on_apdu=remove_after_six)
    policy = ReadPolicy(deadline_s=2.5, reconnect_timeout_s=0.5)
    with NfcReader(bridge.path) as reader:
        events: list[CardEvent] = []
        reader.add_listener(lambda event, name: events.append(event))
        result = _read(reader, nfc_cards, policy)  # no exception
        assert removed.is_set()
        assert not result.ok
        assert result.failure in (FailureReason.CARD_LOST, FailureReason.DEADLINE)
        assert result.reason
        assert CardEvent.REMOVED in events
        with pytest.raises(CardLostError):
            reader.transmit(bytes.fromhex("00A4040C07A0000002471001"))
        bridge.present_card()
        again = _read(reader, nfc_cards)
        assert again.ok, again.reason
        assert events.count(CardEvent.INSERTED) >= 2


def test_presence_monitor_reports_removal_and_insertion(nfc_bridge_factory: Any) -> None:
    bridge = nfc_bridge_factory("pn532")
    with NfcReader(bridge.path, presence_interval=0.05) as reader:
        events: list[CardEvent] = []
        reader.add_listener(lambda event, name: events.append(event))
        reader.connect(timeout=2)
        assert events == [CardEvent.INSERTED]
        bridge.remove_card()
        wait_until(lambda: CardEvent.REMOVED in events, timeout=5, what="REMOVED")
        bridge.present_card()
        wait_until(lambda: events.count(CardEvent.INSERTED) == 2, timeout=5, what="INSERTED")


def test_wtx_when_the_card_needs_more_than_the_frame_waiting_time(
        nfc_bridge_factory: Any, nfc_cards: IssuedCards) -> None:
    # FWI 4 (4.8 ms) and a chip modelled at 3 ms per APDU plus 80 ms per public-key operation:
    # PACE and CA answers need S(WTX) (ISO/IEC 14443-4 §7.3), handled by nfcpy's ISO-DEP.
    from firmware_sim.card import TimingModel

    bridge = nfc_bridge_factory("udp", fwi=4, realtime=True, timing=TimingModel.realistic())
    with NfcReader(bridge.path) as reader:
        result = _read(reader, nfc_cards)
    assert result.ok, result.reason
    assert bridge.picc.wtx_requests > 0


# -- the edge-agent CLI through nfcpy ----------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cli_read_through_nfcpy(transport: str, nfc_bridge_factory: Any,
                                nfc_cards: IssuedCards) -> None:
    bridge = nfc_bridge_factory(transport)
    proc = subprocess.run(
        [str(edge_agent_script()), "read", "--reader", f"nfc:{bridge.path}",
         "--can", nfc_cards.info(1)["can"], "--trust", str(nfc_cards.trust), "--json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True
    assert out["assurance"] == "chip-anchored"


# -- reader failures ---------------------------------------------------------------------------

def test_missing_device_is_reader_unavailable() -> None:
    with pytest.raises(ReaderUnavailableError):
        NfcReader("tty:/dev/nonexistent-pn532:pn532")


def test_silent_serial_port_is_reader_unavailable() -> None:
    master, slave = os.openpty()
    try:
        with pytest.raises(ReaderUnavailableError):
            NfcReader(f"tty:{os.ttyname(slave)}:pn532")
    finally:
        os.close(master)
        os.close(slave)


# -- ATS / ATR helpers --------------------------------------------------------------------------

def test_ats_parsing_and_pcsc_atr() -> None:
    hist = historical_bytes(ATR)
    assert hist == bytes.fromhex("8073C02180")  # strict default: chaining, no extended length
    assert pcsc_atr(hist) == ATR
    assert parse_ats(bytes.fromhex("0A788082028073C02180")) == (8, 8, 2, hist)
    extended = atr_for(PROFILES["extended"])
    assert historical_bytes(extended) == bytes.fromhex("8073C021C0")
    assert pcsc_atr(historical_bytes(extended)) == extended
    assert parse_ats(b"\x01") == (2, 4, 0, b"")  # only TL: the defaults of §5.2
    assert parse_ats(bytes.fromhex("0575330102")) == (5, 0, 1, b"")  # TB 01: FWI 0, SFGI 1
    with pytest.raises(ValueError):
        parse_ats(bytes.fromhex("0978"))


# -- PN532 frames (UM0701-02 §6.2) --------------------------------------------------------------

class _Chip:
    """A chip stub: echoes the command data twice (long answers) with 9000."""

    last_delay_s = 0.0

    def power_on(self) -> bytes:
        return ATR

    def power_off(self) -> None:
        pass

    def process(self, apdu: bytes) -> bytes:
        return apdu[5:] * 2 + b"\x90\x00"


def _firmware() -> tuple[Pn532Firmware, list[bytes]]:
    sink: list[bytes] = []
    picc = TypeAPicc(_Chip(), uid=bytes.fromhex("08112233"))
    return Pn532Firmware(picc, sink.append), sink


def _command(fw: Pn532Firmware, sink: list[bytes], code: int, data: bytes = b"") -> bytes:
    sink.clear()
    fw.feed(b"\x00" * 3 + build_frame(bytes([0xD4, code]) + data))
    assert sink[0] == ACK
    frame = sink[1]
    if frame[3:5] == b"\xff\xff":
        size = frame[5] << 8 | frame[6]
        assert (frame[5] + frame[6] + frame[7]) & 0xFF == 0
        payload = frame[8:8 + size]
        assert (sum(payload) + frame[8 + size]) & 0xFF == 0
    else:
        size = frame[3]
        assert (frame[3] + frame[4]) & 0xFF == 0
        payload = frame[5:5 + size]
        assert (sum(payload) + frame[5 + size]) & 0xFF == 0
    assert payload[:2] == bytes([0xD5, code + 1])
    return payload[2:]


def test_normal_and_extended_frames_and_checksums() -> None:
    assert build_frame(b"\xd4\x02") == bytes.fromhex("0000FF02FED4022A00")  # nfcpy's own bytes
    assert checksum(b"\xd4\x02") == 0x2A
    long = build_frame(b"\xd5" + bytes(299))
    assert long[:8] == bytes.fromhex("0000FFFFFF012CD3")
    assert long[-2:] == bytes([0x2B, 0x00])
    assert len(build_frame(b"\xd5" + bytes(253))) == 254 + 7  # largest normal frame


def test_frame_parser_ack_nack_preamble_split_and_bad_checksums() -> None:
    parser = FrameParser()
    frame = build_frame(b"\xd4\x02")
    stream = b"\x55\x55\x00\x00\x00" + ACK + NACK + frame
    events = []
    for i in range(len(stream)):  # byte by byte: frames split anywhere
        events += parser.feed(stream[i:i + 1])
    assert events == [("ack", b""), ("nack", b""), ("frame", b"\xd4\x02")]
    bad_lcs = bytearray(frame)
    bad_lcs[4] ^= 1
    bad_dcs = bytearray(frame)
    bad_dcs[-2] ^= 1
    assert parser.feed(bytes(bad_lcs) + bytes(bad_dcs)) == []
    assert parser.errors == 2
    extended = build_frame(b"\xd4\x00" + bytes(300))
    assert parser.feed(extended) == [("frame", b"\xd4\x00" + bytes(300))]


def test_firmware_version_sam_error_frame_and_nack() -> None:
    fw, sink = _firmware()
    fw.feed(bytes(10) + bytes.fromhex("0000ff02fed4022a00"))
    assert sink == [ACK, bytes.fromhex("0000ff06fad50332010607e800")]
    assert _command(fw, sink, 0x14, b"\x01\x00\x00") == b""
    sink.clear()
    fw.feed(NACK)
    assert sink == [bytes.fromhex("0000ff02fed5151600")]  # the last response, again
    sink.clear()
    fw.feed(build_frame(b"\xd5\x02"))  # wrong TFI
    assert sink == [ACK, ERROR_FRAME]
    sink.clear()
    fw.feed(build_frame(b"\xd4\x8c"))  # target mode is not simulated
    assert sink == [ACK, ERROR_FRAME]


def test_diagnose_line_test_uses_extended_frames() -> None:
    fw, sink = _firmware()
    data = b"\x00" + bytes(range(256)) + bytes(6)  # 263 bytes, as nfcpy's line test
    assert _command(fw, sink, 0x00, data) == data


def test_registers_and_no_card_fifo_marker() -> None:
    fw, sink = _firmware()
    fw.picc.remove()
    assert _command(fw, sink, 0x4A, b"\x01\x00") == b"\x00"
    assert _command(fw, sink, 0x06, b"\x63\x39") == b"\x26"  # REQA unanswered
    assert _command(fw, sink, 0x08, b"\x63\x02\x92") == b""
    assert _command(fw, sink, 0x06, b"\x63\x02\x63\x03") == b"\x92\x80"


def test_in_list_passive_target_with_automatic_rats() -> None:
    fw, sink = _firmware()
    assert _command(fw, sink, 0x4A, b"\x01\x00") == bytes.fromhex("0101 0004 20 04 08112233")
    _command(fw, sink, 0x32, b"\x01\x00")  # RF off resets the card
    _command(fw, sink, 0x12, b"\x10")  # fAutomaticRATS
    answer = _command(fw, sink, 0x4A, b"\x01\x00")
    assert answer[:10] == bytes.fromhex("0101 0004 20 04 08112233")
    ats = answer[10:]
    assert ats[0] == len(ats) and historical_bytes(ATR) == ats[5:]


def test_in_data_exchange_chaining_both_ways() -> None:
    fw, sink = _firmware()
    _command(fw, sink, 0x12, b"\x10")
    _command(fw, sink, 0x4A, b"\x01\x00")
    body = bytes(i & 0xFF for i in range(200))
    apdu = bytes.fromhex("00D60000") + bytes([len(body)]) + body  # 205 bytes
    # The host sends it in two InDataExchange commands, the first with MI (UM §7.3.8).
    assert _command(fw, sink, 0x40, b"\x41" + apdu[:100]) == b"\x00"
    first = _command(fw, sink, 0x40, b"\x01" + apdu[100:])
    # 402 bytes of answer: 262 in the first response with MI, the rest on the next request.
    assert first[0] == 0x40 and len(first) == 1 + 262
    second = _command(fw, sink, 0x40, b"\x01")
    assert second[0] == 0x00
    assert first[1:] + second[1:] == body * 2 + b"\x90\x00"
    assert fw.picc.apdu_count == 1
    assert _command(fw, sink, 0x44, b"\x01") == b"\x00"  # InDeselect: S(DESELECT) to the card
    assert _command(fw, sink, 0x52, b"\x01") == b"\x00"


def test_in_communicate_thru_timeout_status_when_card_is_silent() -> None:
    fw, sink = _firmware()
    _command(fw, sink, 0x32, b"\x02\x00\x0b\x05")  # 1.6 ms time-out
    assert _command(fw, sink, 0x4A, b"\x01\x00")[0] == 1
    ats = _command(fw, sink, 0x42, b"\xe0\x80")
    assert ats[0] == 0 and ats[1] == len(ats) - 1
    assert _command(fw, sink, 0x42, b"\x02\x00\xa4\x04\x00")[:2] == b"\x00\x02"
    fw.picc.remove()
    assert _command(fw, sink, 0x42, b"\x03\x00\xa4\x04\x00") == b"\x01"  # time-out

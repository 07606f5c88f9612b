"""The PC/SC driver through the real stack: pyscard → pcscd → vpcd → bridge → simulated chip.

See :mod:`tests.hil.pcsc_fixtures` for how pcscd and the bridge run (private network namespace).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.card_reader import CardEvent, CardLostError, NoCardError, ReaderUnavailableError
from drivers.pcsc import PcscReader
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import Assurance, FailureReason, KeyMaterial, ReadPolicy, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.card import ATR, PROFILE_NAMES, PROFILES, atr_for
from firmware_sim.sim_reader import SimCardReader
from tests.hil.issued import issue_profiles
from tests.hil.pcsc_fixtures import *  # noqa: F403 - the fixtures, used by name
from tests.hil.pcsc_fixtures import (
    READER_NAME,
    READER_PREFIX,
    Bridge,
    IssuedCards,
    PcscStack,
    wait_card,
    wait_until,
)

GET_CHALLENGE = bytes.fromhex("0084000008")
SELECT_EMRTD = bytes.fromhex("00A4040C07A0000002471001")  # ICAO 9303-10 §3.6.2, no Le


class Events:
    """A thread-safe record of listener calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[CardEvent, str]] = []

    def __call__(self, event: CardEvent, reader: str) -> None:
        with self._lock:
            self.items.append((event, reader))

    def count(self, event: CardEvent, reader: str = READER_NAME) -> int:
        with self._lock:
            return self.items.count((event, reader))


@pytest.fixture
def reader() -> Iterator[PcscReader]:
    with PcscReader(READER_PREFIX) as pcsc:
        assert isinstance(pcsc, PcscReader)
        yield pcsc


@pytest.fixture(scope="module")
def trust(pcsc_cards: IssuedCards) -> TrustStore:
    return load_trust_folder(pcsc_cards.trust)


def keys(cards: IssuedCards) -> KeyMaterial:
    return KeyMaterial.from_can(cards.info(1)["can"])


def test_apdu_round_trip(vpcd_bridge: Bridge, reader: PcscReader) -> None:
    presence = reader.connect(timeout=5)
    assert presence.atr == ATR  # the chip's ATR (ISO/IEC 7816-3) passed through vpcd unchanged
    assert presence.reader_name == READER_NAME
    # the strict chip refuses BAC before the application is selected (ICAO 9303-11 §4.3)
    assert reader.transmit(GET_CHALLENGE) == b"\x69\x85"
    assert reader.transmit(SELECT_EMRTD)[-2:] == b"\x90\x00"
    challenge = reader.transmit(GET_CHALLENGE)
    assert len(challenge) == 10 and challenge[-2:] == b"\x90\x00"
    assert reader.transmit(GET_CHALLENGE)[:8] != challenge[:8]
    health = reader.health()
    assert health["reader"] == READER_NAME and health["present"] and health["connected"]
    reader.disconnect()
    reader.disconnect()  # idempotent
    with pytest.raises(CardLostError):
        reader.transmit(GET_CHALLENGE)


def test_transmit_from_several_threads(vpcd_bridge: Bridge, reader: PcscReader) -> None:
    reader.connect(timeout=5)
    assert reader.transmit(SELECT_EMRTD)[-2:] == b"\x90\x00"
    answers: list[bytes] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                answers.append(reader.transmit(GET_CHALLENGE))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(answers) == 200 and all(a[-2:] == b"\x90\x00" and len(a) == 10 for a in answers)


def test_no_card_times_out(vpcd_bridge: Bridge, reader: PcscReader) -> None:
    vpcd_bridge.remove()
    with pytest.raises(NoCardError):
        wait_until(lambda: not reader.health()["present"], what="card absent")
        reader.connect(timeout=0.3)


def test_read_matches_simulator(vpcd_bridge: Bridge, reader: PcscReader,
                                pcsc_cards: IssuedCards, trust: TrustStore) -> None:
    via_pcsc = read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust)
    via_sim = read_chip(SimCardReader(pcsc_cards.card(1), realtime=False), keys(pcsc_cards),
                        ReadPolicy(), trust)
    assert via_pcsc.ok, via_pcsc.reason
    assert via_sim.ok, via_sim.reason
    assert via_pcsc.assurance is Assurance.CHIP_ANCHORED
    assert via_pcsc.assurance == via_sim.assurance
    assert via_pcsc.access == via_sim.access == "pace-can"
    assert via_pcsc.identity == via_sim.identity
    assert via_pcsc.data_groups == via_sim.data_groups
    assert {k: c.status for k, c in via_pcsc.checks.items()} == {
        k: c.status for k, c in via_sim.checks.items()}
    assert via_pcsc.apdu_count == via_sim.apdu_count


def test_cli_read_json(vpcd_bridge: Bridge, pcsc_cards: IssuedCards) -> None:
    console = Path(sys.executable).with_name("edge-agent")
    proc = subprocess.run(
        [str(console), "read", "--reader", "pcsc", "--can", pcsc_cards.info(1)["can"],
         "--trust", str(pcsc_cards.trust), "--json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is True
    assert result["assurance"] == "chip-anchored"


def test_card_removed_mid_read(vpcd_bridge: Bridge, reader: PcscReader,
                               pcsc_cards: IssuedCards, trust: TrustStore) -> None:
    vpcd_bridge.remove_after(8)  # inside PACE / the first READ BINARYs
    torn = read_chip(reader, keys(pcsc_cards), ReadPolicy(max_retries=0), trust)
    assert not torn.ok
    assert torn.failure is FailureReason.CARD_LOST
    assert torn.reason and torn.identity is None
    assert not vpcd_bridge.status()["inserted"]
    vpcd_bridge.insert()  # presented again
    again = read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust)
    assert again.ok, again.reason
    assert again.assurance is Assurance.CHIP_ANCHORED


def test_torn_read_resumes_when_card_comes_back(pcsc_stack: PcscStack, pcsc_cards: IssuedCards,
                                                reader: PcscReader, trust: TrustStore) -> None:
    # A tag-loss fault in the chip: the bridge drops the card and re-presents it 0.2 s later;
    # the session reconnects through pcscd and finishes the read.
    bridge = pcsc_stack.bridge(pcsc_cards.card(1), "--fault", "tag-loss=600",
                               "--reinsert-delay", "0.2")
    try:
        wait_card(False)
        bridge.wait_ready()
        wait_card(True)
        result = read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust)
        assert result.ok, result.reason
        assert result.retries >= 1
        assert bridge.status()["tag_losses"] == 1
    finally:
        bridge.stop()
        wait_card(False)


def test_insert_remove_events(vpcd_bridge: Bridge, reader: PcscReader) -> None:
    events = Events()
    reader.add_listener(events)
    wait_until(lambda: events.count(CardEvent.INSERTED), what="initial INSERTED")
    assert events.items.index((CardEvent.READER_ADDED, READER_NAME)) < events.items.index(
        (CardEvent.INSERTED, READER_NAME))
    vpcd_bridge.remove()
    wait_until(lambda: events.count(CardEvent.REMOVED), what="REMOVED")
    vpcd_bridge.insert()
    wait_until(lambda: events.count(CardEvent.INSERTED) == 2, what="second INSERTED")
    assert reader.connect(timeout=2).atr == ATR


def test_pcscd_restart_recovers(pcsc_stack: PcscStack, vpcd_bridge: Bridge, reader: PcscReader,
                                pcsc_cards: IssuedCards, trust: TrustStore) -> None:
    events = Events()
    reader.add_listener(events)
    wait_until(lambda: events.count(CardEvent.INSERTED), what="initial INSERTED")
    assert read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust).ok

    pcsc_stack.stop_pcscd()  # the reader is gone
    wait_until(lambda: events.count(CardEvent.READER_REMOVED), what="READER_REMOVED")
    assert events.count(CardEvent.REMOVED) == 1  # the card went with it
    with pytest.raises(ReaderUnavailableError):
        reader.transmit(GET_CHALLENGE)
    with pytest.raises(ReaderUnavailableError):
        reader.connect(timeout=0.5)
    gone = read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust)
    assert not gone.ok and gone.reason
    assert reader.health()["service"] is False

    pcsc_stack.start_pcscd()  # plugged back; the bridge reconnects to the new vpcd
    wait_until(lambda: events.count(CardEvent.READER_ADDED) == 2, what="READER_ADDED again")
    wait_until(lambda: events.count(CardEvent.INSERTED) == 2, what="INSERTED again")
    result = read_chip(reader, keys(pcsc_cards), ReadPolicy(), trust)  # same object
    assert result.ok, result.reason
    assert reader.health()["service"] is True


@pytest.fixture(scope="module")
def profile_cards(tmp_path_factory: pytest.TempPathFactory) -> IssuedCards:
    return issue_profiles(tmp_path_factory, "pcsc-profiles", seed=2712)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_every_card_profile_reads_through_pcscd(profile: str, pcsc_stack: PcscStack,
                                                profile_cards: IssuedCards,
                                                reader: PcscReader) -> None:
    """ICAO access order through the real stack against every simulated-card profile."""
    if pcsc_stack.pcscd is None or pcsc_stack.pcscd.poll() is not None:
        pcsc_stack.stop_pcscd()
        pcsc_stack.start_pcscd()
    wait_card(False)
    number = profile_cards.profile_number(profile)
    bridge = pcsc_stack.bridge(profile_cards.card(number))
    try:
        bridge.wait_ready()
        wait_card(True)
        info = profile_cards.info(number)
        keys = KeyMaterial.from_mrz(*info["mrz"])
        trust = load_trust_folder(profile_cards.trust)
        assert reader.connect(timeout=5).atr == atr_for(PROFILES[profile])
        via_pcsc = read_chip(reader, keys, ReadPolicy(), trust)
        via_sim = read_chip(SimCardReader(profile_cards.card(number), realtime=False), keys,
                            ReadPolicy(), trust)
        assert via_pcsc.ok, via_pcsc.reason
        assert via_pcsc.assurance is Assurance.CHIP_ANCHORED
        assert via_pcsc.access == ("bac" if profile == "bac-only" else "pace-can")
        assert via_pcsc.identity == via_sim.identity
        assert via_pcsc.data_groups == via_sim.data_groups
        assert via_pcsc.apdu_count == via_sim.apdu_count
    finally:
        bridge.stop()
        wait_card(False)

"""ICAO access order against every simulated card profile (ICAO 9303-10 §3.6, 9303-11 §4).

The reader must read every profile: the strict default (BAC only after a plain SELECT of the
application, PACE only at the MF, no extended length unless advertised), SELECT MF and short EF
identifiers refused at the MF, a BAC-only chip, an extended-length chip, and the lenient one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.card_reader import CardReader
from edge_agent.cccd import BacKey
from edge_agent.icao import atr, files
from edge_agent.icao.apdu import CommandApdu, exchange
from edge_agent.icao.bac import open_bac
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.status import SELECT_MF as SELECT_MF_CONTEXT
from edge_agent.icao.status import ApplicationNotSelected, NotFound, SelectMfRefused
from edge_agent.icao.trust import TrustStore
from edge_agent.reading import Assurance, FailureReason, KeyMaterial, ReadPolicy, read_chip
from edge_agent.trust_folder import load_trust_folder
from firmware_sim.card import ATR, PROFILE_NAMES, PROFILES, Faults, atr_for, issue_cards, load_card
from firmware_sim.sim_reader import SimCardReader

SELECT_MF = bytes.fromhex("00A4000C023F00")
SELECT_APP = bytes.fromhex("00A4040C07A0000002471001")
SELECT_CARD_ACCESS = bytes.fromhex("00A4020C02011C")
READ_CARD_ACCESS_SFI = bytes.fromhex("00B09C00")
GET_CHALLENGE = bytes.fromhex("0084000008")


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One card per profile, the same synthetic person on each (cards 0001… in profile order)."""
    out = tmp_path_factory.mktemp("profiles")
    for profile in PROFILE_NAMES:
        issue_cards(out, 1, seed=11, profile=profile)
    return out


@pytest.fixture(scope="module")
def trust(issued: Path) -> TrustStore:
    return load_trust_folder(issued / "trust")


def card(issued: Path, profile: str) -> tuple[Path, dict[str, Any]]:
    folder = issued / "cards" / f"{PROFILE_NAMES.index(profile) + 1:04d}"
    info = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert info["options"]["profile"] == profile
    return folder, info


class LoggingReader(CardReader):
    """The in-process reader, recording every command APDU."""

    def __init__(self, inner: SimCardReader) -> None:
        self.inner = inner
        self.log: list[bytes] = []

    def connect(self, timeout: float | None = None) -> Any:
        return self.inner.connect(timeout)

    def transmit(self, apdu: bytes) -> bytes:
        self.log.append(bytes(apdu))
        return self.inner.transmit(apdu)

    def disconnect(self) -> None:
        self.inner.disconnect()


class ChipChannel:
    """A powered simulated chip as a card channel."""

    def __init__(self, folder: Path, **options: Any) -> None:
        self.chip = load_card(folder, **options)
        self.chip.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        return bytes(self.chip.process(apdu))


def reader_for(folder: Path, **faults: Any) -> LoggingReader:
    return LoggingReader(SimCardReader(folder, faults=Faults(**faults) if faults else None,
                                       realtime=False))


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_reader_reads_every_profile_in_icao_order(issued: Path, trust: TrustStore,
                                                       profile: str) -> None:
    folder, info = card(issued, profile)
    reader = reader_for(folder)
    result = read_chip(reader, KeyMaterial.from_mrz(*info["mrz"]), trust=trust)
    assert result.ok, result.reason
    assert result.assurance is Assurance.CHIP_ANCHORED
    assert result.identity is not None
    assert result.identity.id_number.value == info["person"]["id_number"]
    log = reader.log
    assert SELECT_MF not in log and not any(a.startswith(bytes.fromhex("00A400")) for a in log)
    if PROFILES[profile].pace:
        assert result.access == "pace-can"
        # EF.CardAccess at the MF: by short EF identifier, by FID where that is refused
        assert log[0].startswith(READ_CARD_ACCESS_SFI)
        if not PROFILES[profile].short_ef_at_mf:
            assert log[1] == SELECT_CARD_ACCESS
        # PACE before any SELECT of the application; the application selected under SM
        mse = next(i for i, a in enumerate(log) if a[:4] == bytes.fromhex("0022C1A4"))
        assert SELECT_APP not in log[:mse]
        assert log[mse + 5][0] & 0x0C and log[mse + 5][1] == 0xA4  # protected SELECT
        assert SELECT_APP not in log
    else:
        assert result.access == "bac"
        assert log[0].startswith(READ_CARD_ACCESS_SFI)  # answered 6A82: no EF.CardAccess
        assert log[1:4] == [SELECT_APP, GET_CHALLENGE, log[3]]
        assert log[3][:4] == bytes.fromhex("00820000")


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_tag_loss_reopens_in_icao_order(issued: Path, trust: TrustStore, profile: str) -> None:
    folder, info = card(issued, profile)
    keys = KeyMaterial.from_mrz(*info["mrz"])
    clean = read_chip(reader_for(folder), keys, trust=trust)
    lossy = read_chip(reader_for(folder, tag_loss_after_bytes=600), keys, trust=trust)
    assert lossy.ok, lossy.reason
    assert lossy.retries == 1
    assert lossy.identity == clean.identity and lossy.data_groups == clean.data_groups


def test_bac_only_chip_with_a_can_alone_says_why(issued: Path) -> None:
    folder, info = card(issued, "bac-only")
    result = read_chip(reader_for(folder), KeyMaterial.from_can(info["can"]))
    assert result.failure is FailureReason.NO_KEY_MATERIAL
    assert "no PACE" in result.reason and "MRZ" in result.reason


def test_failed_pace_falls_back_to_bac_after_a_plain_select(issued: Path) -> None:
    folder, info = card(issued, "strict")
    right = KeyMaterial.from_mrz(*info["mrz"]).bac_keys[0]
    wrong_can = f"{(int(info['can']) + 1) % 10**6:06d}"
    reader = reader_for(folder)
    result = read_chip(reader, KeyMaterial(can=wrong_can, bac_keys=(right,)))
    assert result.ok, result.reason
    assert result.access == "bac"
    assert reader.log.index(SELECT_APP) < reader.log.index(GET_CHALLENGE)


def test_wrong_bac_key_names_each_candidate(issued: Path) -> None:
    folder, info = card(issued, "bac-only")
    right = KeyMaterial.from_mrz(*info["mrz"]).bac_keys[0]
    wrong = BacKey(right.document_number, right.date_of_birth, "991230")
    result = read_chip(reader_for(folder), KeyMaterial(bac_keys=(wrong,)))
    assert result.failure is FailureReason.ACCESS_DENIED
    assert result.reason.startswith("bac: MUTUAL AUTHENTICATE: card returned 6300")


def test_bac_before_select_is_a_typed_refusal_on_strict_chips(issued: Path) -> None:
    folder, info = card(issued, "bac-only")
    with pytest.raises(ApplicationNotSelected) as refused:
        open_bac(ChipChannel(folder), info["mrz_information"])
    assert refused.value.sw == 0x6985 and isinstance(refused.value, IcaoError)
    assert "GET CHALLENGE" in refused.value.reason
    # the lenient profile keeps the old behaviour: BAC without SELECT passes
    assert open_bac(ChipChannel(folder, profile="lenient"), info["mrz_information"]) is not None


def test_select_mf_refusal_is_typed_and_card_access_is_read_by_fid(issued: Path) -> None:
    folder, _ = card(issued, "strict-no-mf")
    channel = ChipChannel(folder)
    with pytest.raises(SelectMfRefused):
        exchange(channel, SELECT_MF).check(SELECT_MF_CONTEXT)
    assert files.read_card_access(channel) == (folder / "ef" / "CardAccess.bin").read_bytes()
    with pytest.raises(NotFound):
        files.read_card_access(ChipChannel(card(issued, "bac-only")[0]))


def test_extended_length_only_where_advertised(issued: Path) -> None:
    policy = ReadPolicy(max_chunk=0x400)
    strict_folder, info = card(issued, "strict")
    keys = KeyMaterial.from_can(info["can"])
    strict_reader = reader_for(strict_folder)
    capped = read_chip(strict_reader, keys, policy)
    assert capped.ok, capped.reason
    assert not any(CommandApdu.parse(a).is_extended for a in strict_reader.log)
    ext_folder, _ = card(issued, "extended")
    ext_reader = reader_for(ext_folder)
    extended = read_chip(ext_reader, keys, policy)
    assert extended.ok, extended.reason
    assert any(CommandApdu.parse(a).is_extended for a in ext_reader.log)
    assert extended.apdu_count < capped.apdu_count
    same_card = read_chip(reader_for(ext_folder), keys)
    assert extended.data_groups == same_card.data_groups


def test_strict_chip_refuses_extended_apdus_the_reader_never_sends(issued: Path) -> None:
    folder, _ = card(issued, "strict")
    channel = ChipChannel(folder)
    assert channel.transmit(bytes.fromhex("00B09C00000400")) == bytes.fromhex("6700")
    assert channel.transmit(bytes.fromhex("00B09C0000"))[-2:] == bytes.fromhex("9000")
    lenient = ChipChannel(folder, profile="lenient")
    assert lenient.transmit(bytes.fromhex("00B09C00000400"))[-2:] == bytes.fromhex("6282")  # EOF


def test_atr_card_capabilities() -> None:
    assert atr.card_capabilities(ATR) == atr.CardCapabilities(True, False)
    extended = atr_for(PROFILES["extended"])
    assert atr.card_capabilities(extended) == atr.CardCapabilities(True, True)
    assert atr.read_chunk(ATR, 0x400) == atr.SHORT_SM_MAX_CHUNK
    assert atr.read_chunk(extended, 0x400) == 0x400
    assert atr.read_chunk(None, 0x60) == 0x60
    assert atr.historical_bytes(ATR) == bytes.fromhex("8073C02180")
    assert atr.card_capabilities(bytes.fromhex("3B00")) == atr.CardCapabilities()


@given(st.binary(max_size=40))
def test_atr_parsing_never_fails(raw: bytes) -> None:
    caps = atr.card_capabilities(raw)
    assert caps.extended_length in (None, True, False)
    assert atr.read_chunk(raw, 0x400) in (0x400, atr.SHORT_SM_MAX_CHUNK)

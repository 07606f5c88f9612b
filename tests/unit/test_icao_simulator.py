"""Reader-side protocols end to end against the card simulator (firmware_sim.card).

Skipped only while ``firmware_sim.card`` is not importable (it is written independently).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import firmware_sim.card as sim
from edge_agent.icao import files, lds
from edge_agent.icao.active_auth import active_authenticate
from edge_agent.icao.bac import MrzKey, open_bac
from edge_agent.icao.chip_auth import chip_authenticate
from edge_agent.icao.pace import open_pace
from edge_agent.icao.secure_messaging import SecureChannel, SecureMessagingError


class ChipChannel:
    """Adapts the simulator's ``process`` to the CardChannel protocol."""

    def __init__(self, chip: Any) -> None:
        self.chip = chip

    def transmit(self, apdu: bytes) -> bytes:
        result: bytes = self.chip.process(apdu)
        return result


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    sim.issue_cards(out, 1)
    sim.issue_cards(out, 1, refuse_select_mf=True)
    return out / "cards"


def _card(issued: Path, number: int = 1, **kwargs: Any) -> tuple[ChipChannel, dict[str, Any]]:
    folder = issued / f"{number:04d}"
    info: dict[str, Any] = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    chip = sim.load_card(folder, **kwargs)
    chip.power_on()
    return ChipChannel(chip), info


def _open_pace(channel: ChipChannel, info: dict[str, Any]) -> SecureChannel:
    card_access = files.read_card_access(channel)
    sm = open_pace(channel, info["can"].encode(), "can", card_access)
    secure = SecureChannel(channel, sm)
    files.select_application(secure)
    return secure


@pytest.mark.parametrize("number", [1, 2])
def test_pace_can_reads_dg1(issued: Path, number: int) -> None:
    channel, info = _card(issued, number)
    secure = _open_pace(channel, info)
    dg1 = lds.parse_dg1(files.read_file(secure, files.FID_DG[1]))
    assert list(dg1.lines) == info["mrz"]
    com = lds.parse_ef_com(files.read_file(secure, files.FID_COM))
    assert com.data_groups == (1, 2, 3, 13, 14, 15)
    dg2 = lds.parse_dg2(files.read_file(secure, files.FID_DG[2]))
    assert dg2.image.mime_type in ("image/jpeg", "image/jp2", "image/j2k")


def test_bac_reads_dg1(issued: Path) -> None:
    channel, info = _card(issued)
    files.select_application(channel)
    line1, line2 = info["mrz"][0], info["mrz"][1]
    key = MrzKey.from_fields(line1[5:14], line2[0:6], line2[8:14])
    assert key.information == info["mrz_information"]
    secure = SecureChannel(channel, open_bac(channel, key))
    dg1 = lds.parse_dg1(files.read_file(secure, files.FID_DG[1]))
    assert list(dg1.lines) == info["mrz"]


def test_active_authentication(issued: Path) -> None:
    channel, info = _card(issued)
    secure = _open_pace(channel, info)
    dg14 = lds.parse_dg14(files.read_file(secure, files.FID_DG[14]))
    dg15 = lds.parse_dg15(files.read_file(secure, files.FID_DG[15]))
    assert active_authenticate(secure, dg15.public_key, dg14.active_authentication_info)


def test_chip_authentication(issued: Path) -> None:
    channel, info = _card(issued)
    secure = _open_pace(channel, info)
    dg14 = lds.parse_dg14(files.read_file(secure, files.FID_DG[14]))
    new = chip_authenticate(secure, dg14)
    after = SecureChannel(channel, new)
    dg1 = lds.parse_dg1(files.read_file(after, files.FID_DG[1]))
    assert list(dg1.lines) == info["mrz"]


def test_resume_after_tag_loss(issued: Path) -> None:
    channel, info = _card(issued, faults=sim.Faults(tag_loss_after_bytes=1500))
    secure = _open_pace(channel, info)
    stats = files.ReadStats()
    with pytest.raises(sim.TagLost):
        files.read_file(secure, files.FID_DG[2], stats=stats)
    already = bytes(stats.partial)
    assert already
    channel.chip.power_on()
    secure = _open_pace(channel, info)
    whole = files.read_file(secure, files.FID_DG[2], prefix=already)
    fresh_channel, _ = _card(issued)
    assert whole == files.read_file(_open_pace(fresh_channel, info), files.FID_DG[2])


def test_wrong_mac_detected(issued: Path) -> None:
    channel, info = _card(issued, faults=sim.Faults(wrong_mac=True))
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        _open_pace(channel, info)

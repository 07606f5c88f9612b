"""PACE ECDH-GM (ICAO 9303-11 §4.4) against Appendix G.1, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.icao import ec
from edge_agent.icao.apdu import CardStatusError
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.pace import (
    PaceError,
    PaceTerminal,
    choose_pace_info,
    derive_k_pi,
    open_pace,
    public_key_data_object,
)
from edge_agent.icao.security_infos import (
    ID_PACE_ECDH_GM_AES_CBC_CMAC_128,
    ChipAuthenticationInfo,
    PaceInfo,
    TerminalAuthenticationInfo,
    UnknownSecurityInfo,
    pace_infos,
    parse_card_access,
)

CCCD_CARD_ACCESS = bytes.fromhex(
    "3134300d060804007f0007020202020101300f060a04007f000702020302020201013012060a04007f00070202"
    "04020202010202010d")


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.fixture
def v(icao_vectors: dict[str, Any]) -> dict[str, Any]:
    return icao_vectors["pace_ecdh_gm_brainpoolp256r1"]


def _rng(v: dict[str, Any]) -> Any:
    queue = [_h(v["terminal_mapping_private"]), _h(v["terminal_ephemeral_private"])]
    return lambda n: queue.pop(0)


def _body(response_hex: str) -> bytes:
    raw = _h(response_hex)
    assert raw[-2:] == b"\x90\x00"
    return raw[:-2]


def _terminal(v: dict[str, Any]) -> PaceTerminal:
    info = pace_infos(parse_card_access(_h(v["ef_card_access"])))[0]
    return PaceTerminal.create(info, v["mrz_information"].encode(), "mrz", _rng(v))


def test_card_access_vector(v: dict[str, Any]) -> None:
    infos = parse_card_access(_h(v["ef_card_access"]))
    assert infos == [PaceInfo(ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 2, 13)]
    info = infos[0]
    assert isinstance(info, PaceInfo)
    assert info.cipher is CipherKind.AES128 and info.curve is ec.BRAINPOOL_P256R1


def test_card_access_cccd() -> None:
    infos = parse_card_access(CCCD_CARD_ACCESS)
    assert isinstance(infos[0], TerminalAuthenticationInfo) and infos[0].version == 1
    assert infos[1] == ChipAuthenticationInfo("0.4.0.127.0.7.2.2.3.2.2", 1, None)
    assert infos[1].cipher is CipherKind.AES128
    assert infos[2] == PaceInfo(ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 2, 13)


def test_card_access_keeps_unknown() -> None:
    unknown = bytes.fromhex("300806032a0304020101")
    data = bytes([0x31, len(unknown)]) + unknown
    infos = parse_card_access(data)
    assert infos == [UnknownSecurityInfo("1.2.3.4", unknown)]


def test_every_step_byte_for_byte(v: dict[str, Any]) -> None:
    t = _terminal(v)
    assert t.k_pi == _h(v["k_pi"])
    assert t.mse_set_at().to_bytes() == _h(v["mse_set_at"])
    assert t.command_1().to_bytes() == _h(v["general_authenticate_1_command"])
    cmd = t.process_nonce(_body(v["general_authenticate_1_response"]))
    assert t.nonce == _h(v["nonce_decrypted"])
    assert cmd.to_bytes() == _h(v["general_authenticate_2_command"])
    cmd = t.process_mapping(_body(v["general_authenticate_2_response"]))
    assert t.h == ec.Point(int(v["shared_point_h"]["x"], 16), int(v["shared_point_h"]["y"], 16))
    assert t.mapped_generator == ec.Point(int(v["mapped_generator"]["x"], 16),
                                          int(v["mapped_generator"]["y"], 16))
    assert cmd.to_bytes() == _h(v["general_authenticate_3_command"])
    cmd = t.process_key_agreement(_body(v["general_authenticate_3_response"]))
    assert t.shared_secret == _h(v["shared_secret_x"])
    assert t.ks_enc == _h(v["ks_enc"])
    assert t.ks_mac == _h(v["ks_mac"])
    assert cmd.to_bytes() == _h(v["general_authenticate_4_command"])
    assert t.token_ifd == _h(v["general_authenticate_4_command"])[9:17]
    assert t.expected_chip_token() == _body(v["general_authenticate_4_response"])[4:]
    sm = t.process_token(_body(v["general_authenticate_4_response"]))
    assert (sm.cipher, sm.ks_enc, sm.ks_mac, sm.ssc) == (
        CipherKind.AES128, _h(v["ks_enc"]), _h(v["ks_mac"]), 0)
    assert sm.ssc_bytes() == bytes(16)


def test_k_pi_from_can() -> None:
    k1 = derive_k_pi(b"123456", "can", CipherKind.AES128)
    assert k1 == derive_k_pi("123456", "can", CipherKind.AES128)
    assert len(k1) == 16
    with pytest.raises(PaceError, match="unknown password kind"):
        derive_k_pi(b"1", "pin", CipherKind.AES128)  # type: ignore[arg-type]


def test_mse_can_reference(v: dict[str, Any]) -> None:
    info = pace_infos(parse_card_access(_h(v["ef_card_access"])))[0]
    t = PaceTerminal.create(info, b"123456", "can")
    assert t.mse_set_at().to_bytes().endswith(b"\x83\x01\x02")
    with_id = PaceTerminal.create(info, b"123456", "can", with_parameter_id=True)
    assert with_id.mse_set_at().to_bytes().endswith(b"\x83\x01\x02\x84\x01\x0d")


def test_token_input_object(v: dict[str, Any]) -> None:
    point = _h(v["general_authenticate_3_response"])[4:4 + 65]
    obj = public_key_data_object(ID_PACE_ECDH_GM_AES_CBC_CMAC_128, point)
    assert obj[:4] == _h("7F494F06") and obj[4] == 10 and obj[15:17] == _h("8641")


def test_wrong_chip_token_rejected(v: dict[str, Any]) -> None:
    t = _terminal(v)
    t.process_nonce(_body(v["general_authenticate_1_response"]))
    t.process_mapping(_body(v["general_authenticate_2_response"]))
    t.process_key_agreement(_body(v["general_authenticate_3_response"]))
    bad = bytearray(_body(v["general_authenticate_4_response"]))
    bad[-1] ^= 1
    with pytest.raises(PaceError, match="T_ICC does not verify"):
        t.process_token(bytes(bad))
    with pytest.raises(PaceError, match="lacks tag 86"):
        t.process_token(_h("7C00"))
    with pytest.raises(PaceError, match="malformed response"):
        t.process_token(_h("7C0A8608"))


def test_pk_icc_equal_to_pk_ifd_rejected(v: dict[str, Any]) -> None:
    t = _terminal(v)
    t.process_nonce(_body(v["general_authenticate_1_response"]))
    cmd = t.process_mapping(_body(v["general_authenticate_2_response"]))
    echo = b"\x7c\x43\x84\x41" + cmd.data[4:]
    with pytest.raises(PaceError, match="PK_ICC equals PK_IFD"):
        t.process_key_agreement(echo)


def test_points_off_curve_rejected(v: dict[str, Any]) -> None:
    t = _terminal(v)
    t.process_nonce(_body(v["general_authenticate_1_response"]))
    bad = bytearray(_body(v["general_authenticate_2_response"]))
    bad[-1] ^= 1
    with pytest.raises(PaceError, match="mapping: chip's public key rejected: point is not on"):
        t.process_mapping(bytes(bad))
    t2 = _terminal(v)
    t2.process_nonce(_body(v["general_authenticate_1_response"]))
    t2.process_mapping(_body(v["general_authenticate_2_response"]))
    bad = bytearray(_body(v["general_authenticate_3_response"]))
    bad[10] ^= 1
    with pytest.raises(PaceError, match="key agreement: chip's public key rejected"):
        t2.process_key_agreement(bytes(bad))


def test_bad_nonce_length(v: dict[str, Any]) -> None:
    t = _terminal(v)
    with pytest.raises(PaceError, match="not whole blocks"):
        t.process_nonce(_h("7C03800100"))


def test_choose_pace_info() -> None:
    with pytest.raises(PaceError, match="no PACEInfo"):
        choose_pace_info([])
    im = PaceInfo("0.4.0.127.0.7.2.2.4.4.2", 2, 13)
    with pytest.raises(PaceError, match="no supported PACEInfo"):
        choose_pace_info([im])
    gm = PaceInfo(ID_PACE_ECDH_GM_AES_CBC_CMAC_128, 2, 13)
    assert choose_pace_info([im, gm]) is gm


class VectorChip:
    """Replays Appendix G.1, checking each command the terminal sends."""

    def __init__(self, v: dict[str, Any], last_answer: bytes | None = None) -> None:
        self.script = [
            (_h(v["mse_set_at"]), b"\x90\x00"),
            (_h(v["general_authenticate_1_command"]), _h(v["general_authenticate_1_response"])),
            (_h(v["general_authenticate_2_command"]), _h(v["general_authenticate_2_response"])),
            (_h(v["general_authenticate_3_command"]), _h(v["general_authenticate_3_response"])),
            (_h(v["general_authenticate_4_command"]),
             last_answer or _h(v["general_authenticate_4_response"])),
        ]

    def transmit(self, apdu: bytes) -> bytes:
        expected, answer = self.script.pop(0)
        assert apdu == expected
        return answer


def test_open_pace_driver(v: dict[str, Any]) -> None:
    chip = VectorChip(v)
    sm = open_pace(chip, v["mrz_information"].encode(), "mrz", _h(v["ef_card_access"]),
                   rng=_rng(v))
    assert sm.ks_mac == _h(v["ks_mac"]) and not chip.script


def test_open_pace_wrong_password_status(v: dict[str, Any]) -> None:
    chip = VectorChip(v, last_answer=b"\x63\xc2")
    with pytest.raises(CardStatusError) as info:
        open_pace(chip, v["mrz_information"].encode(), "mrz", _h(v["ef_card_access"]),
                  rng=_rng(v))
    assert info.value.sw == 0x63C2


def test_open_pace_bad_card_access() -> None:
    with pytest.raises(PaceError, match=r"EF\.CardAccess"):
        open_pace(VectorChip.__new__(VectorChip), b"1", "can", b"\x31\x05\x30")

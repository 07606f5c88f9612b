"""Card side of the simulated chip against the ICAO 9303-11 worked examples (Appendix D, G.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firmware_sim.card import SimulatedChip, crypto, pace
from firmware_sim.card.bac import BacKeys, mutual_authenticate
from firmware_sim.card.ec import BRAINPOOL_P256R1 as CURVE
from firmware_sim.card.oids import PACE_ECDH_GM_AES_128

EF_COM = bytes.fromhex("60145F0104303130365F36063034303030305C026175")
MAP_SK = "498FF49756F2DC1587840041839A85982BE7761D14715FB091EFA7BCE9058560"
EPH_SK = "107CF58696EF6155053340FD633392BA81909DF7B9706F226F32086C7AFF974A"


class Script:
    """A deterministic random source: hands out the given chunks in order."""

    def __init__(self, *chunks: str) -> None:
        self._chunks: Iterator[bytes] = iter(bytes.fromhex(c) for c in chunks)

    def __call__(self, n: int) -> bytes:
        chunk = next(self._chunks)
        assert len(chunk) == n
        return chunk


def h(s: str) -> bytes:
    return bytes.fromhex(s)


def test_bac_keys_and_mutual_authenticate(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    keys = BacKeys.from_mrz(v["mrz_information"])
    assert keys.k_enc == h(v["k_enc"]) and keys.k_mac == h(v["k_mac"])
    resp, session = mutual_authenticate(
        keys, h(v["rnd_icc"]), h(v["k_icc"]), h(v["mutual_authenticate_command_data"])
    )
    assert resp == h(v["chip_response"])
    assert session.ks_enc == h(v["ks_enc"]) and session.ks_mac == h(v["ks_mac"])
    assert session.ssc == int(v["ssc"], 16)


def test_bac_then_3des_secure_messaging_byte_for_byte(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    chip = SimulatedChip(
        {"COM": EF_COM},
        mrz_information=v["mrz_information"],
        can="000000",
        rng=Script(v["rnd_icc"], v["k_icc"]),
    )
    chip.power_on()
    assert chip.process(h("00A4040C07A0000002471001")) == h("9000")
    assert chip.process(h("0084000008")) == h(v["rnd_icc"]) + h("9000")
    ext = h("0082000028") + h(v["mutual_authenticate_command_data"]) + h("28")
    assert chip.process(ext) == h(v["chip_response"]) + h("9000")
    assert chip.access == "BAC"
    for case in icao_vectors["secure_messaging_3des"]["cases"]:
        assert chip.process(h(case["protected_command"])) == h(case["protected_response"]), case[
            "name"
        ]


def test_3des_sm_rejects_a_bad_mac_and_aborts(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    chip = SimulatedChip(
        {"COM": EF_COM},
        mrz_information=v["mrz_information"],
        can="000000",
        rng=Script(v["rnd_icc"], v["k_icc"]),
    )
    chip.power_on()
    chip.process(h("00A4040C07A0000002471001"))
    chip.process(h("0084000008"))
    chip.process(h("0082000028") + h(v["mutual_authenticate_command_data"]) + h("28"))
    bad = bytearray(h(icao_vectors["secure_messaging_3des"]["cases"][0]["protected_command"]))
    bad[-2] ^= 1
    assert chip.process(bytes(bad)) == h("6988")
    assert chip.access is None
    assert chip.process(h("00B09E0004")) == h("6982")


def test_pace_nonce_encryption(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    key = pace.k_pi(pace.PASSWORD_MRZ, v["mrz_information"], "")
    assert key == h(v["k_pi"])
    z = pace.encrypt_nonce(key, h(v["nonce_decrypted"]))
    assert h(v["general_authenticate_1_response"])[4:20] == z


def test_pace_appendix_g_private_keys_reproduce_public_points(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    pk_map = CURVE.multiply(int(MAP_SK, 16), CURVE.g)
    assert CURVE.encode(pk_map) == h(v["general_authenticate_2_response"])[4:69]
    pk_map_ifd = CURVE.decode(h(v["general_authenticate_2_command"])[9:74])
    shared = CURVE.multiply(int(MAP_SK, 16), pk_map_ifd)
    assert shared == (int(v["shared_point_h"]["x"], 16), int(v["shared_point_h"]["y"], 16))
    g2 = CURVE.add(CURVE.multiply(int(v["nonce_decrypted"], 16), CURVE.g), shared)
    assert g2 == (int(v["mapped_generator"]["x"], 16), int(v["mapped_generator"]["y"], 16))
    pk_eph = CURVE.multiply(int(EPH_SK, 16), g2)
    assert CURVE.encode(pk_eph) == h(v["general_authenticate_3_response"])[4:69]
    pk_eph_ifd = CURVE.decode(h(v["general_authenticate_3_command"])[9:74])
    x = CURVE.multiply(int(EPH_SK, 16), pk_eph_ifd)[0]
    assert x == int(v["shared_secret_x"], 16)
    assert crypto.kdf(h(v["shared_secret_x"]), 1, "AES") == h(v["ks_enc"])
    assert crypto.kdf(h(v["shared_secret_x"]), 2, "AES") == h(v["ks_mac"])


def test_pace_tokens(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    ks_mac = h(v["ks_mac"])
    pk_eph_ifd = h(v["general_authenticate_3_command"])[9:74]
    pk_eph_icc = h(v["general_authenticate_3_response"])[4:69]
    assert pace.auth_token(ks_mac, PACE_ECDH_GM_AES_128, pk_eph_ifd) == h("3ABB9674BCE93C08")
    assert (
        pace.auth_token(ks_mac, PACE_ECDH_GM_AES_128, pk_eph_icc)
        == h(v["general_authenticate_4_command"])[9:17]
    )


def _pace_chip(v: dict[str, Any]) -> SimulatedChip:
    chip = SimulatedChip(
        {"COM": EF_COM},
        mrz_information=v["mrz_information"],
        can="123456",
        rng=Script(v["nonce_decrypted"], MAP_SK, EPH_SK),
    )
    chip.power_on()
    return chip


def test_pace_full_exchange_byte_for_byte(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    chip = _pace_chip(v)
    assert chip.process(h(v["mse_set_at"])) == h("9000")
    for i in (1, 2, 3, 4):
        resp = chip.process(h(v[f"general_authenticate_{i}_command"]))
        assert resp == h(v[f"general_authenticate_{i}_response"]), i
    assert chip.access == "PACE"


@pytest.mark.parametrize("step", [1, 2, 3])
def test_pace_without_chaining_bit_is_refused(icao_vectors: dict[str, Any], step: int) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    chip = _pace_chip(v)
    chip.process(h(v["mse_set_at"]))
    for i in range(1, step):
        chip.process(h(v[f"general_authenticate_{i}_command"]))
    cmd = bytearray(h(v[f"general_authenticate_{step}_command"]))
    cmd[0] = 0x00
    assert chip.process(bytes(cmd)) == h("6883")


def test_pace_wrong_terminal_token_fails(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    chip = _pace_chip(v)
    chip.process(h(v["mse_set_at"]))
    for i in (1, 2, 3):
        chip.process(h(v[f"general_authenticate_{i}_command"]))
    cmd = bytearray(h(v["general_authenticate_4_command"]))
    cmd[10] ^= 0xFF
    assert chip.process(bytes(cmd)) == h("6300")
    assert chip.access is None

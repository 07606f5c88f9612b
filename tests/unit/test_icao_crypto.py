"""Padding, 3DES, retail MAC, AES-CMAC and KDF (ICAO 9303-11 §9.7, §9.8)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.icao import crypto
from edge_agent.icao.crypto import CipherKind, PaddingError


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


@given(st.binary(max_size=70), st.sampled_from([8, 16]))
def test_pad_roundtrip(data: bytes, block: int) -> None:
    padded = crypto.pad(data, block)
    assert len(padded) % block == 0 and len(padded) > len(data)
    assert crypto.unpad(padded, block) == data


@pytest.mark.parametrize(("data", "reason"), [
    ("", "no data to unpad"),
    ("0102", "length 2 is not a multiple of 8"),
    ("0000000000000000", "all zero"),
    ("0102030405060701", "last non-zero byte 01"),
    ("0180000000000000" + "0000000000000000", "padding longer than one block"),
])
def test_unpad_reasons(data: str, reason: str) -> None:
    with pytest.raises(PaddingError, match=reason):
        crypto.unpad(_h(data), 8)


def test_kdf_and_parity(icao_vectors: dict[str, Any]) -> None:
    bac = icao_vectors["bac"]
    seed = crypto.bac_key_seed(bac["mrz_information"])
    assert seed == _h(bac["k_seed"])
    assert crypto.kdf(seed, 1, CipherKind.DES3) == _h(bac["k_enc"])
    assert crypto.kdf(seed, 2, CipherKind.DES3) == _h(bac["k_mac"])
    for byte in crypto.kdf(seed, 1, CipherKind.DES3):
        assert byte.bit_count() % 2 == 1
    pace = icao_vectors["pace_ecdh_gm_brainpoolp256r1"]
    assert crypto.kdf(crypto.mrz_information_hash(pace["mrz_information"]), 3,
                      CipherKind.AES128) == _h(pace["k_pi"])
    k = _h(pace["shared_secret_x"])
    assert crypto.kdf(k, 1, CipherKind.AES128) == _h(pace["ks_enc"])
    assert crypto.kdf(k, 2, CipherKind.AES128) == _h(pace["ks_mac"])
    assert len(crypto.kdf(k, 1, CipherKind.AES192)) == 24
    assert len(crypto.kdf(k, 1, CipherKind.AES256)) == 32


def test_retail_mac_vector(icao_vectors: dict[str, Any]) -> None:
    bac = icao_vectors["bac"]
    e_ifd = _h(bac["e_ifd"])
    assert crypto.retail_mac(_h(bac["k_mac"]), crypto.pad(e_ifd, 8)) == _h(bac["m_ifd"])
    assert crypto.des3_cbc_encrypt(_h(bac["k_enc"]), _h(bac["s"])) == e_ifd
    assert crypto.des3_cbc_decrypt(_h(bac["k_enc"]), e_ifd) == _h(bac["s"])
    with pytest.raises(ValueError, match="multiple of 8"):
        crypto.retail_mac(_h(bac["k_mac"]), b"123")


def test_aes_cmac_rfc4493() -> None:
    key = _h("2b7e151628aed2a6abf7158809cf4f3c")
    msg = _h("6bc1bee22e409f96e93d7e117393172a")
    assert crypto.aes_cmac(key, msg, 16) == _h("070a16b46b4d4144f79bdd9dd04a287c")
    assert crypto.aes_cmac(key, b"") == _h("bb1d6929e9593728")


def test_aes_cbc_roundtrip() -> None:
    key, iv = bytes(range(16)), bytes(range(16, 32))
    data = crypto.pad(b"hello", 16)
    assert crypto.aes_cbc_decrypt(key, crypto.aes_cbc_encrypt(key, data, iv), iv) == data
    assert len(crypto.aes_ecb_block(key, bytes(16))) == 16

"""BAC (ICAO 9303-11 §4.3) against the Appendix D worked example, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.icao import bac
from edge_agent.icao.apdu import CardStatusError
from edge_agent.icao.bac import BacError, BacTerminal, MrzKey, derive_bac_keys, open_bac
from edge_agent.icao.crypto import CipherKind


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _rng_from(*chunks: bytes) -> Any:
    queue = list(chunks)

    def rng(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n
        return chunk

    return rng


def test_mrz_information_from_fields(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    info = bac.mrz_information("L898902C", v["date_of_birth"], v["date_of_expiry"])
    assert info == v["mrz_information"]
    assert bac.mrz_information(v["document_number"], v["date_of_birth"],
                               v["date_of_expiry"]) == v["mrz_information"]
    assert MrzKey.from_fields("L898902C", "690806", "940623").information == info


def test_mrz_information_rejects_bad_dates() -> None:
    with pytest.raises(BacError, match="date of birth must be 6 digits"):
        bac.mrz_information("L898902C", "69086", "940623")
    with pytest.raises(BacError, match="not allowed"):
        bac.mrz_information("L89-902C", "690806", "940623")
    with pytest.raises(BacError, match="document number is empty"):
        bac.mrz_information(" ", "690806", "940623")


def test_check_digits() -> None:
    assert bac.check_digit("L898902C<") == "3"
    assert bac.check_digit("690806") == "1"
    assert bac.check_digit("940623") == "6"


def test_keys(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    keys = derive_bac_keys(v["mrz_information"])
    assert keys.k_seed == _h(v["k_seed"])
    assert keys.k_enc == _h(v["k_enc"])
    assert keys.k_mac == _h(v["k_mac"])


def test_mutual_authenticate_and_session(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    keys = derive_bac_keys(v["mrz_information"])
    term = BacTerminal.start(keys, _h(v["rnd_icc"]), _rng_from(_h(v["rnd_ifd"]), _h(v["k_ifd"])))
    assert term.s == _h(v["s"])
    data = term.command_data()
    assert data[:32] == _h(v["e_ifd"])
    assert data[32:] == _h(v["m_ifd"])
    assert data == _h(v["mutual_authenticate_command_data"])
    assert term.command().to_bytes() == b"\x00\x82\x00\x00\x28" + data + b"\x28"
    sm = term.finish(_h(v["chip_response"]))
    assert sm.cipher is CipherKind.DES3
    assert sm.ks_enc == _h(v["ks_enc"])
    assert sm.ks_mac == _h(v["ks_mac"])
    assert sm.ssc_bytes() == _h(v["ssc"])
    assert bac._xor(_h(v["k_ifd"]), _h(v["k_icc"])) == _h(v["session_k_seed"])


def test_finish_checks_mac_first(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    keys = derive_bac_keys(v["mrz_information"])
    term = BacTerminal.start(keys, _h(v["rnd_icc"]), _rng_from(_h(v["rnd_ifd"]), _h(v["k_ifd"])))
    bad = bytearray(_h(v["chip_response"]))
    bad[39] ^= 1
    with pytest.raises(BacError, match="M_ICC does not verify"):
        term.finish(bytes(bad))
    with pytest.raises(BacError, match="expected 40"):
        term.finish(bytes(8))
    other = BacTerminal.start(keys, bytes(8), _rng_from(_h(v["rnd_ifd"]), _h(v["k_ifd"])))
    with pytest.raises(BacError, match=r"RND\.ICC"):
        other.finish(_h(v["chip_response"]))
    other = BacTerminal.start(keys, _h(v["rnd_icc"]), _rng_from(bytes(8), _h(v["k_ifd"])))
    with pytest.raises(BacError, match=r"RND\.IFD"):
        other.finish(_h(v["chip_response"]))


class _VectorChip:
    def __init__(self, v: dict[str, Any], answer: bytes | None = None) -> None:
        self.v = v
        self.sent: list[bytes] = []
        self.answer = answer

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        if apdu == bytes.fromhex("0084000008"):
            return _h(self.v["rnd_icc"]) + b"\x90\x00"
        if self.answer is not None:
            return self.answer
        assert apdu[5:45] == _h(self.v["mutual_authenticate_command_data"])
        return _h(self.v["chip_response"]) + b"\x90\x00"


def test_open_bac_driver(icao_vectors: dict[str, Any]) -> None:
    v = icao_vectors["bac"]
    chip = _VectorChip(v)
    sm = open_bac(chip, MrzKey.from_fields("L898902C", "690806", "940623"),
                  rng=_rng_from(_h(v["rnd_ifd"]), _h(v["k_ifd"])))
    assert sm.ks_enc == _h(v["ks_enc"]) and sm.ssc_bytes() == _h(v["ssc"])
    assert len(chip.sent) == 2


def test_open_bac_wrong_key_status() -> None:
    v = {"rnd_icc": "4608F91988702212"}
    chip = _VectorChip(v, answer=b"\x63\x00")
    with pytest.raises(CardStatusError) as info:
        open_bac(chip, "L898902C<369080619406236")
    assert info.value.sw == 0x6300
    chip = _VectorChip(v, answer=b"\x90")
    with pytest.raises(BacError, match="malformed response"):
        open_bac(chip, "L898902C<369080619406236")

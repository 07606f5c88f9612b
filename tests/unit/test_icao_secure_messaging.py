"""3DES secure messaging (ICAO 9303-11 §9.8, Appendix D.4) byte for byte, plus AES and errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.icao.apdu import CommandApdu
from edge_agent.icao.crypto import CipherKind
from edge_agent.icao.secure_messaging import SecureChannel, SecureMessaging, SecureMessagingError
from edge_agent.icao.tlv import encode_length


def _h(value: str) -> bytes:
    return bytes.fromhex(value)


def _bac_session(v: dict[str, Any]) -> SecureMessaging:
    return SecureMessaging(CipherKind.DES3, _h(v["ks_enc"]), _h(v["ks_mac"]),
                           int(v["ssc"], 16))


def test_three_cases_both_directions(icao_vectors: dict[str, Any]) -> None:
    sm = _bac_session(icao_vectors["bac"])
    for case in icao_vectors["secure_messaging_3des"]["cases"]:
        protected = sm.wrap(_h(case["unprotected_command"]))
        assert sm.ssc_bytes() == _h(case["ssc_command"]), case["name"]
        assert protected == _h(case["protected_command"]), case["name"]
        plain = sm.unwrap(_h(case["protected_response"]))
        assert sm.ssc_bytes() == _h(case["ssc_response"]), case["name"]
        assert plain == _h(case["response_data"]) + _h(case["status_word"]), case["name"]


def test_secure_channel_is_a_channel(icao_vectors: dict[str, Any]) -> None:
    cases = icao_vectors["secure_messaging_3des"]["cases"]
    answers = {_h(c["protected_command"]): _h(c["protected_response"]) for c in cases}

    class Card:
        def transmit(self, apdu: bytes) -> bytes:
            return answers[apdu]

    channel = SecureChannel(Card(), _bac_session(icao_vectors["bac"]))
    for case in cases:
        assert channel.transmit(_h(case["unprotected_command"])) == (
            _h(case["response_data"]) + _h(case["status_word"]))


def _at_response(icao_vectors: dict[str, Any], index: int) -> tuple[SecureMessaging, bytes]:
    sm = _bac_session(icao_vectors["bac"])
    cases = icao_vectors["secure_messaging_3des"]["cases"]
    for case in cases[:index]:
        sm.wrap(_h(case["unprotected_command"]))
        sm.unwrap(_h(case["protected_response"]))
    sm.wrap(_h(cases[index]["unprotected_command"]))
    return sm, _h(cases[index]["protected_response"])


def test_bad_mac_rejected_before_decryption(icao_vectors: dict[str, Any]) -> None:
    sm, resp = _at_response(icao_vectors, 2)
    bad = bytearray(resp)
    bad[5] ^= 0x01  # inside DO'87' cryptogram
    with pytest.raises(SecureMessagingError, match="MAC does not verify"):
        sm.unwrap(bytes(bad))


@pytest.mark.parametrize(("response", "reason"), [
    ("9000", "DO'99' and DO'8E' missing"),
    ("990290009000", "DO'8E' \\(MAC\\) missing"),
    ("8E08FA855A5D4C50A8ED9000", "DO'99' \\(processing status\\) missing"),
    ("990290008E04FA855A5D9000", "DO'8E' of 4 bytes"),
    ("99039000008E08FA855A5D4C50A8ED9000", "DO'99' of 3 bytes"),
    ("990290008E08FA855A5D4C50A8EE9000", "MAC does not verify"),
    ("990290008E08FA855A5D4C50A89000", "truncated"),
    ("01009000", "unexpected data object 1"),
    ("00", "no status word"),
])
def test_malformed_responses(icao_vectors: dict[str, Any], response: str, reason: str) -> None:
    sm, _ = _at_response(icao_vectors, 0)
    with pytest.raises(SecureMessagingError, match=reason):
        sm.unwrap(_h(response))


def test_bare_error_status_passes_through(icao_vectors: dict[str, Any]) -> None:
    sm, _ = _at_response(icao_vectors, 0)
    assert sm.unwrap(b"\x69\x88") == b"\x69\x88"


def _loopback(sm_reader: SecureMessaging, sm_card: SecureMessaging, apdu: bytes,
              answer_data: bytes) -> tuple[bytes, bytes]:
    """A minimal card side using the same primitives, to test wrap/unwrap symmetry."""
    protected = sm_reader.wrap(apdu)
    ssc = sm_card._step()
    # card builds its response
    ssc = sm_card._step()
    body = b""
    if answer_data:
        crypt = sm_card.encrypt(ssc, answer_data)
        body += b"\x87" + encode_length(len(crypt) + 1) + b"\x01" + crypt
    body += b"\x99\x02\x90\x00"
    body += b"\x8e\x08" + sm_card.mac(ssc, body)
    return protected, sm_reader.unwrap(body + b"\x90\x00")


@pytest.mark.parametrize("cipher", [CipherKind.DES3, CipherKind.AES128])
def test_roundtrip(cipher: CipherKind) -> None:
    key_e, key_m = bytes(range(16)), bytes(range(16, 32))
    reader = SecureMessaging(cipher, key_e, key_m, 0)
    card = SecureMessaging(cipher, key_e, key_m, 0)
    for size in (0, 1, 15, 16, 17, 200):
        data = bytes(range(size))
        protected, plain = _loopback(reader, card, bytes.fromhex("00B0000000"), data)
        assert plain == data + b"\x90\x00"
        assert protected[0] == 0x0C


def test_wrap_extended_and_odd_ins() -> None:
    sm = SecureMessaging(CipherKind.AES128, bytes(16), bytes(16), 0)
    cmd = CommandApdu(0x00, 0xB1, 0x00, 0x00, bytes.fromhex("5403008000"), le=0x1000)
    protected = sm.wrap(cmd)
    assert protected[:5] == b"\x0c\xb1\x00\x00\x00"
    parsed = CommandApdu.parse(protected)
    assert parsed.extended and parsed.le == 65536
    assert parsed.data[0] == 0x85  # odd INS → DO'85' without padding indicator
    assert parsed.data[1] == 16
    assert parsed.data[18:22] == b"\x97\x02\x10\x00"
    big = sm.wrap(CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(300)))
    assert CommandApdu.parse(big).extended


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_unwrap_random_bytes_only_domain_errors(raw: bytes) -> None:
    for cipher in (CipherKind.DES3, CipherKind.AES128):
        sm = SecureMessaging(cipher, bytes(16), bytes(16), 0)
        try:
            sm.unwrap(raw)
        except SecureMessagingError:
            pass

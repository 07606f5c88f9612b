"""APDU encoding (ISO 7816-4 §5.1) and status words (§5.6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.icao.apdu import (
    ApduError,
    CardStatusError,
    CommandApdu,
    ResponseApdu,
    sw_meaning,
    transmit_checked,
)


@pytest.mark.parametrize(("apdu", "encoded"), [
    (CommandApdu(0x00, 0xA4, 0x02, 0x0C, bytes.fromhex("011E")), "00A4020C02011E"),
    (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=4), "00B0000004"),
    (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256), "00B0000000"),
    (CommandApdu(0x00, 0x84, 0x00, 0x00), "00840000"),
    (CommandApdu(0x10, 0x86, 0x00, 0x00, bytes.fromhex("7C00"), le=256), "10860000027C0000"),
    (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=257), "00B00000000101"),
    (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=65536), "00B00000000000"),
    (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=4, extended=True), "00B00000000004"),
    (CommandApdu(0x00, 0xD6, 0x00, 0x00, bytes(256)), "00D60000000100" + "00" * 256),
    (CommandApdu(0x00, 0x86, 0x00, 0x00, b"\x01", le=65536, extended=True),
     "0086000000000101" + "0000"),
])
def test_encode_and_parse(apdu: CommandApdu, encoded: str) -> None:
    raw = bytes.fromhex(encoded)
    assert apdu.to_bytes() == raw
    parsed = CommandApdu.parse(raw)
    assert parsed.to_bytes() == raw
    assert (parsed.cla, parsed.ins, parsed.p1, parsed.p2, parsed.data, parsed.le) == (
        apdu.cla, apdu.ins, apdu.p1, apdu.p2, apdu.data, apdu.le)


@pytest.mark.parametrize(("raw", "reason"), [
    ("00B000", "shorter than its header"),
    ("00A4020C05011E", "short Lc 5 does not match 2"),
    ("00A4020C0000", "fit no APDU case"),
    ("00A4020C00000000", "extended Lc of zero"),
    ("00A4020C000005011E", "extended Lc 5 does not match 2 bytes"),
])
def test_parse_rejects(raw: str, reason: str) -> None:
    with pytest.raises(ApduError, match=reason):
        CommandApdu.parse(bytes.fromhex(raw))


def test_field_validation() -> None:
    with pytest.raises(ApduError, match="cla 256 is not a byte"):
        CommandApdu(0x100, 0, 0, 0)
    with pytest.raises(ApduError, match="Le 0 outside"):
        CommandApdu(0, 0, 0, 0, le=0)
    with pytest.raises(ApduError, match="exceeds 65535"):
        CommandApdu(0, 0, 0, 0, bytes(65536))


def test_response() -> None:
    r = ResponseApdu.from_bytes(bytes.fromhex("01029000"))
    assert (r.data, r.sw1, r.sw2, r.sw, r.ok) == (b"\x01\x02", 0x90, 0x00, 0x9000, True)
    assert r.to_bytes() == bytes.fromhex("01029000")
    with pytest.raises(ApduError, match="response of 1 bytes has no status word"):
        ResponseApdu.from_bytes(b"\x90")
    with pytest.raises(CardStatusError) as info:
        ResponseApdu.from_bytes(b"\x6a\x82").check("SELECT DG11")
    assert info.value.sw == 0x6A82
    assert info.value.meaning == "file or application not found"
    assert "SELECT DG11: card returned 6A82" in str(info.value)


@pytest.mark.parametrize(("sw", "meaning"), [
    (0x9000, "success"), (0x6282, "end of file"), (0x6700, "wrong length"),
    (0x6982, "security status not satisfied"), (0x6983, "blocked"),
    (0x6984, "reference data not usable"), (0x6985, "conditions of use"),
    (0x6986, "no current EF"), (0x6987, "secure messaging data objects missing"),
    (0x6988, "incorrect secure messaging"), (0x6A80, "incorrect parameters in the command data"),
    (0x6A82, "not found"), (0x6A86, "P1-P2"), (0x6B00, "wrong parameters"),
    (0x6C10, "exact length is 16"), (0x6D00, "instruction code not supported"),
    (0x6E00, "class not supported"), (0x6120, "32 more bytes"), (0x63C2, "2 tries left"),
    (0x6412, "execution error"), (0x1234, "unknown"),
])
def test_status_meanings(sw: int, meaning: str) -> None:
    assert meaning in sw_meaning(sw)


def test_transmit_checked() -> None:
    class Card:
        def transmit(self, apdu: bytes) -> bytes:
            return b"\xab\x90\x00" if apdu[1] == 0xB0 else b"\x69\x82"

    assert transmit_checked(Card(), CommandApdu(0, 0xB0, 0, 0, le=1)) == b"\xab"
    with pytest.raises(CardStatusError, match="6982"):
        transmit_checked(Card(), bytes.fromhex("00A4020C020101"))


@given(st.binary(max_size=300))
def test_random_bytes_only_domain_errors(raw: bytes) -> None:
    try:
        r = ResponseApdu.from_bytes(raw)
        assert r.to_bytes() == raw
    except ApduError:
        pass
    try:
        c = CommandApdu.parse(raw)
    except ApduError:
        return
    assert CommandApdu.parse(c.to_bytes()) == c

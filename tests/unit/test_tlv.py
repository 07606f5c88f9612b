"""BER-TLV (ISO 7816-4 §5.2, X.690 §8.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.icao.tlv import (
    TlvError,
    encode_length,
    encode_tlv,
    iter_tlvs,
    parse_single,
    read_tag,
)


def test_multi_byte_tags_and_lengths() -> None:
    element = parse_single(bytes.fromhex("5F1F03414243"))
    assert element.tag == 0x5F1F and element.value == b"ABC" and not element.constructed
    assert read_tag(bytes.fromhex("7F6100"), 0) == (0x7F61, 2)
    assert encode_length(0x7F) == b"\x7f"
    assert encode_length(0x80) == b"\x81\x80"
    assert encode_length(0x1234) == b"\x82\x12\x34"


def test_children_and_find() -> None:
    data = encode_tlv(0x61, encode_tlv(0x5F1F, b"MRZ") + encode_tlv(0x02, b"\x01"))
    outer = parse_single(data, expected_tag=0x61)
    assert [c.tag for c in outer.children()] == [0x5F1F, 0x02]
    assert outer.require(0x5F1F).value == b"MRZ"
    assert outer.find(0x04) is None
    with pytest.raises(TlvError, match="tag 4 missing"):
        outer.require(0x04)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated tag"),
        (b"\x5f", "truncated tag"),
        (b"\x5f\xff\xff\x01\x00", "tag longer than 3 bytes"),
        (b"\x00\x00", "invalid tag byte 00"),
        (b"\x04", "truncated length"),
        (b"\x04\x82\x01", "truncated length"),
        (b"\x04\x80", "indefinite length not allowed"),
        (b"\x04\x03ab", "value of tag 4 truncated: 3 bytes declared, 2 present"),
        (b"\x04\x01ab", "1 trailing bytes after tag 4"),
    ],
)
def test_malformed(data: bytes, reason: str) -> None:
    with pytest.raises(TlvError) as err:
        parse_single(data)
    assert err.value.reason == reason


def test_primitive_has_no_children() -> None:
    with pytest.raises(TlvError, match="primitive"):
        parse_single(b"\x04\x00").children()


@given(st.lists(st.tuples(st.sampled_from([0x04, 0x30, 0x5F1F, 0x7F61]), st.binary(max_size=300)),
                max_size=5))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    data = b"".join(encode_tlv(tag, value) for tag, value in items)
    assert [(e.tag, e.value) for e in iter_tlvs(data)] == items


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_tlv_error(data: bytes) -> None:
    try:
        for element in iter_tlvs(data):
            if element.constructed:
                element.children()
    except TlvError:
        pass

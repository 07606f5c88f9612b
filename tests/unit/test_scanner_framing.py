"""Serial framing: terminators, split reads, prefix/suffix, inter-character timeout, garbage."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.code_scanner import ScannerConfigError
from drivers.scanners.framing import Discard, Frame, Framer, Framing, parse_terminator

VIET = "079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A|20082021".encode()


def frames(events: list[Frame | Discard]) -> list[bytes]:
    return [e.payload for e in events if isinstance(e, Frame)]


def discards(events: list[Frame | Discard]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Discard)]


@pytest.mark.parametrize(("name", "value"), [
    ("cr", b"\r"), ("LF", b"\n"), ("crlf", b"\r\n"), ("tab", b"\t"), ("none", b""),
    ("0x03", b"\x03"), ("hex:0d0a", b"\r\n"), ("1d", b"\x1d"),
])
def test_parse_terminator(name: str, value: bytes) -> None:
    assert parse_terminator(name) == value


@pytest.mark.parametrize("bad", ["crcr", "0xZZ", "hex:", "enter"])
def test_parse_terminator_rejects(bad: str) -> None:
    with pytest.raises(ScannerConfigError):
        parse_terminator(bad)


def test_frame_split_over_reads_and_crlf_split_between_chunks() -> None:
    framer = Framer(Framing(terminator=b"\r\n"))
    assert framer.feed(VIET[:10], 0.0) == []
    assert framer.feed(VIET[10:] + b"\r", 0.01) == []
    events = framer.feed(b"\nABC\r\n", 0.02)
    assert frames(events) == [VIET, b"ABC"]
    assert all(isinstance(e, Frame) and e.ended_by == "terminator" for e in events)


def test_several_frames_in_one_read_and_blank_lines_ignored() -> None:
    framer = Framer(Framing(terminator=b"\n"))
    assert frames(framer.feed(b"a\n\nb\nc", 0.0)) == [b"a", b"b"]
    assert framer.pending == 1


def test_prefix_suffix_stripped_noise_before_prefix_discarded() -> None:
    framer = Framer(Framing(terminator=b"\r", prefix=b"\x02", suffix=b"\x03"))
    events = framer.feed(b"\xff\x00junk\x02" + VIET + b"\x03\r", 0.0)
    assert frames(events) == [VIET]
    assert discards(events) == ["6 byte(s) of noise before the prefix"]


def test_missing_prefix_or_suffix_is_discarded_with_reason() -> None:
    framer = Framer(Framing(terminator=b"\r", prefix=b"]Q", suffix=b"#"))
    events = framer.feed(b"no prefix#\r]Qno suffix\r]Q#\r", 0.0)
    assert frames(events) == []
    assert discards(events) == ["frame without the configured prefix",
                                "frame without the configured suffix",
                                "empty frame between prefix and suffix"]


def test_no_terminator_frames_end_by_inter_character_timeout() -> None:
    framer = Framer(Framing(terminator=b"", gap=0.05))
    assert framer.feed(VIET[:20], 0.0) == []
    assert framer.feed(VIET[20:], 0.03) == []          # gap not reached: same frame
    assert framer.poll(0.07) == []                     # 0.04 s since the last byte
    events = framer.poll(0.09)
    assert frames(events) == [VIET]
    assert isinstance(events[0], Frame) and events[0].ended_by == "timeout"
    assert framer.flush_due() is None
    # Bytes after a pause start a new frame (the old one is flushed first).
    framer.feed(b"one", 1.0)
    assert frames(framer.feed(b"two", 2.0)) == [b"one"]


def test_frame_missing_its_terminator_is_ended_by_timeout() -> None:
    framer = Framer(Framing(terminator=b"\r", gap=0.1))
    framer.feed(b"lost-terminator", 0.0)
    assert frames(framer.poll(0.2)) == [b"lost-terminator"]


def test_over_long_garbage_discarded_and_resynchronised_at_next_terminator() -> None:
    framer = Framer(Framing(terminator=b"\r", max_length=16))
    events = framer.feed(b"x" * 20, 0.0)
    assert frames(events) == []
    assert discards(events) == ["over-long frame: more than 16 bytes without a terminator"]
    events = framer.feed(b"yyyy\rgood\r", 0.01)
    assert frames(events) == [b"good"]
    assert discards(events) == ["rest of an over-long frame"]


def test_over_long_frame_arriving_whole_is_discarded() -> None:
    framer = Framer(Framing(terminator=b"\r", max_length=16))
    events = framer.feed(b"g" * 30 + b"\rok\r", 0.0)
    assert frames(events) == [b"ok"]
    assert discards(events) == ["over-long frame: more than 16 bytes without a terminator"]


def test_over_long_without_terminator_resynchronises_after_gap() -> None:
    framer = Framer(Framing(terminator=b"", gap=0.05, max_length=8))
    assert discards(framer.feed(b"z" * 9, 0.0)) == [
        "over-long frame: more than 8 bytes without a terminator"]
    assert discards(framer.feed(b"zz", 0.01)) == []
    assert discards(framer.poll(0.1)) == ["rest of an over-long frame"]
    framer.feed(b"ok", 1.0)
    assert frames(framer.poll(1.1)) == [b"ok"]


def test_reset_drops_half_frame_with_reason() -> None:
    framer = Framer(Framing())
    framer.feed(b"half", 0.0)
    assert discards(framer.reset("device disconnected mid-frame")) == [
        "device disconnected mid-frame"]
    assert framer.pending == 0


def test_framing_validation() -> None:
    with pytest.raises(ScannerConfigError):
        Framing(gap=0)
    with pytest.raises(ScannerConfigError):
        Framing(max_length=0)


payload_st = st.binary(min_size=1, max_size=80).filter(lambda b: b"\r" not in b)


@given(payloads=st.lists(payload_st, min_size=1, max_size=6),
       cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12))
def test_any_split_of_the_stream_gives_the_same_frames(payloads: list[bytes],
                                                       cuts: list[int]) -> None:
    stream = b"".join(p + b"\r" for p in payloads)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    framer = Framer(Framing(terminator=b"\r"))
    out: list[bytes] = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        out += frames(framer.feed(stream[a:b], i * 0.001))
    assert out == payloads

"""SELECT / READ BINARY chunking, odd INS, resume (ISO 7816-4 §11.2; ICAO 9303-11 §4.2)."""

from __future__ import annotations

import pytest

from edge_agent.icao import files
from edge_agent.icao.apdu import CardStatusError, CommandApdu
from edge_agent.icao.tlv import encode_tlv


class FileCard:
    """A plain card holding EFs; counts APDUs; can drop the link after N APDUs."""

    def __init__(self, efs: dict[int, bytes], *, eof_sw: int = 0x6282,
                 lose_after: int | None = None) -> None:
        self.efs = efs
        self.current: bytes | None = None
        self.log: list[bytes] = []
        self.eof_sw = eof_sw
        self.lose_after = lose_after

    def transmit(self, apdu: bytes) -> bytes:
        if self.lose_after is not None and len(self.log) >= self.lose_after:
            raise ConnectionError("tag lost")
        self.log.append(apdu)
        cmd = CommandApdu.parse(apdu)
        if cmd.ins == 0xA4:
            if cmd.p1 == 0x04:
                return b"\x90\x00" if cmd.data == files.EMRTD_AID else b"\x6a\x82"
            fid = int.from_bytes(cmd.data, "big")
            if fid not in self.efs:
                return b"\x6a\x82"
            self.current = self.efs[fid]
            return b"\x90\x00"
        if cmd.ins in (0xB0, 0xB1) and self.current is not None:
            assert cmd.le is not None
            if cmd.ins == 0xB0:
                offset = (cmd.p1 << 8) | cmd.p2
                chunk = self.current[offset:offset + cmd.le]
            else:
                assert cmd.data[0] == 0x54
                offset = int.from_bytes(cmd.data[2:], "big")
                chunk = self.current[offset:offset + cmd.le - 4]
                chunk = encode_tlv(0x53, chunk)
            if offset >= len(self.current):
                return b"\x6b\x00"
            short = offset + (cmd.le if cmd.ins == 0xB0 else cmd.le - 4) > len(self.current)
            return chunk + (self.eof_sw.to_bytes(2, "big") if short else b"\x90\x00")
        return b"\x6d\x00"


def _file(size: int) -> bytes:
    body = bytes(i % 251 for i in range(size))
    return encode_tlv(0x75, body)


def test_commands() -> None:
    assert files.read_binary_command(0, 4).to_bytes() == bytes.fromhex("00B0000004")
    assert files.read_binary_command(0x7FFF, 0xDF).to_bytes() == bytes.fromhex("00B07FFFDF")
    assert files.read_binary_command(0x8000, 0xDB).to_bytes() == bytes.fromhex(
        "00B1000004540280 00DF".replace(" ", ""))


def test_select_commands() -> None:
    card = FileCard({0x011C: encode_tlv(0x31, b"")})
    files.select_application(card)
    assert card.log[-1] == bytes.fromhex("00A4040C07A0000002471001")
    files.read_card_access(card)
    # by short EF identifier first; this card refuses that form (6D00): SELECT by FID
    assert card.log[1] == bytes.fromhex("00B09C00DF")
    assert card.log[2] == bytes.fromhex("00A4020C02011C")
    assert not any(apdu.startswith(bytes.fromhex("00A400")) for apdu in card.log)  # no SELECT MF
    with pytest.raises(CardStatusError) as info:
        files.select_file(card, 0x010B)
    assert info.value.sw == 0x6A82


@pytest.mark.parametrize(("size", "chunk"), [(10, 0xDF), (0xDF - 2, 0xDF), (3000, 0xDF),
                                             (3000, 0x20), (70000, 0xDF), (300, 1)])
def test_read_whole_file_fewest_apdus(size: int, chunk: int) -> None:
    content = _file(size)
    card = FileCard({0x0102: content})
    stats = files.ReadStats()
    assert files.read_file(card, 0x0102, max_chunk=chunk, stats=stats) == content
    reads = stats.apdus - 1
    b1 = chunk - files.ODD_INS_OVERHEAD
    short_part = min(len(content), 0x8000)
    expected = -(-short_part // chunk)
    if len(content) > 0x8000:
        expected = -(-0x8000 // chunk) + -(-(len(content) - (-(-0x8000 // chunk) * chunk)) // b1)
    assert reads <= expected + 1
    assert stats.bytes_read == len(content)
    if size > 0x8000:
        assert any(apdu[1] == 0xB1 for apdu in card.log)


def test_resume_after_tag_loss() -> None:
    content = _file(3000)
    card = FileCard({0x0102: content}, lose_after=5)
    stats = files.ReadStats()
    with pytest.raises(ConnectionError):
        files.read_file(card, 0x0102, stats=stats)
    already = bytes(stats.partial)
    assert 0 < len(already) < len(content) and content.startswith(already)
    fresh = FileCard({0x0102: content})
    stats2 = files.ReadStats()
    assert files.read_file(fresh, 0x0102, prefix=already, stats=stats2) == content
    first_read = CommandApdu.parse(fresh.log[1])
    assert (first_read.p1 << 8) | first_read.p2 == len(already)
    assert stats2.bytes_read == len(content) - len(already)


def test_file_shorter_than_header() -> None:
    card = FileCard({0x0101: encode_tlv(0x61, bytes(50))[:30]})
    with pytest.raises(files.FileReadError, match="ends at 30 bytes, its header says 52"):
        files.read_file(card, 0x0101)


def test_not_tlv() -> None:
    card = FileCard({0x0101: b"\x00\x00\x00\x00"})
    with pytest.raises(files.FileReadError, match="does not start with a TLV header"):
        files.read_file(card, 0x0101)


def test_start_offset_must_match_prefix() -> None:
    with pytest.raises(ValueError, match="start_offset"):
        files.read_file(FileCard({}), 0x0101, start_offset=3)


def test_exact_apdu_counts() -> None:
    small = FileCard({0x0101: _file(90)})
    stats = files.ReadStats()
    files.read_file(small, 0x0101, stats=stats)
    assert stats.apdus == 2  # SELECT + one READ BINARY
    big = FileCard({0x0102: _file(3000)})  # 3004 bytes with the header
    stats = files.ReadStats()
    files.read_file(big, 0x0102, stats=stats)
    assert stats.apdus == 1 + -(-3004 // 0xDF)

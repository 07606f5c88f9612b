"""Selecting and reading elementary files (ISO/IEC 7816-4 §11.2.2 SELECT, §11.2.3 READ BINARY;
ICAO 9303-10 §3.6 file identifiers, ICAO 9303-11 §4.2 reading the LDS).

- SELECT the eMRTD application ``00 A4 04 0C 07 A0000002471001`` and EFs by FID
  ``00 A4 02 0C 02 <FID>``.
- EF.CardAccess lives in the MF (ICAO 9303-10 §3.11.3) and is read before any application is
  selected: by its short EF identifier 1C in the first READ BINARY (``00 B0 9C 00``), and when a
  chip refuses that form, selected directly by FID ``00 A4 02 0C 02 01 1C``. SELECT MF is never
  sent: the MF is the current DF after power-on, and some chips answer it with 6D00 (docs/cccd.md
  §2).
- READ BINARY ``00 B0 <offset 15 bits> <Le>`` for offsets up to 0x7FFF, odd INS ``00 B1 00 00``
  with the offset in DO'54' (and the data returned in DO'53') above.
- :func:`read_file` learns the total length from the first chunk's TLV header and then reads the
  rest in as few APDUs as ``max_chunk`` allows (default 0xDF bytes of plaintext per APDU, which
  with secure-messaging overhead fits readers limited to about 255-byte responses). It resumes
  from bytes already read (``prefix``) after a tag loss; :class:`ReadStats` counts APDUs and
  bytes and keeps the partial content so the caller can resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.icao.apdu import CommandApdu, ResponseApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.status import (
    READ_BINARY_CHAIN,
    CardStatusError,
    NotFound,
    WrongLe,
    WrongLength,
    WrongParameters,
)
from edge_agent.icao.tlv import TlvError, encode_tlv, read_length, read_tag

EMRTD_AID = bytes.fromhex("A0000002471001")
FID_CARD_ACCESS = 0x011C
FID_COM = 0x011E
FID_SOD = 0x011D
SFI_CARD_ACCESS = 0x1C
FID_DG = {n: 0x0100 + n for n in range(1, 17)}
"""DG1 … DG16 file identifiers 0101 … 0110 (ICAO 9303-10 §3.6.2)."""
SHORT_OFFSET_MAX = 0x7FFF
DEFAULT_MAX_CHUNK = 0xDF
SW_END_OF_FILE = 0x6282
SW_WRONG_OFFSET = 0x6B00
ODD_INS_OVERHEAD = 4  # DO'53' tag and up to three length bytes inside the response data


class FileReadError(IcaoError):
    """A file could not be read consistently (e.g. shorter than its TLV header says)."""


@dataclass(slots=True)
class ReadStats:
    """APDU and byte counters plus the bytes read so far of the current file (for resume)."""

    apdus: int = 0
    bytes_read: int = 0
    partial: bytearray = field(default_factory=bytearray)


def _exchange(channel: CardChannel, command: CommandApdu, stats: ReadStats | None) -> ResponseApdu:
    if stats is not None:
        stats.apdus += 1
    return ResponseApdu.from_bytes(channel.transmit(command.to_bytes()))


def select_application(channel: CardChannel, aid: bytes = EMRTD_AID,
                       stats: ReadStats | None = None) -> None:
    """SELECT by DF name, no response data (``00 A4 04 0C``; ICAO 9303-10 §3.6.1).

    Sent in plain before BAC, under secure messaging after PACE (9303-11 §4.2).
    """
    _exchange(channel, CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid), stats).check(
        "SELECT application")


def select_file(channel: CardChannel, fid: int, stats: ReadStats | None = None) -> None:
    """SELECT EF by file identifier under the current DF, no response data (``00 A4 02 0C``)."""
    if not 0 <= fid <= 0xFFFF:
        raise ValueError(f"file identifier {fid:X} is not two bytes")
    _exchange(channel, CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")), stats).check(
        f"SELECT {fid:04X}")


def read_binary_command(offset: int, length: int, sfi: int | None = None) -> CommandApdu:
    """READ BINARY of ``length`` bytes at ``offset`` (B0 up to 0x7FFF, B1 with DO'54' above).

    With ``sfi`` the file is named by its short EF identifier (ISO 7816-4 §11.2.3: P1 bit 8 set,
    SFI in bits 1-5, offset up to 255 in P2), which selects it without a separate SELECT.
    """
    if not 1 <= length <= 65536:
        raise ValueError(f"READ BINARY length {length} out of range")
    if offset < 0:
        raise ValueError("negative offset")
    if sfi is not None:
        if not 1 <= sfi <= 30 or offset > 0xFF:
            raise ValueError("short EF form needs SFI 1-30 and an offset up to 255")
        return CommandApdu(0x00, 0xB0, 0x80 | sfi, offset, le=length)
    if offset <= SHORT_OFFSET_MAX:
        return CommandApdu(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)
    off = offset.to_bytes((offset.bit_length() + 7) // 8, "big")
    return CommandApdu(0x00, 0xB1, 0x00, 0x00, encode_tlv(0x54, off),
                       le=min(length + ODD_INS_OVERHEAD, 65536))


def read_binary(channel: CardChannel, offset: int, length: int,
                stats: ReadStats | None = None, sfi: int | None = None) -> tuple[bytes, int]:
    """One READ BINARY; returns ``(data, sw)`` with sw 9000 or 6282 (end of file reached).

    Other status words raise the typed :class:`CardStatusError` of :mod:`.status`. For B1, the
    DO'53' wrapper is removed.
    """
    response = _exchange(channel, read_binary_command(offset, length, sfi), stats)
    data = response.check(f"READ BINARY at {offset}", READ_BINARY_CHAIN)
    if offset > SHORT_OFFSET_MAX and data:
        try:
            tag, pos = read_tag(data, 0)
            size, pos = read_length(data, pos)
        except TlvError as exc:
            raise FileReadError(f"READ BINARY B1 answer malformed: {exc}") from exc
        if tag != 0x53 or pos + size != len(data):
            raise FileReadError("READ BINARY B1 answer is not one DO'53'")
        data = data[pos:]
    if len(data) > length:
        raise FileReadError(f"READ BINARY returned {len(data)} bytes, asked for {length}")
    if stats is not None:
        stats.bytes_read += len(data)
    return data, response.sw


def tlv_total_length(header: bytes) -> int | None:
    """Total element length from the first bytes of a file, or None if more bytes are needed."""
    try:
        _, pos = read_tag(header, 0)
        length, pos = read_length(header, pos)
    except TlvError as exc:
        if "truncated" in exc.reason:
            return None
        raise FileReadError(f"file does not start with a TLV header: {exc}") from exc
    return pos + length


def read_file(channel: CardChannel, fid: int, max_chunk: int = DEFAULT_MAX_CHUNK,
              start_offset: int | None = None, prefix: bytes = b"",
              stats: ReadStats | None = None, *, select: bool = True,
              sfi: int | None = None) -> bytes:
    """Select EF ``fid`` and read the whole TLV-structured file.

    ``prefix`` is what was already read from offset 0 (after a tag loss, from
    ``stats.partial``); reading continues at ``start_offset`` (default ``len(prefix)``). The
    first READ BINARY asks for up to ``max_chunk`` bytes; once the header is known, the rest is
    read in ``ceil(remaining / max_chunk)`` APDUs. A chip answering 6282 (end of file) ends the
    read. With ``sfi`` (and an offset up to 255) the first READ BINARY names the file by its
    short EF identifier and no SELECT is sent. Returns the whole file (prefix included).
    """
    if not 1 <= max_chunk <= 65536:
        raise ValueError("max_chunk must be within 1..65536")
    offset = len(prefix) if start_offset is None else start_offset
    if offset != len(prefix):
        raise ValueError("start_offset must equal the number of bytes already read (prefix)")
    if stats is None:
        stats = ReadStats()
    stats.partial = bytearray(prefix)
    buffer = stats.partial
    short_ef = sfi if sfi is not None and offset <= 0xFF else None
    if select and short_ef is None:
        select_file(channel, fid, stats)
    total = tlv_total_length(bytes(buffer[:8])) if buffer else None
    while total is None or len(buffer) < total:
        pos = len(buffer)
        want = max_chunk if total is None else min(max_chunk, total - pos)
        if pos > SHORT_OFFSET_MAX:
            want = max(1, min(want, max_chunk - ODD_INS_OVERHEAD))
        data, sw = _read_with_retry(channel, pos, want, stats, short_ef)
        short_ef = None  # the file is now the current EF
        buffer += data
        if total is None:
            total = tlv_total_length(bytes(buffer[:8]))
            if total is None and (sw == SW_END_OF_FILE or not data):
                raise FileReadError(f"file {fid:04X} ends inside its TLV header")
        if total is not None and len(buffer) < total and (sw == SW_END_OF_FILE or not data):
            raise FileReadError(
                f"file {fid:04X} ends at {len(buffer)} bytes, its header says {total}")
    if total is not None and len(buffer) > total:
        del buffer[total:]
    return bytes(buffer)


def _read_with_retry(channel: CardChannel, offset: int, want: int,
                     stats: ReadStats, sfi: int | None = None) -> tuple[bytes, int]:
    """READ BINARY, retrying once with the exact length on 6Cxx and with 4 bytes on 6700."""
    try:
        return read_binary(channel, offset, want, stats, sfi)
    except WrongLe as exc:
        if exc.exact < want:
            return read_binary(channel, offset, exc.exact, stats, sfi)
        raise
    except (WrongLength, WrongParameters) as exc:
        if (isinstance(exc, WrongLength) or exc.sw == SW_WRONG_OFFSET) and want > 4 \
                and offset == 0:
            return read_binary(channel, offset, 4, stats, sfi)
        raise


def read_card_access(channel: CardChannel, max_chunk: int = DEFAULT_MAX_CHUNK,
                     stats: ReadStats | None = None) -> bytes:
    """EF.CardAccess at the MF (ICAO 9303-10 §3.11.3), before any application is selected.

    First by its short EF identifier in READ BINARY; when the chip refuses that form with
    anything but "not found", selected by FID ``011C`` and read. SELECT MF is never sent (some
    chips answer it 6D00). Raises :class:`~edge_agent.icao.status.NotFound` when the chip has
    no EF.CardAccess (a BAC-only chip) and other typed errors for other refusals.
    """
    try:
        return read_file(channel, FID_CARD_ACCESS, max_chunk, stats=stats, sfi=SFI_CARD_ACCESS)
    except NotFound:
        raise
    except CardStatusError:
        return read_file(channel, FID_CARD_ACCESS, max_chunk, stats=stats)

"""LDS file parsers (ICAO 9303-10 §4.6 EF.COM, §4.7 data groups; ICAO 9303-11 §9.2 DG14).

- EF.COM ``60``: ``5F01`` LDS version, ``5F36`` Unicode version, ``5C`` tag list → DG numbers.
- DG1 ``61``: ``5F1F`` MRZ text; the MRZ string and its lines (3 × 30 for TD1). The MRZ's
  meaning is parsed elsewhere (``edge_agent.cccd.mrz``).
- DG2 ``75``: ``7F61`` biometric information group → ``7F60`` templates → ``5F2E`` (or ``7F2E``)
  biometric data block in ISO/IEC 19794-5 (``FAC\\0``); returns the JPEG or JPEG 2000 image.
- DG14 ``6E``: SecurityInfos (Chip Authentication, Active Authentication info).
- DG15 ``6F``: the Active Authentication SubjectPublicKeyInfo (RSA or EC).

Every parser raises :class:`LdsError` with a reason on malformed input, never anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from edge_agent.icao import der
from edge_agent.icao.ec import EcError
from edge_agent.icao.errors import LdsError
from edge_agent.icao.public_keys import PublicKey, parse_spki_element
from edge_agent.icao.security_infos import (
    ActiveAuthenticationInfo,
    ChipAuthenticationInfo,
    ChipAuthenticationPublicKeyInfo,
    SecurityInfo,
    parse_card_access,
    parse_security_infos,
)
from edge_agent.icao.tlv import Tlv, TlvError, iter_tlvs

__all__ = [
    "DG_TAGS",
    "Dg1",
    "Dg2",
    "Dg14",
    "Dg15",
    "EfCom",
    "FaceImage",
    "LdsError",
    "parse_card_access",
    "parse_dg1",
    "parse_dg2",
    "parse_dg14",
    "parse_dg15",
    "parse_ef_com",
]

DG_TAGS: dict[int, int] = {
    0x61: 1, 0x75: 2, 0x63: 3, 0x76: 4, 0x65: 5, 0x66: 6, 0x67: 7, 0x68: 8, 0x69: 9,
    0x6A: 10, 0x6B: 11, 0x6C: 12, 0x6D: 13, 0x6E: 14, 0x6F: 15, 0x70: 16,
}
"""Data-group template tags (ICAO 9303-10 §4.6.1 Table 34)."""

T = TypeVar("T")


def _guard(what: str, parse: Callable[[], T]) -> T:
    """Run ``parse`` turning TLV and EC errors into :class:`LdsError`."""
    try:
        return parse()
    except LdsError:
        raise
    except (TlvError, EcError) as exc:
        raise LdsError(f"{what}: {exc}") from exc


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LdsError(f"{what} is not ASCII") from exc


# --- EF.COM ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EfCom:
    """EF.COM: versions and the data groups present."""

    lds_version: str
    unicode_version: str
    tags: bytes
    data_groups: tuple[int, ...]


def parse_ef_com(data: bytes) -> EfCom:
    """Parse EF.COM (tag 60)."""

    def run() -> EfCom:
        root = der.single(data, 0x60, "EF.COM")
        lds = unicode = ""
        tags: bytes | None = None
        for child in der.children(root, "EF.COM"):
            if child.tag == 0x5F01:
                lds = _text(child.value, "LDS version")
            elif child.tag == 0x5F36:
                unicode = _text(child.value, "Unicode version")
            elif child.tag == 0x5C:
                tags = child.value
        if tags is None:
            raise LdsError("EF.COM lacks the tag list 5C")
        groups = []
        for tag in tags:
            if tag not in DG_TAGS:
                raise LdsError(f"EF.COM lists unknown data-group tag {tag:02X}")
            groups.append(DG_TAGS[tag])
        return EfCom(lds, unicode, tags, tuple(groups))

    return _guard("EF.COM", run)


# --- DG1 ------------------------------------------------------------------------------------

_MRZ_LAYOUTS = {90: 30, 72: 36, 88: 44}  # TD1, TD2, TD3 (ICAO 9303-5/-6/-4)


@dataclass(frozen=True, slots=True)
class Dg1:
    """DG1: the MRZ as stored and split into lines."""

    mrz: str
    lines: tuple[str, ...]

    @property
    def is_td1(self) -> bool:
        """Three lines of 30 characters (ID cards such as the CCCD)."""
        return len(self.lines) == 3


def parse_dg1(data: bytes) -> Dg1:
    """Parse DG1 (tag 61 → 5F1F)."""

    def run() -> Dg1:
        root = der.single(data, 0x61, "DG1")
        mrz_tlv = root.find(0x5F1F)
        if mrz_tlv is None:
            raise LdsError("DG1 lacks the MRZ data element 5F1F")
        mrz = _text(mrz_tlv.value, "MRZ")
        width = _MRZ_LAYOUTS.get(len(mrz))
        if width is None:
            raise LdsError(f"MRZ of {len(mrz)} characters matches no TD1/TD2/TD3 layout")
        if any(not (c.isupper() or c.isdigit() or c == "<") for c in mrz):
            raise LdsError("MRZ holds characters outside A-Z, 0-9 and <")
        lines = tuple(mrz[i:i + width] for i in range(0, len(mrz), width))
        return Dg1(mrz, lines)

    return _guard("DG1", run)


# --- DG2 ------------------------------------------------------------------------------------

JPEG_MAGIC = b"\xff\xd8\xff"
J2K_MAGIC = b"\xff\x4f\xff\x51"
JP2_MAGIC = b"\x00\x00\x00\x0c\x6a\x50\x20\x20"
_MAGICS = ((JPEG_MAGIC, "image/jpeg"), (JP2_MAGIC, "image/jp2"), (J2K_MAGIC, "image/j2k"))


@dataclass(frozen=True, slots=True)
class FaceImage:
    """One facial image from DG2."""

    image: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Dg2:
    """DG2: the facial images (usually one)."""

    images: tuple[FaceImage, ...]

    @property
    def image(self) -> FaceImage:
        """The first image."""
        return self.images[0]


def _mime_of(blob: bytes, start: int = 0) -> str | None:
    for magic, mime in _MAGICS:
        if blob.startswith(magic, start):
            return mime
    return None


def parse_facial_record(block: bytes) -> FaceImage:
    """ISO/IEC 19794-5 facial record data (``FAC\\0`` header) → the first image.

    2005 layout (version ``010``): 14-byte general header, 20-byte facial information block,
    8 bytes per feature point, 12-byte image information, then the image. Other versions are
    handled by locating the image's magic number after the header.
    """
    if block.startswith(b"FAC\x00"):
        if len(block) < 14:
            raise LdsError("ISO 19794-5 general header truncated")
        record_length = int.from_bytes(block[8:12], "big")
        end = min(len(block), record_length) if record_length >= 14 else len(block)
        width = height = None
        if block[4:8] == b"010\x00" and len(block) >= 46:
            points = int.from_bytes(block[18:20], "big")
            info = 14 + 20 + 8 * points
            start = info + 12
            if start <= len(block) and _mime_of(block, start) is not None:
                width = int.from_bytes(block[info + 2:info + 4], "big")
                height = int.from_bytes(block[info + 4:info + 6], "big")
                facial_block_len = int.from_bytes(block[14:18], "big")
                block_end = 14 + facial_block_len
                stop = block_end if start < block_end <= end else end
                mime = _mime_of(block, start)
                assert mime is not None
                return FaceImage(block[start:stop], mime, width, height)
        return _scan_for_image(block, 14, end)
    mime = _mime_of(block)
    if mime is not None:  # a bare image without the ISO 19794-5 header
        return FaceImage(bytes(block), mime)
    raise LdsError("biometric data block is neither ISO 19794-5 (FAC) nor a known image")


def _scan_for_image(block: bytes, start: int, end: int) -> FaceImage:
    best: tuple[int, str] | None = None
    for magic, mime in _MAGICS:
        index = block.find(magic, start, end)
        if index >= 0 and (best is None or index < best[0]):
            best = (index, mime)
    if best is None:
        raise LdsError("no JPEG or JPEG 2000 image found in the facial record")
    return FaceImage(block[best[0]:end], best[1])


def parse_dg2(data: bytes) -> Dg2:
    """Parse DG2 (75 → 7F61 → 7F60 → 5F2E / 7F2E)."""

    def run() -> Dg2:
        root = der.single(data, 0x75, "DG2")
        group = root.find(0x7F61)
        if group is None:
            raise LdsError("DG2 lacks the biometric information group template 7F61")
        images = []
        for template in der.children(group, "DG2 7F61"):
            if template.tag != 0x7F60:
                continue
            block: Tlv | None = None
            for element in der.children(template, "DG2 7F60"):
                if element.tag in (0x5F2E, 0x7F2E):
                    block = element
                    break
            if block is None:
                raise LdsError("biometric information template lacks the data block 5F2E/7F2E")
            images.append(parse_facial_record(block.value))
        if not images:
            raise LdsError("DG2 holds no biometric information template 7F60")
        return Dg2(tuple(images))

    return _guard("DG2", run)


# --- DG14 -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dg14:
    """DG14: SecurityInfos for Chip Authentication (and ECDSA Active Authentication)."""

    infos: tuple[SecurityInfo, ...]

    @property
    def chip_authentication_infos(self) -> list[ChipAuthenticationInfo]:
        """The ChipAuthenticationInfos in file order."""
        return [i for i in self.infos if isinstance(i, ChipAuthenticationInfo)]

    @property
    def chip_authentication_public_keys(self) -> list[ChipAuthenticationPublicKeyInfo]:
        """The ChipAuthenticationPublicKeyInfos in file order."""
        return [i for i in self.infos if isinstance(i, ChipAuthenticationPublicKeyInfo)]

    @property
    def active_authentication_info(self) -> ActiveAuthenticationInfo | None:
        """The ActiveAuthenticationInfo, if any."""
        for info in self.infos:
            if isinstance(info, ActiveAuthenticationInfo):
                return info
        return None


def parse_dg14(data: bytes) -> Dg14:
    """Parse DG14 (tag 6E → SET OF SecurityInfo)."""

    def run() -> Dg14:
        root = der.single(data, 0x6E, "DG14")
        inner = list(iter_tlvs(root.value, base_offset=len(root.raw) - len(root.value)))
        if len(inner) != 1:
            raise LdsError(f"DG14 holds {len(inner)} elements, expected one SET")
        return Dg14(tuple(parse_security_infos(inner[0])))

    return _guard("DG14", run)


def parse_card_access_file(data: bytes) -> list[SecurityInfo]:
    """EF.CardAccess (SecurityInfos), errors as :class:`LdsError`."""
    return _guard("EF.CardAccess", lambda: parse_card_access(data))


# --- DG15 -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Dg15:
    """DG15: the Active Authentication public key."""

    public_key: PublicKey
    spki: bytes


def parse_dg15(data: bytes) -> Dg15:
    """Parse DG15 (tag 6F → SubjectPublicKeyInfo)."""

    def run() -> Dg15:
        root = der.single(data, 0x6F, "DG15")
        inner = list(iter_tlvs(root.value, base_offset=len(root.raw) - len(root.value)))
        if len(inner) != 1:
            raise LdsError(f"DG15 holds {len(inner)} elements, expected one SubjectPublicKeyInfo")
        return Dg15(parse_spki_element(inner[0]), inner[0].raw)

    return _guard("DG15", run)

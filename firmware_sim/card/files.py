"""The chip's file system (ISO 7816-4 §7; ICAO 9303-10 §3-4 LDS1 layout).

MF holds EF.CardAccess (011C). The eMRTD application (AID ``A0 00 00 02 47 10 01``) holds EF.COM
(011E), EF.SOD (011D) and the data groups 0101... Access rules as on the CCCD: EF.CardAccess is
free; every other EF needs an open BAC/PACE session; DG3 needs Terminal Authentication, which this
chip does not offer, so it always answers 6982. DG11/DG12 and other absent files answer 6A82.

Commands: SELECT (``A4``) by AID (P1 04), MF (P1 00, refused with 6D00 by some profiles), EF
under the current DF (P1 02; an EF of the MF is not under the application, see
:mod:`.profiles`); P2 0C (no response data), 04 (FCP) or 00 (FCI). READ BINARY ``B0`` with a
15-bit offset in P1P2 or the short-EF form (P1 bit 8 set, SFI in bits 1-5, offset in P2);
READ BINARY ``B1`` with an offset data object 54 and the response in DO53 (ISO 7816-4 §11.2.3);
for B1, Ne covers the whole DO53. Reading past the end returns the remaining bytes with 6282
when an explicit Le asked for more (Le 00 is "up to 256/65536": 9000); an offset at or beyond
the end answers 6B00.
"""

from __future__ import annotations

from dataclasses import dataclass

from .apdu import SW, Command
from .errors import ISOError
from .profiles import CardProfile, get_profile
from .tlv import TLVError, parse_all, tlv

EMRTD_AID = bytes.fromhex("A0000002471001")


@dataclass(frozen=True, slots=True)
class EFSpec:
    """An elementary file: its name, file identifier, short EF identifier and access rule."""

    name: str
    fid: int
    sfi: int
    in_application: bool = True
    protected: bool = True
    denied: bool = False


EF_SPECS: tuple[EFSpec, ...] = (
    EFSpec("CardAccess", 0x011C, 0x1C, in_application=False, protected=False),
    EFSpec("COM", 0x011E, 0x1E),
    EFSpec("SOD", 0x011D, 0x1D),
    EFSpec("DG1", 0x0101, 0x01),
    EFSpec("DG2", 0x0102, 0x02),
    EFSpec("DG3", 0x0103, 0x03, denied=True),
    EFSpec("DG13", 0x010D, 0x0D),
    EFSpec("DG14", 0x010E, 0x0E),
    EFSpec("DG15", 0x010F, 0x0F),
)
EF_BY_NAME = {spec.name: spec for spec in EF_SPECS}
EF_BY_FID = {spec.fid: spec for spec in EF_SPECS}
EF_BY_SFI = {spec.sfi: spec for spec in EF_SPECS}


class FileSystem:
    """Selection state and file contents of one chip."""

    def __init__(self, contents: dict[str, bytes], profile: CardProfile | None = None) -> None:
        unknown = set(contents) - set(EF_BY_NAME)
        if unknown:
            raise ValueError(f"unknown EF names: {sorted(unknown)}")
        self.contents = dict(contents)
        self.profile = get_profile(profile)
        self.refuse_select_mf = self.profile.refuse_select_mf
        self.in_application = False
        self.current: EFSpec | None = None

    def reset(self) -> None:
        """Power-on state: MF selected, no current EF."""
        self.in_application = False
        self.current = None

    def _lookup(self, fid: int) -> EFSpec:
        spec = EF_BY_FID.get(fid)
        if spec is None or spec.name not in self.contents:
            raise ISOError(SW.FILE_NOT_FOUND, f"no EF {fid:04X}")
        if spec.in_application and not self.in_application:
            raise ISOError(SW.FILE_NOT_FOUND, f"EF {fid:04X} is not under the current DF")
        if (not spec.in_application and self.in_application
                and not self.profile.mf_files_from_application):
            raise ISOError(SW.FILE_NOT_FOUND, f"EF {fid:04X} is in the MF, not the application")
        return spec

    def _fcp(self, spec: EFSpec) -> bytes:
        size = len(self.contents[spec.name])
        body = (
            tlv(0x80, size.to_bytes(2, "big"))
            + tlv(0x82, b"\x01")
            + tlv(0x83, spec.fid.to_bytes(2, "big"))
        )
        return tlv(0x62, body)

    def select(self, cmd: Command, access: bool) -> bytes:
        """SELECT (ISO 7816-4 §11.1.1); return the response data."""
        if cmd.p2 not in (0x00, 0x04, 0x0C):
            raise ISOError(SW.WRONG_P1P2, "unsupported SELECT P2")
        if cmd.p1 == 0x04:
            if cmd.data != EMRTD_AID:
                raise ISOError(SW.FILE_NOT_FOUND, "application not found")
            self.in_application = True
            self.current = None
            return b"" if cmd.p2 == 0x0C else tlv(0x6F, tlv(0x84, EMRTD_AID))
        if cmd.p1 == 0x00:
            if cmd.data not in (b"", b"\x3f\x00"):
                raise ISOError(SW.FILE_NOT_FOUND, "only the MF is selectable with P1 00")
            if self.refuse_select_mf:
                raise ISOError(SW.INS_NOT_SUPPORTED, "this platform refuses SELECT MF")
            self.in_application = False
            self.current = None
            return b""
        if cmd.p1 == 0x02:
            if len(cmd.data) != 2:
                raise ISOError(SW.WRONG_LENGTH, "SELECT EF needs a 2-byte FID")
            spec = self._lookup(int.from_bytes(cmd.data, "big"))
            if spec.protected and not access:
                raise ISOError(SW.SECURITY_NOT_SATISFIED, "access not granted yet")
            self.current = spec
            return b"" if cmd.p2 == 0x0C else self._fcp(spec)
        raise ISOError(SW.WRONG_P1P2, "unsupported SELECT P1")

    def _readable(self, spec: EFSpec, access: bool) -> bytes:
        if spec.denied or (spec.protected and not access):
            raise ISOError(SW.SECURITY_NOT_SATISFIED, f"{spec.name} not readable")
        return self.contents[spec.name]

    @staticmethod
    def _slice(content: bytes, offset: int, ne: int) -> tuple[bytes, int]:
        if offset >= len(content):
            raise ISOError(SW.WRONG_OFFSET, "offset beyond the end of the file")
        chunk = content[offset : offset + ne]
        # Le = 00 (Ne 256 / 65536) means "up to that many": a short read is not a warning.
        if len(chunk) == ne or ne in (256, 65536):
            return chunk, SW.OK
        return chunk, SW.END_OF_FILE

    def read_binary(self, cmd: Command, access: bool) -> tuple[bytes, int]:
        """READ BINARY B0 (ISO 7816-4 §11.2.3); return (data, SW 9000 or 6282)."""
        if cmd.data:
            raise ISOError(SW.WRONG_LENGTH, "READ BINARY B0 takes no data")
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                raise ISOError(SW.WRONG_P1P2, "bad short-EF form")
            if not self.in_application and not self.profile.short_ef_at_mf:
                raise ISOError(SW.WRONG_P1P2, "short EF identifiers refused at the MF level")
            spec = EF_BY_SFI.get(cmd.p1 & 0x1F)
            if spec is None:
                raise ISOError(SW.FILE_NOT_FOUND, "no EF with that SFI")
            spec = self._lookup(spec.fid)
            content = self._readable(spec, access)
            self.current = spec
            offset = cmd.p2
        else:
            if self.current is None:
                raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "no current EF")
            content = self._readable(self.current, access)
            offset = cmd.p1p2
        return self._slice(content, offset, cmd.ne or 256)

    def read_binary_odd(self, cmd: Command, access: bool) -> tuple[bytes, int]:
        """READ BINARY B1: offset in DO54, file in P1P2 (0000 = current EF, else FID or SFI)."""
        try:
            objects = parse_all(cmd.data)
        except TLVError as exc:
            raise ISOError(SW.WRONG_DATA, "READ BINARY B1 data not BER-TLV") from exc
        if len(objects) != 1 or objects[0][0] != 0x54 or not 1 <= len(objects[0][1]) <= 4:
            raise ISOError(SW.WRONG_DATA, "expected one offset data object 54")
        offset = int.from_bytes(objects[0][1], "big")
        if cmd.p1p2 == 0:
            if self.current is None:
                raise ISOError(SW.CONDITIONS_NOT_SATISFIED, "no current EF")
            spec = self.current
        elif cmd.p1 == 0 and cmd.p2 & 0xE0 == 0:
            known = EF_BY_SFI.get(cmd.p2 & 0x1F)
            if known is None:
                raise ISOError(SW.FILE_NOT_FOUND, "no EF with that SFI")
            spec = self._lookup(known.fid)
        else:
            spec = self._lookup(cmd.p1p2)
        content = self._readable(spec, access)
        self.current = spec
        ne = cmd.ne or 256
        if offset >= len(content):
            raise ISOError(SW.WRONG_OFFSET, "offset beyond the end of the file")
        # Ne covers the whole DO53 (tag and length included).
        n = min(len(content) - offset, ne)
        while n > 0 and len(tlv(0x53, bytes(n))) > ne:
            n -= 1
        if n == 0:
            raise ISOError(SW.WRONG_LENGTH, "Ne too small for DO53")
        chunk = content[offset : offset + n]
        short = n == len(content) - offset and len(tlv(0x53, chunk)) < ne and ne not in (256, 65536)
        return tlv(0x53, chunk), SW.END_OF_FILE if short else SW.OK

"""What the desk knows before the chip is opened: a CAN, an MRZ, or a card QR (docs/cccd.md §2, §6).

PACE with the CAN is tried first (it needs only the ID number); BAC keys follow, derived from an
MRZ or from a card QR's date of birth and issue date (several candidates, most likely first).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.cccd import BacKey, QrIdentity, Td1Mrz, parse_qr, parse_td1


class NoKeyMaterialError(ValueError):
    """Nothing to open the chip with."""


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    """Passwords to try, in order: ``can`` for PACE, then ``bac_keys`` for PACE-MRZ/BAC."""

    can: str | None = None
    bac_keys: tuple[BacKey, ...] = ()
    qr: QrIdentity | None = None
    mrz: Td1Mrz | None = None

    def __post_init__(self) -> None:
        if self.can is not None and not (len(self.can) == 6 and self.can.isdigit()):
            raise NoKeyMaterialError("a CAN is 6 digits")
        if self.can is None and not self.bac_keys:
            raise NoKeyMaterialError("no CAN and no MRZ key")

    @classmethod
    def from_can(cls, can: str) -> KeyMaterial:
        return cls(can=can)

    @classmethod
    def from_mrz(cls, line1: str, line2: str, line3: str) -> KeyMaterial:
        """An MRZ gives the exact BAC key and, on a CCCD, the CAN (from the 12-digit ID)."""
        mrz = parse_td1(line1, line2, line3)
        key = BacKey(mrz.document_number, mrz.date_of_birth_yymmdd, mrz.date_of_expiry_yymmdd)
        can = mrz.id_number.can if mrz.id_number else None
        return cls(can=can, bac_keys=(key,), mrz=mrz)

    @classmethod
    def from_qr(cls, payload: bytes | str | QrIdentity) -> KeyMaterial:
        """A card QR scanned a moment earlier (scan-then-tap)."""
        qr = payload if isinstance(payload, QrIdentity) else parse_qr(payload)
        if qr.can is None and not qr.bac_candidates:
            raise NoKeyMaterialError(f"a {qr.format.value} QR carries no usable ID number")
        return cls(can=qr.can, bac_keys=tuple(qr.bac_candidates), qr=qr)

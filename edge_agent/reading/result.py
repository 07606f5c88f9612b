"""The typed result of a chip read.

An identity is present only when the read verified: the session never reports an identity from
partial or unverified data. Every check says whether it passed, failed (with the reason) or was
not run (with why).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any

from edge_agent.cccd import Dg13, PersonalIdNumber, Sex, Td1Mrz, mask_id


class Assurance(Enum):
    """How far the identity is proven (docs/design.md §2.1).

    A kiosk shows the two differently: only ``chip-anchored`` proves the issuing state; a
    ``chip-signed`` chip is internally consistent but signed under a CSCA this device does not
    know (:attr:`text` gives the Vietnamese-first wording, :attr:`anchored` the distinction).
    """

    CHIP_ANCHORED = "chip-anchored"
    """Data-group hashes and the Document Signer signature good, chain to a trusted CSCA."""
    CHIP_SIGNED = "chip-signed"
    """Hashes and signature good; the CSCA is unknown (no trust store, or not in it)."""

    @property
    def anchored(self) -> bool:
        """True when the chain reaches a trusted CSCA."""
        return self is Assurance.CHIP_ANCHORED

    @property
    def text(self) -> tuple[str, str]:
        """(Vietnamese, English) wording for a screen."""
        return ASSURANCE_TEXT[self]


ASSURANCE_TEXT: dict[Assurance, tuple[str, str]] = {
    Assurance.CHIP_ANCHORED: ("Chip hợp lệ, đã xác thực cơ quan cấp",
                              "Chip verified up to the issuing authority"),
    Assurance.CHIP_SIGNED: ("Chip có chữ ký hợp lệ, chưa xác thực được cơ quan cấp",
                            "Chip signature valid; issuing authority not verified"),
}


class FailureReason(Enum):
    """Why a read produced no verified identity (reason codes carried by ``rejected`` events)."""

    NO_KEY_MATERIAL = "no-key-material"
    ACCESS_DENIED = "access-denied"
    CARD_LOST = "card-lost"
    DEADLINE = "deadline"
    SECURE_MESSAGING = "secure-messaging"
    CARD_ERROR = "card-error"
    FILE_MISSING = "file-missing"
    MALFORMED_DATA = "malformed-data"
    DG_HASH_MISMATCH = "dg-hash-mismatch"
    SIGNATURE_INVALID = "signature-invalid"
    SIGNER_EXPIRED = "signer-expired"
    CSCA_UNTRUSTED = "csca-untrusted"
    CLONE_SUSPECTED = "clone-suspected"
    INCONSISTENT_DATA = "inconsistent-data"
    INTERNAL_ERROR = "internal-error"


class CheckStatus(Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"


@dataclass(frozen=True, slots=True)
class Check:
    """One verification step and its outcome."""

    status: CheckStatus
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, reason: str = "", **detail: Any) -> Check:
        return cls(CheckStatus.PASSED, reason, detail)

    @classmethod
    def failed(cls, reason: str, **detail: Any) -> Check:
        return cls(CheckStatus.FAILED, reason, detail)

    @classmethod
    def not_run(cls, reason: str) -> Check:
        return cls(CheckStatus.NOT_RUN, reason)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value}
        if self.reason:
            out["reason"] = self.reason
        if self.detail:
            out["detail"] = self.detail
        return out


CHECK_NAMES = ("dg_hashes", "ds_signature", "csca_chain", "chip_authentication",
               "active_authentication")


@dataclass(frozen=True, slots=True)
class ChipIdentity:
    """The holder as the chip states it (DG1 MRZ, DG13 when read)."""

    id_number: PersonalIdNumber
    full_name: str
    date_of_birth: date
    sex: Sex | None
    nationality: str
    document_number: str
    date_of_expiry: date | None
    mrz: Td1Mrz
    dg13: Dg13 | None = None

    def to_json(self, *, personal: bool = False) -> dict[str, Any]:
        """Masked ID by default; ``personal`` adds the full number and DG13's fields."""
        out: dict[str, Any] = {
            "id_number": self.id_number.value if personal else mask_id(self.id_number.value),
            "full_name": self.full_name,
            # As the MRZ states it: a year-only or month-only birth date (docs/cccd.md §5) is
            # printed with its precision, not as its first possible day.
            "date_of_birth": self.mrz.birth_date.isoformat(),
            "date_of_birth_known": self.mrz.birth_date.precision.value,
            "sex": self.sex.value if self.sex else None,
            "nationality": self.nationality,
            "date_of_expiry": self.date_of_expiry.isoformat() if self.date_of_expiry else None,
            "birth_province_code": self.id_number.province_code,
        }
        if personal and self.dg13 is not None:
            out["dg13"] = self.dg13.to_json()
        return out


@dataclass(slots=True)
class ReadResult:
    """Everything a chip read produced. ``identity`` is set only when ``assurance`` is."""

    assurance: Assurance | None = None
    failure: FailureReason | None = None
    reason: str = ""
    access: str | None = None
    identity: ChipIdentity | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    qr_mismatch: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    apdu_count: int = 0
    bytes_read: int = 0
    retries: int = 0
    face_image: bytes | None = None
    face_mime: str | None = None
    data_groups: dict[int, bytes] = field(default_factory=dict, repr=False)
    issuer_status: str | None = None
    """``anchored``, ``no-trust-store``, ``unknown-csca`` or ``forged-signer`` (passive auth)."""
    validity_reference: str | None = None
    """The time certificate validity was checked at (chain model: signing time or issue date)."""

    @property
    def ok(self) -> bool:
        return self.assurance is not None and self.identity is not None

    def to_json(self, *, personal: bool = False) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "assurance": self.assurance.value if self.assurance else None,
            "assurance_text": list(self.assurance.text) if self.assurance else None,
            "issuer_status": self.issuer_status,
            "validity_reference": self.validity_reference,
            "failure": self.failure.value if self.failure else None,
            "reason": self.reason or None,
            "access": self.access,
            "identity": self.identity.to_json(personal=personal) if self.identity else None,
            "checks": {name: self.checks.get(name, Check.not_run("not reached")).to_json()
                       for name in CHECK_NAMES},
            "qr_mismatch": self.qr_mismatch,
            "face_image": ({"mime": self.face_mime, "bytes": len(self.face_image)}
                           if self.face_image else None),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "apdu_count": self.apdu_count,
            "bytes_read": self.bytes_read,
            "retries": self.retries,
        }

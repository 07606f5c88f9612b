"""Fault models baked into a simulated card (docs/design.md §2.3)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

FAULT_KINDS = ("tag-loss", "wrong-mac", "forged-dg", "clone", "unknown-csca", "expired-signer",
               "forged-signer")


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults a card shows.

    * ``tag_loss_after_bytes``: the response that would take the total of delivered response bytes
      beyond N is lost: :class:`TagLost` is raised once, the chip is unpowered, the fault disarms.
    * ``wrong_mac``: every secure-messaging response carries a wrong DO8E (BAC/PACE still succeed).
    * ``forged_dg``: that data group's content is altered after the SOD was signed.
    * ``clone``: same files, fresh AA and CA private keys that no longer match DG15/DG14.
    * ``unknown_csca``: EF.SOD signed by a Document Signer under a CSCA not in the trust folder.
    * ``expired_signer``: the Document Signer certificate's validity ended before the card was
      issued (a DS may expire after signing: passive authentication uses the chain model).
    * ``forged_signer``: EF.SOD signed by a Document Signer that names the trusted CSCA as its
      issuer but was signed with another (the rogue CSCA's) key.
    """

    tag_loss_after_bytes: int | None = None
    wrong_mac: bool = False
    forged_dg: int | None = None
    clone: bool = False
    unknown_csca: bool = False
    expired_signer: bool = False
    forged_signer: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for card.json."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Faults:
        """Parse card.json's ``faults``; unknown keys are rejected."""
        if not data:
            return cls()
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def parse_cli(cls, specs: list[str]) -> Faults:
        """Parse ``--fault KIND[=N]`` arguments (kinds in :data:`FAULT_KINDS`)."""
        values: dict[str, Any] = {}
        for spec in specs:
            kind, _, arg = spec.partition("=")
            if kind == "tag-loss":
                values["tag_loss_after_bytes"] = int(arg)
            elif kind == "forged-dg":
                values["forged_dg"] = int(arg)
            elif kind in FAULT_KINDS and not arg:
                values[kind.replace("-", "_")] = True
            else:
                raise ValueError(f"unknown fault {spec!r}; kinds: {', '.join(FAULT_KINDS)}")
        return cls(**values)

    @property
    def sod_signer(self) -> str:
        """Which PKI signer EF.SOD must be signed by for these faults."""
        if self.unknown_csca:
            return "rogue"
        if self.expired_signer:
            return "expired"
        if self.forged_signer:
            return "forged"
        return "ds"

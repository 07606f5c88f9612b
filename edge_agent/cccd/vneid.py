"""The VNeID app's "Mã QR định danh điện tử" (electronic identity QR), docs/cccd.md §5.

An opaque, short-lived token with no personal data (the official user manual of 08/2022 shows a
bare UUID, valid 5 minutes; airport flows report 1 minute), resolvable only online by the
identity platform. This module only recognises its shape; resolving it is the job of
:mod:`edge_agent.identity`. The VNeID app's other code, "QR code Thẻ CCCD", is the card QR
(:mod:`edge_agent.cccd.qr`). Pure: no I/O.

Recognised shapes: a UUID in its canonical 8-4-4-4-12 hexadecimal form (any version, either
case), or its 32 hexadecimal digits without hyphens. Nothing else is guessed at: an unknown shape
stays unknown (``qr-invalid``), so a random code is never sent to the platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge_agent.cccd.errors import QrError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(frozen=True, slots=True)
class VneidToken:
    """A VNeID identity token: canonical lower-case UUID text. A bearer secret for a few
    minutes: never logged; :attr:`masked` is what screens and logs may show."""

    value: str

    @property
    def masked(self) -> str:
        return "…" + self.value[-4:]

    def __repr__(self) -> str:
        return f"VneidToken({self.masked!r})"

    def to_json(self) -> dict[str, object]:
        """The object printed by ``edge-agent inspect qr`` (the token is not personal data)."""
        return {"format": "vneid-token", "token": self.value,
                "resolvable": "online only, by the identity platform"}


def looks_like_vneid(text: str) -> bool:
    return bool(_UUID.fullmatch(text) or _HEX32.fullmatch(text))


def parse_vneid_token(text: str) -> VneidToken:
    """The token of a decoded payload; raises :class:`QrError` when it is not one."""
    if _UUID.fullmatch(text):
        return VneidToken(text.lower())
    if _HEX32.fullmatch(text):
        h = text.lower()
        return VneidToken(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    raise QrError("is not a VNeID identity token (a UUID)", field="payload")

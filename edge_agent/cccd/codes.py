"""Every code a desk scanner may read, told apart by shape (docs/cccd.md §5).

- ``cccd``, ``cccd-6``, ``personal-qr``: the card QR and its variants (:mod:`.qr`); the VNeID
  app's "QR code Thẻ CCCD" is the same card QR;
- ``vneid-token``: the VNeID app's "Mã QR định danh điện tử", an opaque token (:mod:`.vneid`);
- ``bhyt``: the health-insurance card QR, ending with ``|$`` (:mod:`.bhyt`).

A payload that fits none is refused with the reason; the formats cannot be confused (a token
has no ``|``, a BHYT code ends with ``|$`` and starts with a 10- or 15-character card number, a
card QR starts with a 12-digit number). Pure: no I/O.
"""

from __future__ import annotations

from edge_agent.cccd.bhyt import BhytCard, looks_like_bhyt, parse_bhyt, starts_like_bhyt
from edge_agent.cccd.errors import QrError
from edge_agent.cccd.qr import QrIdentity, decode_payload, parse_qr
from edge_agent.cccd.vneid import VneidToken, looks_like_vneid, parse_vneid_token

Code = QrIdentity | BhytCard | VneidToken


def code_format(code: Code) -> str:
    """The format name ``edge-agent inspect qr`` prints."""
    if isinstance(code, BhytCard):
        return "bhyt"
    if isinstance(code, VneidToken):
        return "vneid-token"
    return code.format.value


def read_code(payload: bytes | str) -> Code:
    """Recognise a scanned payload by its shape and parse it; :class:`QrError` otherwise."""
    text = decode_payload(payload)
    if not text:
        raise QrError("payload is empty", field="payload")
    if "|" not in text:
        if looks_like_vneid(text):
            return parse_vneid_token(text)
        raise QrError("no '|' separators and not a UUID: not a card QR, a BHYT card QR or a "
                      "VNeID identity token", field="payload")
    if looks_like_bhyt(text):
        return parse_bhyt(text)
    if starts_like_bhyt(text):
        raise QrError("starts like a BHYT card QR but does not end with '|$' (cut short?)",
                      field="payload")
    return parse_qr(text)

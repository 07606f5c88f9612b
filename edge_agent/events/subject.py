"""The legacy ``subject``: a keyed HMAC of the ID number under the province's subject key
(docs/design.md §3; docs/protocol.md §4.7.1).

Agents before the sealed subject computed it on the device and sent it in clear; every device of
a province held the key, so a stolen device could reverse it by search. The current agent no
longer computes it (it seals the ID number to the centre and keys its own dedupe with
:mod:`edge_agent.events.local_subject`); the centre still derives this value from a sealed ID
number so old and new events of one person meet. Kept for the tools and tests that play an
older agent (HMAC-SHA-256, RFC 2104, truncated to 128 bits).
"""

from __future__ import annotations

import hashlib
import hmac

SUBJECT_BYTES = 16
DOMAIN = b"cccd-checkin/subject/v1\x00"


def subject_for(id_number: str, key: bytes) -> str:
    """The subject (32 hex characters) for a 12-digit ID number."""
    if len(key) < 16:
        raise ValueError("the subject key must be at least 16 bytes")
    mac = hmac.new(key, DOMAIN + id_number.encode("ascii"), hashlib.sha256).digest()
    return mac[:SUBJECT_BYTES].hex()

"""The pseudonymous ``subject`` of an event: a keyed HMAC of the ID number (docs/design.md §3).

It lets the centre pair an entry with its exit and count unique people without holding the ID
number. The key is the deployment's subject key, shared by the devices of one province; without
it the value cannot be linked back to a person (HMAC-SHA-256, RFC 2104, truncated to 128 bits).
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

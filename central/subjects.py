"""The pseudonymous ``subject`` of an ID number, computed at the centre for the audited person
search (docs/privacy.md §3): the same keyed HMAC the devices compute (docs/design.md §3), so an
officer's ID number meets the events and stays the devices recorded without the centre storing
any ID number. ``central`` and ``edge_agent`` never import each other: this is the same
function written twice, and a test checks both agree.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SUBJECT_BYTES = 16
DOMAIN = b"cccd-checkin/subject/v1\x00"
ID_NUMBER = re.compile(r"^[0-9]{12}$")


class SubjectError(ValueError):
    """No subject: the key is too short or the ID number is not 12 digits."""


def subject_for(id_number: str, key: bytes) -> str:
    """``HMAC-SHA-256(key, DOMAIN ‖ id_number)`` truncated to 128 bits, hex (32 characters)."""
    if len(key) < 16:
        raise SubjectError("the subject key must be at least 16 bytes")
    if not ID_NUMBER.fullmatch(id_number):
        raise SubjectError("an ID number is 12 digits")
    mac = hmac.new(key, DOMAIN + id_number.encode("ascii"), hashlib.sha256).digest()
    return mac[:SUBJECT_BYTES].hex()

"""The pseudonymous ``subject`` the centre stores (docs/privacy.md §3; docs/design.md §3).

Two layers, so that no device holds what reverses a stored subject:

* ``p = HMAC-SHA-256(province key, DOMAIN ‖ ref)`` truncated to 128 bits, hex (32 characters):
  the value agents before the sealed subject computed on the device and sent in clear
  (``ref`` is the 12-digit ID number, or ``bhyt:`` and a BHYT card's 10-digit number). Every
  device of a province held that key, so a stolen device reversed ``p`` by brute force over the
  ID numbers its birth province narrows to (:func:`subject_for`, kept for that value).
* ``s = "s" ‖ hex(HMAC-SHA-256(centre subject key, CENTRE_DOMAIN ‖ p))[:31]``: what the centre
  stores (:meth:`SubjectKeys.stored`). The centre subject key exists only at the centre. A
  legacy event's ``p`` and a new event's sealed ``ref`` (the centre computes ``p`` from it) land
  on the same ``s``, so pairing and unique counts stay exact across an upgrade. The leading
  ``s`` (never a hex digit) tells a stored subject from a legacy ``p``, which makes the re-key
  of an existing database (``central rekey-subjects``) idempotent row by row.

``central`` and ``edge_agent`` never import each other: :func:`subject_for` is the device's
function written twice, and a test checks both agree.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

SUBJECT_BYTES = 16
DOMAIN = b"cccd-checkin/subject/v1\x00"
CENTRE_DOMAIN = b"cccd-checkin/centre-subject/v1\x00"
ID_NUMBER = re.compile(r"^[0-9]{12}$")
REFERENCE = re.compile(r"^(?:[0-9]{12}|bhyt:[0-9]{10})$")
"""What a sealed subject may hold: an ID number, or ``bhyt:`` and a social-insurance number."""
LEGACY = re.compile(r"^[0-9a-f]{32}$")
STORED = re.compile(r"^s[0-9a-f]{31}$")
MIN_KEY_BYTES = 16
CENTRE_KEY_BYTES = 32


class SubjectError(ValueError):
    """No subject: a key is too short, or the ID number / reference is malformed."""


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def subject_for(id_number: str, key: bytes) -> str:
    """``p``: ``HMAC-SHA-256(key, DOMAIN ‖ id_number)`` truncated to 128 bits, hex."""
    if len(key) < MIN_KEY_BYTES:
        raise SubjectError("the subject key must be at least 16 bytes")
    if not ID_NUMBER.fullmatch(id_number):
        raise SubjectError("an ID number is 12 digits")
    return _mac(key, DOMAIN + id_number.encode("ascii"))[:SUBJECT_BYTES].hex()


@dataclass(frozen=True)
class SubjectKeys:
    """The centre's two subject keys: the province key (``keys.subject_key``, which computes
    ``p``; None when only legacy events are re-keyed) and the centre subject key
    (``keys.centre_subject_key``, which nobody else holds)."""

    centre: bytes
    province: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.centre) < MIN_KEY_BYTES:
            raise SubjectError("the centre subject key must be at least 16 bytes")
        if self.province is not None and len(self.province) < MIN_KEY_BYTES:
            raise SubjectError("the subject key must be at least 16 bytes")

    def stored(self, legacy: str) -> str:
        """``s`` for a legacy subject ``p`` (32 hex characters)."""
        if not LEGACY.fullmatch(legacy):
            raise SubjectError("a legacy subject is 32 hex characters")
        return "s" + _mac(self.centre, CENTRE_DOMAIN + bytes.fromhex(legacy)).hex()[:31]

    def for_reference(self, ref: str) -> str:
        """``s`` for what a sealed subject holds (an ID number or ``bhyt:`` and a number)."""
        if self.province is None:
            raise SubjectError("no province subject key (keys.subject_key)")
        if not REFERENCE.fullmatch(ref):
            raise SubjectError("a subject reference is 12 digits or bhyt: and 10 digits")
        return self.stored(_mac(self.province, DOMAIN + ref.encode("ascii"))
                           [:SUBJECT_BYTES].hex())

    def for_id_number(self, id_number: str) -> str:
        """``s`` of an ID number (the audited person search)."""
        if not ID_NUMBER.fullmatch(id_number):
            raise SubjectError("an ID number is 12 digits")
        return self.for_reference(id_number)


def load_key(path: Path, name: str) -> bytes:
    """A raw key file of at least 16 bytes; :class:`SubjectError` names ``name``."""
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise SubjectError(f"{name}: cannot read {path} ({exc.strerror})") from None
    if len(key) < MIN_KEY_BYTES:
        raise SubjectError(f"{name}: {path} holds {len(key)} bytes, at least 16 needed")
    return key


def load_subject_keys(centre: Path | None, province: Path | None) -> SubjectKeys | None:
    """The keys the settings name (None without ``keys.centre_subject_key``)."""
    if centre is None:
        return None
    return SubjectKeys(load_key(centre, "keys.centre_subject_key"),
                       None if province is None else load_key(province, "keys.subject_key"))

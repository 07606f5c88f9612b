"""Sealing personal data to the centre (an HPKE-style construction, after RFC 9180 base mode).

The one implementation both sides use (docs/design.md §2; docs/protocol.md §4.7): the agent
seals with :func:`seal`, the collector opens an event's ``sealed`` member with
:func:`open_event_box`. The constants of the construction (:data:`ALGORITHM`, :data:`INFO`,
:data:`NONCE`) live here only.

Accommodation notices must carry the guest's name and ID number (Circular 55/2021/TT-BCA); they
are sealed on the device to the centre's X25519 public key so neither the outbox on the device
nor the broker holds them in clear:

    ephemeral X25519 key pair (e, E); shared = X25519(e, R)
    key = HKDF-SHA256(ikm=shared, salt=E || R, info="cccd-checkin/seal/v1" || aad, 32 bytes)
    ciphertext = ChaCha20-Poly1305(key, nonce=0^12, plaintext, aad)

A fresh ephemeral key per message makes the all-zero nonce safe (each key seals one message).
The associated data binds the sealed box to its event (``event_id`` and ``device_id``), so a box
cannot be moved into another event.

The sealed subject (docs/protocol.md §4.7.1) is a second box in ``subject_sealed`` holding
``{"ref": "<ID number>"}`` (or ``bhyt:`` and a BHYT card's number): the centre computes the
stored subject from it with a key no device holds. Its associated data is
:func:`subject_aad` (``"subject|" ‖`` the event's), so it cannot be swapped with ``sealed``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from wire.errors import WireError
from wire.signing import b64url, b64url_decode

__all__ = ["ALGORITHM", "INFO", "NONCE", "SUBJECT_REF", "SealError", "SealedBox", "event_aad",
           "key_id", "open_event_box", "open_sealed", "open_subject_box", "seal", "seal_subject",
           "subject_aad"]

ALGORITHM = "X25519-HKDF-SHA256-CHACHA20POLY1305"
"""The ``alg`` of every sealed box of wire v1."""
INFO = b"cccd-checkin/seal/v1"
"""HKDF ``info`` prefix (the associated data follows it)."""
NONCE = bytes(12)
"""ChaCha20-Poly1305 nonce: all zero, safe because each ephemeral key seals one message."""


class SealError(WireError):
    """A sealed box that cannot be opened (wrong key, tampered, malformed); the reason carries no
    plaintext. ``path`` is ``$.sealed`` (``$.subject_sealed`` for a sealed subject)."""

    def __init__(self, reason: str, path: str = "$.sealed") -> None:
        super().__init__(path, reason)


def event_aad(event_id: str, device_id: str) -> bytes:
    """The associated data binding a box to its event: ``"<event_id>|<device_id>"``."""
    return f"{event_id}|{device_id}".encode()


def subject_aad(event_id: str, device_id: str) -> bytes:
    """The associated data of a sealed subject: ``"subject|<event_id>|<device_id>"``."""
    return b"subject|" + event_aad(event_id, device_id)


SUBJECT_REF = re.compile(r"^(?:[0-9]{12}|bhyt:[0-9]{10})$")
"""What a sealed subject holds: a 12-digit ID number, or ``bhyt:`` and a 10-digit BHYT number."""


def _raw(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, ephemeral: bytes, recipient: bytes, aad: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=INFO + aad).derive(shared)


def key_id(public: X25519PublicKey) -> str:
    """A short name of the recipient key (first 8 bytes of its raw form, base64url)."""
    return b64url(_raw(public)[:8])


@dataclass(frozen=True, slots=True)
class SealedBox:
    """The JSON form carried in an event's ``sealed`` member."""

    alg: str
    kid: str
    epk: str
    ct: str

    def to_json(self) -> dict[str, str]:
        return {"alg": self.alg, "kid": self.kid, "epk": self.epk, "ct": self.ct}

    @classmethod
    def from_json(cls, data: Any) -> SealedBox:
        if not isinstance(data, dict) or set(data) != {"alg", "kid", "epk", "ct"}:
            raise SealError("sealed must have exactly alg, kid, epk and ct")
        if data["alg"] != ALGORITHM:
            raise SealError("unknown sealing algorithm")
        if not all(isinstance(data[k], str) for k in ("kid", "epk", "ct")):
            raise SealError("sealed box members must be strings")
        return cls(data["alg"], data["kid"], data["epk"], data["ct"])


def seal(payload: dict[str, Any], recipient: X25519PublicKey, aad: bytes) -> SealedBox:
    """Seal a JSON object to ``recipient``."""
    ephemeral = X25519PrivateKey.generate()
    epk = _raw(ephemeral.public_key())
    key = _key(ephemeral.exchange(recipient), epk, _raw(recipient), aad)
    plaintext = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    ct = ChaCha20Poly1305(key).encrypt(NONCE, plaintext, aad)
    return SealedBox(ALGORITHM, key_id(recipient), b64url(epk), b64url(ct))


def open_sealed(box: SealedBox, recipient: X25519PrivateKey, aad: bytes) -> dict[str, Any]:
    """Open a box sealed to ``recipient``; :class:`SealError` when it cannot be."""
    public = recipient.public_key()
    if box.kid != key_id(public):
        raise SealError("sealed to another key (kid)")
    try:
        epk = b64url_decode(box.epk)
        ct = b64url_decode(box.ct)
    except ValueError:
        raise SealError("epk or ct is not base64url") from None
    if len(epk) != 32:
        raise SealError("ephemeral key must be 32 bytes")
    try:
        shared = recipient.exchange(X25519PublicKey.from_public_bytes(epk))
        key = _key(shared, epk, _raw(public), aad)
        plaintext = ChaCha20Poly1305(key).decrypt(NONCE, ct, aad)
    except (InvalidTag, ValueError):
        raise SealError("box does not open (tampered, or bound to another event)") from None
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SealError("sealed plaintext is not JSON") from None
    if not isinstance(data, dict):
        raise SealError("sealed plaintext is not a JSON object")
    return data


def open_event_box(sealed: Any, centre_key: X25519PrivateKey, event_id: str,
                   device_id: str) -> dict[str, Any]:
    """The JSON object inside an event's ``sealed`` member (the collector's side)."""
    return open_sealed(SealedBox.from_json(sealed), centre_key, event_aad(event_id, device_id))


def seal_subject(ref: str, recipient: X25519PublicKey, event_id: str,
                 device_id: str) -> SealedBox:
    """Seal a subject reference (:data:`SUBJECT_REF`) to the centre for one event."""
    if not SUBJECT_REF.fullmatch(ref):
        raise ValueError("a subject reference is 12 digits, or bhyt: and 10 digits")
    return seal({"ref": ref}, recipient, subject_aad(event_id, device_id))


def open_subject_box(sealed: Any, centre_key: X25519PrivateKey, event_id: str,
                     device_id: str) -> str:
    """The reference inside an event's ``subject_sealed`` member (the collector's side);
    :class:`SealError` (path ``$.subject_sealed``, no plaintext in the reason) otherwise."""
    try:
        data = open_sealed(SealedBox.from_json(sealed), centre_key,
                           subject_aad(event_id, device_id))
    except SealError as exc:
        raise SealError(exc.reason, "$.subject_sealed") from None
    ref = data.get("ref")
    if set(data) != {"ref"} or not isinstance(ref, str) or not SUBJECT_REF.fullmatch(ref):
        raise SealError("sealed subject is not {\"ref\": an ID number or bhyt: number}",
                        "$.subject_sealed")
    return ref

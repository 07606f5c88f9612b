"""Canonical JSON, base64url and Ed25519 signatures of messages (docs/protocol.md §4.8).

The one implementation both sides use (docs/design.md §2): the agent signs events and status
messages with :func:`sign_event`; the collector verifies them with :func:`verify_signature`.

* Canonical JSON: the message without its ``sig`` member, serialised with sorted keys, no
  insignificant whitespace and UTF-8 text without ``\\u`` escapes of non-ASCII characters.
  Messages carry only strings, integers, booleans, null, arrays and objects (no floating-point
  numbers), for which this serialisation coincides with the JSON Canonicalization Scheme of
  RFC 8785.
* base64url: RFC 4648 §5 without padding.
* Signature: Ed25519 (RFC 8032). Signing uses ``cryptography`` (the agent's keys are
  :class:`~cryptography.hazmat.primitives.asymmetric.ed25519.Ed25519PrivateKey`). Verification
  uses libsodium through PyNaCl: 2.3 times faster than OpenSSL's Ed25519 on the collector's hot
  path, and it releases the GIL (docs/performance.md, collector ingest); it also refuses
  small-order keys and a non-canonical ``S`` (RFC 8032 §5.1.7 strict checks).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nacl.exceptions import BadSignatureError as _NaclBadSignature
from nacl.signing import VerifyKey

from wire.errors import WireError

__all__ = [
    "SIGNATURE_FIELD", "SignatureError", "b64url", "b64url_decode", "canonical_bytes",
    "ed25519_public", "sign_event", "verify_event", "verify_signature", "wire_bytes",
]

SIGNATURE_FIELD = "sig"


class SignatureError(WireError):
    """A message whose signature is missing, malformed or wrong (``path`` is ``$.sig``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"$.{SIGNATURE_FIELD}", reason)


def b64url(data: bytes) -> str:
    """Bytes as unpadded base64url (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (RFC 4648 §5) to bytes; ``ValueError`` on anything else."""
    if not isinstance(text, str) or any(c in text for c in "=+/ \n\r\t"):
        raise ValueError("not unpadded base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise SignatureError("floating-point numbers cannot be signed")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list):
        for item in value:
            _reject_floats(item)


def canonical_bytes(message: dict[str, Any], *, float_free: bool = False) -> bytes:
    """The bytes a signature covers: ``message`` without ``sig``, canonically serialised.

    ``float_free``: the caller already knows the message holds no floating-point number (the
    collector's decoder refuses them while parsing), so the walk that looks for them is skipped.
    A float otherwise raises :class:`SignatureError`.
    """
    body = {k: v for k, v in message.items() if k != SIGNATURE_FIELD}
    if not float_free:
        _reject_floats(body)
    return wire_bytes(body)


def wire_bytes(message: dict[str, Any]) -> bytes:
    """The bytes of a message as published: the whole message (``sig`` included) in the
    canonical serialisation of :func:`canonical_bytes`."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sign_event(event: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``event`` (or any signed message) with its ``sig``."""
    signed = dict(event)
    signed[SIGNATURE_FIELD] = b64url(key.sign(canonical_bytes(event)))
    return signed


def ed25519_public(raw: bytes) -> VerifyKey:
    """A device's verification key from its 32 raw bytes (RFC 8032 §5.1.5)."""
    if len(raw) != 32:
        raise ValueError(f"Ed25519 public key of {len(raw)} bytes, expected 32")
    return VerifyKey(raw)


def verify_signature(message: dict[str, Any], public_key: VerifyKey, *,
                     float_free: bool = False) -> None:
    """Raise :class:`SignatureError` unless ``message["sig"]`` verifies under the key
    (``float_free`` as in :func:`canonical_bytes`). The collector's fast path (libsodium)."""
    sig = message.get(SIGNATURE_FIELD)
    if not isinstance(sig, str):
        raise SignatureError("no signature")
    try:
        raw = b64url_decode(sig)
    except ValueError:
        raise SignatureError("signature is not base64url") from None
    if len(raw) != 64:
        raise SignatureError(f"signature of {len(raw)} bytes, expected 64")
    try:
        public_key.verify(canonical_bytes(message, float_free=float_free), raw)
    except _NaclBadSignature:
        raise SignatureError("signature does not verify") from None


def verify_event(event: dict[str, Any], key: Ed25519PublicKey | VerifyKey) -> None:
    """:func:`verify_signature` for a ``cryptography`` public key (or a PyNaCl one)."""
    if isinstance(key, Ed25519PublicKey):
        key = VerifyKey(key.public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw))
    verify_signature(event, key)

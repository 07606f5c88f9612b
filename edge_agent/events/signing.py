"""Canonical JSON and Ed25519 signatures of events (RFC 8032; canonical form after RFC 8785).

The signed bytes are the event without its ``sig`` member, serialised with sorted keys, no
insignificant whitespace and UTF-8 text. Events carry only strings, integers, booleans, null,
arrays and objects (no floating-point numbers), for which this serialisation coincides with the
JSON Canonicalization Scheme of RFC 8785.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_FIELD = "sig"


class SignatureError(ValueError):
    """An event whose signature is missing, malformed or wrong."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or any(c in text for c in "=+/ \n"):
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise ValueError("events carry no floating-point numbers")
    if isinstance(value, dict):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list):
        for item in value:
            _reject_floats(item)


def canonical_bytes(event: dict[str, Any]) -> bytes:
    """The bytes a signature covers: ``event`` without ``sig``, canonically serialised."""
    body = {k: v for k, v in event.items() if k != SIGNATURE_FIELD}
    _reject_floats(body)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sign_event(event: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of ``event`` with its ``sig``."""
    signed = dict(event)
    signed[SIGNATURE_FIELD] = b64url(key.sign(canonical_bytes(event)))
    return signed


def verify_event(event: dict[str, Any], key: Ed25519PublicKey) -> None:
    """Raise :class:`SignatureError` unless ``event['sig']`` is the key's signature."""
    sig = event.get(SIGNATURE_FIELD)
    if not isinstance(sig, str):
        raise SignatureError("no signature")
    try:
        raw = b64url_decode(sig)
    except ValueError:
        raise SignatureError("signature is not base64url") from None
    if len(raw) != 64:
        raise SignatureError(f"signature of {len(raw)} bytes, expected 64")
    try:
        key.verify(raw, canonical_bytes(event))
    except InvalidSignature:
        raise SignatureError("signature does not verify") from None
    except ValueError as exc:
        raise SignatureError(str(exc)) from None

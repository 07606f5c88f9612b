"""Encryption at rest of personal data in the collector (accommodation notices only).

AES-256-GCM under the collector's data key; each blob is ``nonce (12) || ciphertext || tag``
and is bound to its stay by the associated data, so a blob copied onto another row does not
open. The data key lives outside the database (a file readable by the collector only), so a
database dump or backup alone discloses nothing personal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32


class AtRestError(ValueError):
    """A blob that does not open under this key (wrong key, tampered, another row's)."""


def new_data_key(path: Path) -> bytes:
    """Create a data key file (mode 0600) and return the key."""
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def load_data_key(path: Path) -> bytes:
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise AtRestError(f"{path}: a data key is {KEY_BYTES} bytes, found {len(key)}")
    return key


def encrypt_personal(key: bytes, record_id: str, personal: dict[str, Any]) -> bytes:
    """Seal ``personal`` for storage in the row ``record_id``."""
    nonce = os.urandom(12)
    plaintext = json.dumps(personal, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return nonce + AESGCM(key).encrypt(nonce, plaintext, record_id.encode("utf-8"))


def decrypt_personal(key: bytes, record_id: str, blob: bytes) -> dict[str, Any]:
    """Open a blob made by :func:`encrypt_personal` for the same ``record_id``."""
    if len(blob) < 12 + 16:
        raise AtRestError("blob too short")
    try:
        plaintext = AESGCM(key).decrypt(blob[:12], blob[12:], record_id.encode("utf-8"))
    except InvalidTag:
        raise AtRestError("blob does not open (wrong key, tampered, or another row's)") from None
    data = json.loads(plaintext)
    if not isinstance(data, dict):
        raise AtRestError("blob is not a JSON object")
    return data

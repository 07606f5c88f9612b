"""The centre's sealing key, read from its file (docs/protocol.md §4.7).

Signature verification, canonical JSON and sealed-box opening are the wire package's
(:mod:`wire.signing`, :mod:`wire.sealing`), shared with the agent (docs/design.md §2); only the
file I/O of the collector's own key stays here.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey


def load_centre_key(path: Path) -> X25519PrivateKey:
    """The centre's X25519 private key: 32 raw bytes, 64 hex characters, or PEM PKCS#8."""
    data = path.read_bytes()
    if len(data) == 32:
        return X25519PrivateKey.from_private_bytes(data)
    text = data.strip()
    if len(text) == 64:
        try:
            return X25519PrivateKey.from_private_bytes(bytes.fromhex(text.decode("ascii")))
        except ValueError:
            pass
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path}: not an X25519 private key")
    return key

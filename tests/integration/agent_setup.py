"""Key material an agent configuration needs, written for tests (synthetic, throw-away)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

KEYS_TOML = """[keys]
signing_key = "keys/device.pem"
centre_public_key = "keys/centre.pub.pem"
"""
"""The ``[keys]`` table naming what :func:`write_device_keys` writes (paths relative to the
configuration file's folder)."""


def write_device_keys(config_dir: Path) -> X25519PrivateKey:
    """The device's Ed25519 signing key and the centre's X25519 public key in
    ``config_dir/keys`` (no province subject key: a device no longer holds one, docs/privacy.md
    §3); returns the centre's private key (to open sealed stays and subjects)."""
    keys = config_dir / "keys"
    keys.mkdir()
    (keys / "device.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    centre = X25519PrivateKey.generate()
    (keys / "centre.pub.pem").write_bytes(centre.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return centre

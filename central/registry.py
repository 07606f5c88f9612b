"""The device registry: enrolment stores a device's Ed25519 public key and certificate.

docs/protocol.md §2 and §11: a device is known by its certificate CN (= device id); the
collector verifies every event under the Ed25519 key registered here and checks the device's
site. Revoking a device makes the ingest reject its messages (``revoked-device``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy.orm import Session

from central.broker_acl import reserved
from central.db.models import Device, Site

DEVICE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


class RegistryError(ValueError):
    """An enrolment that cannot be accepted (bad id, unknown site, bad key, CN mismatch)."""


def raw_public_key(key: bytes | str | Ed25519PublicKey) -> bytes:
    """32 raw bytes from raw bytes, 64 hex characters, PEM SubjectPublicKeyInfo or a key."""
    if isinstance(key, Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if isinstance(key, str):
        text = key.strip()
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            return bytes.fromhex(text)
        key = text.encode("ascii")
    if len(key) == 32:
        return key
    try:
        loaded = serialization.load_pem_public_key(key)
    except ValueError:
        raise RegistryError("not an Ed25519 public key (raw, hex or PEM)") from None
    if not isinstance(loaded, Ed25519PublicKey):
        raise RegistryError("not an Ed25519 public key")
    return raw_public_key(loaded)


def cert_fingerprint(cert_pem: bytes, device_id: str | None = None) -> str:
    """SHA-256 of the certificate's DER, hex; checks the CN is ``device_id`` if given."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    if device_id is not None:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if not cns or cns[0].value != device_id:
            raise RegistryError("the certificate's CN is not the device id")
    der = cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def enrol_device(session: Session, device_id: str, site_id: str,
                 public_key: bytes | str | Ed25519PublicKey, *, name: str = "",
                 cert_pem: bytes | None = None, fingerprint: str | None = None,
                 now: datetime | None = None) -> Device:
    """Register (or re-key) a device; the caller commits."""
    if not DEVICE_ID.match(device_id):
        raise RegistryError("device id must be a lower-case DNS label")
    if reserved(device_id):
        raise RegistryError(f"device id {device_id!r} is reserved for the broker and the "
                            "collector (docs/protocol.md §2)")
    if session.get(Site, site_id) is None:
        raise RegistryError(f"no site {site_id!r}")
    raw = raw_public_key(public_key)
    if cert_pem is not None:
        fingerprint = cert_fingerprint(cert_pem, device_id)
    device = session.get(Device, device_id)
    if device is None:
        device = Device(id=device_id, site_id=site_id, name=name, signing_public_key=raw,
                        cert_fingerprint=fingerprint, enrolled_at=now or datetime.now(UTC),
                        revoked=False, state="unknown", last_seq=0, contiguous_seq=0)
        session.add(device)
    else:
        device.site_id = site_id
        device.signing_public_key = raw
        device.cert_fingerprint = fingerprint or device.cert_fingerprint
        device.revoked = False
        if name:
            device.name = name
    session.flush()
    return device


def revoke_device(session: Session, device_id: str) -> None:
    device = session.get(Device, device_id)
    if device is None:
        raise RegistryError(f"no device {device_id!r}")
    device.revoked = True
    session.flush()

"""The device registry: enrolment stores a device's Ed25519 public key and certificate.

docs/protocol.md §2 and §11: a device is known by its certificate CN (= device id); the
collector verifies every event under the Ed25519 key registered here and checks the device's
site. Revoking a device makes the ingest reject its messages (``revoked-device``); *retiring*
it (revoking with a drain period, docs/operations.md §3) first lets the backlog it recorded
before the revocation arrive. A replacement enrolled under a revoked id is a new *generation*:
new keys, its own seq numbering from 1 above a ``seq_base`` (:func:`reenrol_device`).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.broker_acl import reserved
from central.db.models import Alarm, Device, DeviceGeneration, EventKey, RefusedSeq, Site

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


DRAIN_PERIOD = timedelta(days=7)
"""How long a retired device's backlog is still accepted (docs/operations.md §3)."""


def revoke_device(session: Session, device_id: str, *, drain: timedelta | None = None,
                  now: datetime | None = None) -> Device:
    """Revoke a device; with ``drain``, retire it: for that long the ingest still accepts its
    events that occurred before now (and its statuses), so its outbox can drain; the broker
    keeps its own topics until then. Without, everything it sends is refused at once (a stolen
    device). The caller commits."""
    device = session.get(Device, device_id)
    if device is None:
        raise RegistryError(f"no device {device_id!r}")
    now = now or datetime.now(UTC)
    if not device.revoked:
        device.revoked = True
        device.revoked_at = now
    device.drain_until = now + drain if drain is not None else None
    session.flush()
    return device


def draining(device: Device, now: datetime) -> bool:
    """True while a retired device's backlog is still accepted."""
    if not device.revoked or device.drain_until is None:
        return False
    until = device.drain_until
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return now < until


def reenrol_device(session: Session, device_id: str, public_key: bytes | str | Ed25519PublicKey,
                   *, cert_pem: bytes | None = None, now: datetime | None = None) -> Device:
    """Enrol a replacement under a revoked id: the old key generation is kept (its certificate
    stays on the CRL), the device gets ``generation`` + 1, and its seqs restart at 1 above a
    ``seq_base`` past every seq stored or refused so far, so ``(device_id, seq)`` never
    collides. Refused for an id that is not revoked, or still draining. The caller commits."""
    now = now or datetime.now(UTC)
    device = session.get(Device, device_id)
    if device is None:
        raise RegistryError(f"no device {device_id!r}")
    if not device.revoked:
        raise RegistryError(f"device id {device_id!r} is in use: revoke it first")
    if draining(device, now):
        raise RegistryError(f"device id {device_id!r} is still draining its backlog: wait, or "
                            "revoke it without a drain period")
    raw = raw_public_key(public_key)
    fingerprint = cert_fingerprint(cert_pem, device_id) if cert_pem is not None else None
    session.add(DeviceGeneration(
        device_id=device.id, generation=device.generation,
        signing_public_key=bytes(device.signing_public_key),
        cert_fingerprint=device.cert_fingerprint, enrolled_at=device.enrolled_at,
        retired_at=device.revoked_at or now, seq_base=device.seq_base,
        last_seq=device.last_seq))
    highest = [device.seq_base + device.last_seq,
               session.scalar(select(func.max(EventKey.seq)).where(
                   EventKey.device_id == device.id)),
               session.scalar(select(func.max(RefusedSeq.seq)).where(
                   RefusedSeq.device_id == device.id))]
    device.seq_base = max(int(h) for h in highest if h is not None)
    device.generation = device.generation + 1
    device.signing_public_key = raw
    device.cert_fingerprint = fingerprint
    device.enrolled_at = now
    device.revoked = False
    device.revoked_at = None
    device.drain_until = None
    device.last_seq = 0
    device.contiguous_seq = 0
    device.gap_since = None
    device.state = "unknown"
    # The old generation's seq gap can no longer fill (its numbering ended): its alarm clears.
    for alarm in session.scalars(select(Alarm).where(
            Alarm.kind == "seq-gap", Alarm.device_id == device.id, Alarm.cleared_at.is_(None))):
        alarm.cleared_at = now
    device.outbox_depth = None
    device.oldest_undelivered_at = None
    device.health = None
    session.flush()
    return device

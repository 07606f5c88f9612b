"""The device CA's certificate revocation list, rebuilt from the registry (docs/protocol.md §2).

The broker (mosquitto ``crlfile``) refuses a revoked device's certificate in the TLS handshake;
mosquitto 2.0.11 reads the file again on SIGHUP (``systemctl reload mosquitto``), for new
connections. A CRL names certificates by serial number, and the registry keeps no certificate,
so :func:`certificate_serial` makes the serial of every certificate ``central.enrol`` issues a
function of the device's Ed25519 public key, which the registry keeps: the CRL can always be
rebuilt from the revoked rows alone. Certificates issued otherwise (random serials) are not
named by the CRL; the broker's dynamic-security rules still grant them nothing once revoked.

Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

CRL_VALIDITY = timedelta(days=3650)
"""How long a CRL stays valid. OpenSSL refuses EVERY client once the broker's CRL is past its
``nextUpdate``, so the list is issued for years and rebuilt at each sync rather than short-lived."""


def certificate_serial(signing_public_key: bytes) -> int:
    """The TLS certificate serial for a device with this raw Ed25519 public key (159 bits, > 0)."""
    if len(signing_public_key) != 32:
        raise ValueError("a raw Ed25519 public key has 32 bytes")
    digest = hashlib.sha256(b"cccd-checkin device certificate serial\x00" +
                            signing_public_key).digest()
    return (int.from_bytes(digest[:20], "big") >> 1) or 1


def listed(pem: bytes) -> frozenset[int] | None:
    """The serials a PEM CRL names, or None if it is not a readable CRL."""
    try:
        crl = x509.load_pem_x509_crl(pem)
    except ValueError:
        return None
    return frozenset(r.serial_number for r in crl)


def needs_rewrite(pem: bytes | None, revoked_keys: Iterable[bytes], now: datetime) -> bool:
    """True unless ``pem`` already names exactly these devices and has years of validity left
    (so the broker is reloaded only when the list changes)."""
    if pem is None or listed(pem) != frozenset(certificate_serial(k) for k in revoked_keys):
        return True
    crl = x509.load_pem_x509_crl(pem)
    next_update = crl.next_update_utc
    return next_update is None or next_update < now + CRL_VALIDITY / 2


def build_crl(ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
              revoked_keys: Iterable[bytes], now: datetime) -> bytes:
    """PEM CRL signed by the device CA naming the devices with these signing public keys
    (the registry keeps no revocation time: each entry is dated at this rebuild)."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now - timedelta(minutes=5)).next_update(now + CRL_VALIDITY))
    for key in sorted(set(revoked_keys)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(certificate_serial(key))
            .revocation_date(now - timedelta(minutes=5)).build())
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)

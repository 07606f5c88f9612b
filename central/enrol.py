"""Device enrolment: a key pair and client certificate per device, and its configuration bundle.

``enrol(...)`` issues, for one new device id:

* an ECDSA P-256 TLS key and an X.509 client certificate with CN = the device id, signed by the
  collector's device CA (the broker authenticates devices by it, docs/protocol.md §2);
* an Ed25519 signing key (every event and status is signed with it, §4.8); its public key is
  stored in :attr:`Device.signing_public_key` through :func:`central.registry.enrol_device`;
* a zip bundle: ``agent.toml`` (docs/configuration.md; readers, scanners and paths to adjust on
  the device), ``tls/ca.pem``, ``tls/<id>.crt``, ``tls/<id>.key``, ``keys/device-ed25519.pem``,
  ``keys/centre-x25519.pub.pem``. No subject key: a device seals the ID number to the centre
  and keys its own dedupe locally (docs/privacy.md §3), so the province's subject key is no
  longer issued.

The private keys exist only in the returned bundle: the collector keeps the public halves.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from central.broker_acl import reserved
from central.db.models import Device, Site, SiteKind
from central.private_files import write_private
from central.registry import DEVICE_ID, RegistryError, enrol_device, reenrol_device
from central.revocation import certificate_serial

CERT_DAYS = 3 * 365
SITE_KINDS = {SiteKind.HERITAGE: "heritage-gate", SiteKind.HOSPITAL: "hospital-reception",
              SiteKind.ACCOMMODATION: "accommodation-desk"}
DIRECTIONS = ("entry", "exit", "both")


class EnrolmentError(ValueError):
    """An enrolment that cannot be done (bad or taken device id, missing CA, bad key)."""


@dataclass(frozen=True)
class DeviceCA:
    """The collector's device CA: signs device client certificates."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> DeviceCA:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise EnrolmentError("device CA key: an EC private key is expected")
        return cls(cert, key)

    @classmethod
    def create(cls, common_name: str = "CCCD check-in device CA",
               now: datetime | None = None) -> DeviceCA:
        """A new self-signed P-256 CA (for setup scripts and tests)."""
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    def save(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        write_private(key_path, self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Enrolment:
    """The result: the stored device and the bundle (zip bytes) to copy onto it."""

    device: Device
    bundle: bytes
    filename: str


def centre_public_pem(key: bytes | X25519PublicKey | X25519PrivateKey) -> bytes:
    """The centre's X25519 public key as SubjectPublicKeyInfo PEM, from a PEM public key, a
    raw 32-byte public key, or the private key (raw 32 bytes are taken as the *public* key)."""
    if isinstance(key, X25519PrivateKey):
        key = key.public_key()
    if isinstance(key, bytes):
        if key.lstrip().startswith(b"-----BEGIN"):
            loaded = serialization.load_pem_public_key(key)
            if not isinstance(loaded, X25519PublicKey):
                raise EnrolmentError("centre key: not an X25519 public key")
            key = loaded
        elif len(key) == 32:
            key = X25519PublicKey.from_public_bytes(key)
        else:
            raise EnrolmentError("centre key: PEM or 32 raw bytes expected")
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def centre_public_from_private_file(path: Path) -> bytes:
    """The public PEM of the centre's X25519 private key file (raw 32 bytes or PKCS#8 PEM)."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, X25519PrivateKey):
            raise EnrolmentError("centre private key: not X25519")
    elif len(data) == 32:
        private = X25519PrivateKey.from_private_bytes(data)
    else:
        raise EnrolmentError("centre private key: PEM or 32 raw bytes expected")
    return centre_public_pem(private)


def issue_certificate(ca: DeviceCA, device_id: str, public_key: ec.EllipticCurvePublicKey,
                      now: datetime, serial: int | None = None) -> x509.Certificate:
    """A TLS client certificate: CN = device id, clientAuth, signed by the device CA.

    ``serial``: :func:`central.revocation.certificate_serial` of the device's signing key, so the
    CRL can name it after a revocation (random when not given: collectors, the broker)."""
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
            .issuer_name(ca.cert.subject).public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))


def _toml_str(value: str) -> str:
    """A TOML basic string (JSON's escaping is a subset TOML accepts)."""
    return json.dumps(value, ensure_ascii=False)


def agent_toml(device_id: str, site: Site, name: str, broker_url: str,
               direction: str | None) -> str:
    """An ``agent.toml`` skeleton (docs/configuration.md); paths relative to the bundle."""
    kind = SITE_KINDS[site.kind]
    lines = [
        "# Edge agent configuration issued by the collector (docs/configuration.md).",
        "# Adjust [readers] / [scanners] to the hardware; keep the key files mode 0600.",
        "",
        "[device]",
        f"id = {_toml_str(device_id)}",
        f"site_id = {_toml_str(site.id)}",
        f"site_kind = {_toml_str(kind)}",
    ]
    if kind == "heritage-gate":
        lines.append(f"direction = {_toml_str(direction or 'entry')}")
    lines.append('language = "vi"')
    if name.strip():
        lines.append(f"name = {_toml_str(name.strip())}")
    lines += [
        "",
        "[keys]",
        'signing_key = "keys/device-ed25519.pem"',
        'centre_public_key = "keys/centre-x25519.pub.pem"',
        "",
        "[readers]",
        'uris = ["pcsc"]',
        "",
        "[scanners]",
        "uris = []",
        "",
        "[broker]",
        f"url = {_toml_str(broker_url)}",
        'ca = "tls/ca.pem"',
        f"cert = {_toml_str(f'tls/{device_id}.crt')}",
        f"key = {_toml_str(f'tls/{device_id}.key')}",
        "heartbeat_s = 30",
        "",
        "[outbox]",
        'path = "/var/lib/cccd-checkin/outbox.sqlite3"',
        "",
        "[kiosk]",
        'host = "127.0.0.1"',
        "port = 8080",
        "",
    ]
    return "\n".join(lines)


def enrol(db: Session, *, device_id: str, site: Site, ca: DeviceCA, centre_public: bytes,
          broker_url: str, name: str = "", direction: str | None = None,
          broker_ca_pem: bytes | None = None,
          now: datetime | None = None) -> Enrolment:
    """Create the device's keys and certificate, register it, and build its bundle.

    The caller commits the session. Raises :class:`EnrolmentError` for an invalid or taken id.
    """
    now = now or datetime.now(UTC)
    if not DEVICE_ID.match(device_id):
        raise EnrolmentError("device id: lower-case letters, digits and inner hyphens, "
                             "at most 64 characters")
    if reserved(device_id):
        raise EnrolmentError(f"device id: {device_id!r} is reserved (sites, collector, "
                             "collector-*, broker*, central*: the broker grants those names "
                             "more than a device, docs/protocol.md §2)")
    existing = db.get(Device, device_id)
    if existing is not None and not existing.revoked:
        raise EnrolmentError(f"device id: {device_id!r} is already enrolled (revoke the old "
                             "device first to enrol its replacement under this id)")
    if direction is not None and direction not in DIRECTIONS:
        raise EnrolmentError(f"direction: one of {', '.join(DIRECTIONS)}")
    tls_key = ec.generate_private_key(ec.SECP256R1())
    signing = Ed25519PrivateKey.generate()
    raw_signing = signing.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw)
    cert = issue_certificate(ca, device_id, tls_key.public_key(), now,
                             serial=certificate_serial(raw_signing))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    try:
        if existing is not None:  # a replacement: a new key generation under the same id
            device = reenrol_device(db, device_id, signing.public_key(), cert_pem=cert_pem,
                                    now=now)
            device.site_id = site.id
            if name:
                device.name = name
        else:
            device = enrol_device(db, device_id, site.id, signing.public_key(), name=name,
                                  cert_pem=cert_pem, now=now)
    except RegistryError as exc:
        raise EnrolmentError(str(exc)) from None
    pkcs8 = serialization.PrivateFormat.PKCS8
    nocrypt = serialization.NoEncryption()
    files = {
        "agent.toml": agent_toml(device_id, site, name, broker_url, direction).encode("utf-8"),
        "tls/ca.pem": broker_ca_pem or ca.cert_pem(),
        "tls/device-ca.pem": ca.cert_pem(),
        f"tls/{device_id}.crt": cert_pem,
        f"tls/{device_id}.key": tls_key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                                      nocrypt),
        "keys/device-ed25519.pem": signing.private_bytes(serialization.Encoding.PEM, pkcs8,
                                                         nocrypt),
        "keys/centre-x25519.pub.pem": centre_public_pem(centre_public),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(f"{device_id}/{path}", date_time=now.timetuple()[:6])
            secret = path.endswith((".key", "ed25519.pem"))
            info.external_attr = (0o600 if secret else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return Enrolment(device, buf.getvalue(), f"{device_id}-bundle.zip")


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 hex of a certificate's DER (as in :attr:`Device.cert_fingerprint`)."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()

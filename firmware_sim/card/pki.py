"""Test PKI for passive authentication (ICAO 9303-12; ICAO 9303-10 §4.6.2 EF.SOD).

CSCA (self-signed, brainpoolP384r1) → Document Signer (ECDSA brainpoolP256r1 by default; RSA
PKCS#1 v1.5 or RSA-PSS as options) → EF.SOD, a CMS SignedData (RFC 5652) with eContentType
id-icao-mrtd-security-ldsSecurityObject (2.23.136.1.1.1). A master-list signer (issued by the
CSCA) signs an ICAO master list (eContentType 2.23.136.1.1.2, ``CscaMasterList``). A *rogue* CSCA
and DS (not in the trust folder) and an *expired* DS serve the fault models. All synthetic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from asn1crypto import algos, cms, core
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from . import oids
from .errors import PersonalisationError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
DS_ALGORITHMS = ("ecdsa", "rsa", "rsa-pss")
VALID_FROM = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
EXPIRED_UNTIL = dt.datetime(2015, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
"""End of the expired DS's validity: before the first simulated issue date (2016-01-01)."""


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    """``DataGroupHash ::= SEQUENCE { dataGroupNumber, dataGroupHashValue }`` (9303-10 §4.6.2.2)."""

    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("dataGroupNumber", core.Integer),
        ("dataGroupHashValue", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    """SEQUENCE OF DataGroupHash."""

    _child_spec: ClassVar[Any] = DataGroupHash


class LDSSecurityObject(core.Sequence):  # type: ignore[misc]
    """``LDSSecurityObject`` version 0 (no LDS version info)."""

    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("version", core.Integer),
        ("hashAlgorithm", algos.DigestAlgorithm),
        ("dataGroupHashValues", DataGroupHashValues),
    ]


class CertificateSet(core.SetOf):  # type: ignore[misc]
    """SET OF Certificate."""

    _child_spec: ClassVar[Any] = ax.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    """``CscaMasterList ::= SEQUENCE { version, certList SET OF Certificate }`` (9303-12 §9)."""

    _fields: ClassVar[list[tuple[str, Any]]] = [
        ("version", core.Integer),
        ("certList", CertificateSet),
    ]


@dataclass(frozen=True, slots=True)
class Signer:
    """A certificate, its private key and the signature scheme it signs CMS content with."""

    cert: x509.Certificate
    key: PrivateKey
    scheme: str = "ecdsa"  # "ecdsa" | "rsa" | "rsa-pss"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, "Synthetic Test PKI (not a real authority)"
            ),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _new_key(scheme: str, curve: ec.EllipticCurve | None = None) -> PrivateKey:
    if scheme == "ecdsa":
        return ec.generate_private_key(curve or ec.BrainpoolP256R1())
    return rsa.generate_private_key(65537, 2048)


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def _certificate(
    subject: str,
    key: PrivateKey,
    issuer: Signer | None,
    *,
    ca: bool,
    not_after: dt.datetime,
    not_before: dt.datetime = VALID_FROM,
    eku: str | None = None,
) -> x509.Certificate:
    issuer_name = issuer.cert.subject if issuer else _name(subject)
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ObjectIdentifier(eku)]), critical=False
        )
    return builder.sign(signing_key, _hash_for(signing_key))


@dataclass(frozen=True, slots=True)
class TestPKI:
    """Everything ``firmware-sim issue`` writes under ``DIR/pki``."""

    csca: Signer
    ds: Signer
    rogue_csca: Signer
    rogue_ds: Signer
    expired_ds: Signer
    ml_signer: Signer
    forged_ds: Signer | None = None

    def signer(self, which: str) -> Signer:
        """``ds`` (normal), ``rogue`` (unknown CSCA), ``expired`` (DS certificate expired before
        the card was issued) or ``forged`` (names the trusted CSCA, signed by another key)."""
        if which == "forged":
            if self.forged_ds is None:
                raise PersonalisationError("this test PKI has no forged DS (issue it anew)")
            return self.forged_ds
        return {"ds": self.ds, "rogue": self.rogue_ds, "expired": self.expired_ds}[which]

    def master_list(self) -> bytes:
        """The ICAO master list holding the trusted CSCA only, signed by the ML signer."""
        return sign_master_list([self.csca.cert], self.ml_signer)

    def save(self, folder: Path) -> None:
        """Write PEM files plus ``masterlist.ml`` and ``pki.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        for stem, signer in self._items():
            (folder / f"{stem}.pem").write_bytes(
                signer.cert.public_bytes(serialization.Encoding.PEM)
            )
            write_private_key(folder / f"{stem}.key.pem", private_pem(signer.key))
        (folder / "masterlist.ml").write_bytes(self.master_list())
        schemes = {stem: s.scheme for stem, s in self._items()}
        (folder / "pki.json").write_text(json.dumps({"schemes": schemes}, indent=2) + "\n")

    def _items(self) -> list[tuple[str, Signer]]:
        return [
            ("csca", self.csca),
            ("ds", self.ds),
            ("rogue-csca", self.rogue_csca),
            ("rogue-ds", self.rogue_ds),
            ("ds-expired", self.expired_ds),
            ("mls", self.ml_signer),
        ] + ([("ds-forged", self.forged_ds)] if self.forged_ds is not None else [])

    @classmethod
    def load(cls, folder: Path) -> TestPKI:
        """Read a PKI written by :meth:`save`."""
        try:
            schemes = json.loads((folder / "pki.json").read_text())["schemes"]
            loaded = {}
            for stem, scheme in schemes.items():
                cert = x509.load_pem_x509_certificate((folder / f"{stem}.pem").read_bytes())
                key = serialization.load_pem_private_key(
                    (folder / f"{stem}.key.pem").read_bytes(), None
                )
                if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                    raise PersonalisationError(f"unsupported key type in {stem}.key.pem")
                loaded[stem] = Signer(cert, key, scheme)
        except (OSError, KeyError, ValueError) as exc:
            raise PersonalisationError(f"cannot load the test PKI from {folder}: {exc}") from exc
        return cls(
            loaded["csca"],
            loaded["ds"],
            loaded["rogue-csca"],
            loaded["rogue-ds"],
            loaded["ds-expired"],
            loaded["mls"],
            loaded.get("ds-forged"),
        )


def write_private_key(path: Path, pem: bytes) -> None:
    """Write a private key created with mode 0600 (replacing an older file in place): even a
    synthetic CSCA or chip key lets another local user forge documents the agents trust."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", closefd=False) as fh:
            fh.write(pem)
    finally:
        os.close(fd)


def private_pem(key: PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (synthetic test keys only)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(ds_algorithm: str = "ecdsa", now: dt.datetime | None = None) -> TestPKI:
    """Generate a fresh test PKI; ``ds_algorithm`` in :data:`DS_ALGORITHMS`."""
    if ds_algorithm not in DS_ALGORITHMS:
        raise PersonalisationError(f"unknown DS algorithm {ds_algorithm!r}")
    now = now or dt.datetime.now(dt.UTC)
    far = now + dt.timedelta(days=20 * 365)
    cscas = []
    for cn in ("CSCA Vietnam TEST", "CSCA Rogue TEST"):
        key = ec.generate_private_key(ec.BrainpoolP384R1())
        cscas.append(Signer(_certificate(cn, key, None, ca=True, not_after=far), key))
    csca, rogue = cscas

    def ds(cn: str, issuer: Signer, not_after: dt.datetime) -> Signer:
        key = _new_key(ds_algorithm)
        cert = _certificate(cn, key, issuer, ca=False, not_after=not_after)
        return Signer(cert, key, ds_algorithm)

    posing = Signer(csca.cert, rogue.key)  # the trusted CSCA's name, the rogue CSCA's key

    mls_key = ec.generate_private_key(ec.BrainpoolP256R1())
    mls = Signer(
        _certificate(
            "Master List Signer TEST",
            mls_key,
            csca,
            ca=False,
            not_after=far,
            eku=oids.MASTER_LIST_SIGNING_KEY,
        ),
        mls_key,
    )
    return TestPKI(
        csca=csca,
        ds=ds("Document Signer CCCD TEST", csca, far),
        rogue_csca=rogue,
        rogue_ds=ds("Document Signer Rogue TEST", rogue, far),
        expired_ds=ds("Document Signer Expired TEST", csca, EXPIRED_UNTIL),
        ml_signer=mls,
        forged_ds=ds("Document Signer CCCD TEST", posing, far),
    )


def _signature_algorithm(signer: Signer) -> cms.SignedDigestAlgorithm:
    if signer.scheme == "ecdsa":
        return cms.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    if signer.scheme == "rsa":
        return cms.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
    params = algos.RSASSAPSSParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
            "salt_length": 32,
        }
    )
    return cms.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})


def _sign(signer: Signer, data: bytes) -> bytes:
    key = signer.key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if signer.scheme == "rsa-pss":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return key.sign(data, pss, hashes.SHA256())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def sign_cms(content_type: str, content: bytes, signer: Signer) -> bytes:
    """CMS ContentInfo(SignedData) over ``content`` with signed attributes (RFC 5652 §5)."""
    cert = ax.Certificate.load(signer.cert.public_bytes(serialization.Encoding.DER))
    signed_attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": [content_type]}),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]}
            ),
        ]
    )
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": signed_attrs,
            "signature_algorithm": _signature_algorithm(signer),
            "signature": b"",
        }
    )
    to_sign = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    signer_info["signature"] = _sign(signer, to_sign)
    signed_data = cms.SignedData(
        {
            "version": "v3",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {
                "content_type": content_type,
                "content": core.ParsableOctetString(content),
            },
            "certificates": [cert],
            "signer_infos": [signer_info],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    der: bytes = info.dump()
    return der


def lds_security_object(dg_contents: dict[int, bytes]) -> bytes:
    """DER LDSSecurityObject with SHA-256 hashes of the exact stored DG bytes."""
    values = [
        {"dataGroupNumber": n, "dataGroupHashValue": hashlib.sha256(dg_contents[n]).digest()}
        for n in sorted(dg_contents)
    ]
    obj = LDSSecurityObject(
        {"version": 0, "hashAlgorithm": {"algorithm": "sha256"}, "dataGroupHashValues": values}
    )
    der: bytes = obj.dump()
    return der


def sign_sod(dg_contents: dict[int, bytes], signer: Signer) -> bytes:
    """The CMS ContentInfo stored in EF.SOD (without the ``77`` wrapper)."""
    return sign_cms(oids.LDS_SECURITY_OBJECT, lds_security_object(dg_contents), signer)


def sign_master_list(cscas: list[x509.Certificate], signer: Signer) -> bytes:
    """ICAO master list (ICAO 9303-12 §9) as CMS SignedData."""
    certs = [ax.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in cscas]
    ml = CscaMasterList({"version": 0, "certList": certs})
    return sign_cms(oids.CSCA_MASTER_LIST, ml.dump(), signer)

"""Trust store of Country Signing CA (CSCA) certificates for passive authentication.

ICAO 9303-12 §5 (PKI), §7.1.1 (CSCA certificate profile) and §9 (CSCA master lists): a CSCA is a
CA certificate (basicConstraints cA TRUE, keyUsage keyCertSign; RFC 5280 §4.2.1.3, §4.2.1.9),
self-signed or a *link* certificate (new CSCA key certified by the previous one). Both kinds are
accepted as trust anchors; Document Signer certificates chain to one directly.

Sources (:meth:`TrustStore.from_files`): PEM or DER certificates (``*.pem *.crt *.cer *.der``)
and ICAO master lists (``*.ml``): CMS SignedData (RFC 5652) with eContentType
``id-icao-cscaMasterList`` (2.23.136.1.1.2) over::

    CscaMasterList ::= SEQUENCE { version CscaMasterListVersion (v0), certList SET OF Certificate }

A master list's CMS signature is verified, and its Master List Signer certificate must be in the
list or be issued by a CSCA in the list (or already trusted) (ICAO 9303-12 §9). Everything that is
not loaded is reported with a reason in :attr:`TrustStore.report`. No I/O here: the agent reads
the folder (:mod:`edge_agent.trust_folder`) and passes the files' contents in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edge_agent.icao.errors import IcaoError
from edge_agent.icao.sod import (
    OID_CSCA_MASTER_LIST,
    CertificateParts,
    CmsError,
    SignatureError,
    certificate_parts,
    digest,
    parse_signed_data,
    verify_signature,
)

CERTIFICATE_SUFFIXES = frozenset({".pem", ".crt", ".cer", ".der"})
MASTER_LIST_SUFFIXES = frozenset({".ml"})


def _suffix(name: str) -> str:
    """The lower-case suffix of the last component of ``name`` (``""`` when it has none)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""

_PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----(.*?)"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----",
    re.DOTALL,
)


class TrustError(IcaoError, ValueError):
    """A certificate cannot be a trust anchor, or a source cannot be loaded; see ``reason``."""


class MasterListError(TrustError):
    """A CSCA master list is malformed or its signature or signer does not verify."""


class _CertificateSet(core.SetOf):  # type: ignore[misc]
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-12 §9 CscaMasterList."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer), ("certList", _CertificateSet)
    ]


AnchorKind = Literal["self-signed", "link", "ca"]


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """A trusted CSCA certificate and where it came from.

    ``kind`` is ``self-signed`` (verifies with its own key), ``link`` (self-issued, certified by
    another key) or ``ca`` (a CA certificate issued under another name).
    """

    parts: CertificateParts
    source: str
    kind: AnchorKind

    @property
    def subject(self) -> str:
        return self.parts.subject

    @property
    def der(self) -> bytes:
        return self.parts.der

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, hex."""
        return hashlib.sha256(self.parts.der).hexdigest()

    @property
    def certificate(self) -> x509.Certificate:
        """The ``cryptography`` object (its ``public_key()`` fails for explicit EC parameters)."""
        return x509.load_der_x509_certificate(self.parts.der)


@dataclass(frozen=True, slots=True)
class LoadedEntry:
    source: str
    subject: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    source: str
    reason: str


@dataclass(slots=True)
class LoadReport:
    """What :meth:`TrustStore.from_files` loaded and what it skipped, with reasons."""

    loaded: list[LoadedEntry] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        return {
            "loaded": [
                {"source": e.source, "subject": e.subject, "fingerprint": e.fingerprint}
                for e in self.loaded
            ],
            "skipped": [{"source": e.source, "reason": e.reason} for e in self.skipped],
        }


CertificateInput = bytes | x509.Certificate | CertificateParts


def _parts(cert: CertificateInput) -> CertificateParts:
    if isinstance(cert, CertificateParts):
        return cert
    der = cert.public_bytes(Encoding.DER) if isinstance(cert, x509.Certificate) else bytes(cert)
    try:
        return certificate_parts(der)
    except CmsError as exc:
        raise TrustError(exc.reason) from exc


def signature_verifies(issuer: CertificateParts, subject: CertificateParts) -> str | None:
    """None when ``issuer``'s key verifies ``subject``'s signature, else the reason."""
    if isinstance(subject.signature_algorithm, str):
        return subject.signature_algorithm
    try:
        verify_signature(issuer.spki, subject.signature_algorithm, subject.tbs, subject.signature)
    except (SignatureError, CmsError) as exc:
        return exc.reason
    except Exception as exc:  # never let verification pass silently
        return f"{type(exc).__name__}: {exc}"
    return None


def ca_problem(parts: CertificateParts) -> str | None:
    """Why the certificate cannot be a CSCA trust anchor, or None (RFC 5280 §4.2.1.3/§4.2.1.9)."""
    if not parts.is_ca:
        return "not a CA certificate (basicConstraints cA is not TRUE)"
    if not parts.key_cert_sign:
        return "CA certificate without keyUsage keyCertSign"
    return None


class TrustStore:
    """CSCA trust anchors (ICAO 9303-12 §5.1), indexed by subject name and key identifier."""

    def __init__(self) -> None:
        self._anchors: dict[bytes, TrustAnchor] = {}
        self.report = LoadReport()

    # ---------------------------------------------------------------- queries

    def __len__(self) -> int:
        return len(self._anchors)

    def __iter__(self) -> Iterator[TrustAnchor]:
        return iter(list(self._anchors.values()))

    def __contains__(self, cert: object) -> bool:
        if not isinstance(cert, bytes | x509.Certificate | CertificateParts):
            return False
        try:
            return _parts(cert).der in self._anchors
        except TrustError:
            return False

    def find_issuers(self, cert: CertificateInput) -> list[TrustAnchor]:
        """Anchors that may have issued ``cert``: same name as its issuer, or subject key
        identifier equal to its authority key identifier (RFC 5280 §4.2.1.1). Anchors matching
        both come first. The signature is not checked here (see :meth:`verify_issued`).
        """
        parts = _parts(cert)
        both: list[TrustAnchor] = []
        name_only: list[TrustAnchor] = []
        key_only: list[TrustAnchor] = []
        for anchor in self._anchors.values():
            name_match = anchor.parts.subject_key == parts.issuer_key
            key_match = (
                parts.authority_key_identifier is not None
                and anchor.parts.subject_key_identifier == parts.authority_key_identifier
            )
            if name_match and key_match:
                both.append(anchor)
            elif name_match:
                name_only.append(anchor)
            elif key_match:
                key_only.append(anchor)
        return both + name_only + key_only

    def named_issuers(self, cert: CertificateInput) -> list[TrustAnchor]:
        """Anchors whose subject name is ``cert``'s issuer name (RFC 5280 §7.1 comparison)."""
        parts = _parts(cert)
        return [a for a in self._anchors.values() if a.parts.subject_key == parts.issuer_key]

    def verify_issued(self, cert: CertificateInput) -> tuple[TrustAnchor | None, list[str]]:
        """The anchor whose key verifies ``cert``'s signature and whose subject is its issuer
        (RFC 5280 §6.1.3 (a)(1),(4)), or None with the reasons every candidate failed.
        """
        parts = _parts(cert)
        candidates = self.find_issuers(parts)
        if not candidates:
            aki = parts.authority_key_identifier
            return None, [
                f"no trusted CSCA for issuer {parts.issuer!r}"
                + (f" (authority key id {aki.hex()})" if aki else "")
            ]
        reasons: list[str] = []
        for anchor in candidates:
            if anchor.parts.subject_key != parts.issuer_key:
                reasons.append(
                    f"CSCA {anchor.subject!r} has the authority key id but not the issuer name"
                )
                continue
            problem = signature_verifies(anchor.parts, parts)
            if problem is None:
                return anchor, []
            reasons.append(f"CSCA {anchor.subject!r}: {problem}")
        return None, reasons

    # ---------------------------------------------------------------- loading

    def add_certificate(self, cert: CertificateInput, *, source: str = "added") -> TrustAnchor:
        """Add a CSCA (self-signed or link) certificate; :class:`TrustError` when it is not a CA.

        Adding a certificate already present returns the existing anchor.
        """
        parts = _parts(cert)
        problem = ca_problem(parts)
        if problem is not None:
            raise TrustError(problem)
        existing = self._anchors.get(parts.der)
        if existing is not None:
            return existing
        kind: AnchorKind = "ca"
        if parts.self_issued:
            kind = "self-signed" if signature_verifies(parts, parts) is None else "link"
        anchor = TrustAnchor(parts=parts, source=source, kind=kind)
        self._anchors[parts.der] = anchor
        return anchor

    def add_master_list(
        self, data: bytes, *, source: str = "master list", require_signer_chain: bool = True
    ) -> list[TrustAnchor]:
        """Verify and load an ICAO CSCA master list (ICAO 9303-12 §9).

        The CMS signature (signed attributes with message digest, RFC 5652 §5.4) must verify with
        the embedded Master List Signer certificate, and that certificate must be in the list or
        issued by a CSCA in the list or already in the store (unless ``require_signer_chain`` is
        False). Raises :class:`MasterListError`; entries that are not CA certificates are skipped
        and recorded in :attr:`report`.
        """
        try:
            signed = parse_signed_data(data, OID_CSCA_MASTER_LIST)
        except CmsError as exc:
            raise MasterListError(f"master list: {exc.reason}") from exc
        assert signed.signer_certificate is not None
        try:
            signer = certificate_parts(signed.signer_certificate)
            if signed.signed_attrs is not None:
                expected = digest(signed.digest_algorithm, signed.content)
                if signed.message_digest is None or not hmac.compare_digest(
                    expected, signed.message_digest
                ):
                    raise MasterListError("master list: message digest does not match content")
                signed_bytes = signed.signed_attrs
            else:
                signed_bytes = signed.content
            verify_signature(
                signer.spki, signed.signature_algorithm, signed_bytes, signed.signature
            )
        except MasterListError:
            raise
        except (CmsError, SignatureError) as exc:
            raise MasterListError(f"master list signature: {exc.reason}") from exc
        except Exception as exc:
            raise MasterListError(f"master list signature: {type(exc).__name__}: {exc}") from exc

        try:
            ml = CscaMasterList.load(signed.content, strict=True)
            version = int(ml["version"].native)
            entries = list(ml["certList"])
        except Exception as exc:
            raise MasterListError(f"malformed CscaMasterList: {type(exc).__name__}: {exc}") from exc
        if version != 0:
            raise MasterListError(f"CscaMasterList version {version} is not v0")

        listed: list[CertificateParts] = []
        for index, entry in enumerate(entries):
            try:
                listed.append(certificate_parts(entry))
            except CmsError as exc:
                self.report.skipped.append(SkippedEntry(f"{source}[{index}]", exc.reason))

        if require_signer_chain:
            problem = self._master_list_signer_problem(signer, listed)
            if problem is not None:
                raise MasterListError(f"master list signer: {problem}")

        added: list[TrustAnchor] = []
        for index, parts in enumerate(listed):
            where = f"{source}[{index}]"
            if parts.der in self._anchors:
                self.report.skipped.append(SkippedEntry(where, "duplicate certificate"))
                continue
            try:
                anchor = self.add_certificate(parts, source=where)
            except TrustError as exc:
                self.report.skipped.append(SkippedEntry(f"{where} {parts.subject}", exc.reason))
                continue
            added.append(anchor)
            self.report.loaded.append(LoadedEntry(where, anchor.subject, anchor.fingerprint))
        return added

    def _master_list_signer_problem(
        self, signer: CertificateParts, listed: list[CertificateParts]
    ) -> str | None:
        if any(parts.der == signer.der for parts in listed):
            return None
        reasons: list[str] = []
        for parts in listed:
            if parts.subject_key != signer.issuer_key or ca_problem(parts) is not None:
                continue
            problem = signature_verifies(parts, signer)
            if problem is None:
                return None
            reasons.append(problem)
        anchor, store_reasons = self.verify_issued(signer)
        if anchor is not None:
            return None
        detail = "; ".join(reasons + store_reasons)
        return f"{signer.subject!r} is neither in the list nor issued by a listed CSCA ({detail})"

    @classmethod
    def from_files(cls, files: Iterable[tuple[str, bytes]], *,
                   require_signer_chain: bool = True) -> TrustStore:
        """Load certificates and master lists given as ``(name, content)`` pairs.

        The kind of each entry comes from its name's suffix (:data:`CERTIFICATE_SUFFIXES`,
        :data:`MASTER_LIST_SUFFIXES`). Entries with other suffixes, malformed content, non-CA
        certificates and master lists that fail verification are skipped; :attr:`report` lists
        loaded and skipped items. Master lists are loaded after the single certificates, so a
        list signed under a CSCA given as a file verifies. No I/O: reading a folder is
        :func:`edge_agent.trust_folder.load_trust_folder`.
        """
        store = cls()
        master_lists: list[tuple[str, bytes]] = []
        for name, data in files:
            suffix = _suffix(name)
            if suffix in MASTER_LIST_SUFFIXES:
                master_lists.append((name, data))
            elif suffix in CERTIFICATE_SUFFIXES:
                store._load_certificate_blob(name, data)
            else:
                store.report.skipped.append(
                    SkippedEntry(name, f"unsupported file type {suffix or '(none)'!r}")
                )
        for name, data in master_lists:
            try:
                store.add_master_list(
                    data, source=name, require_signer_chain=require_signer_chain
                )
            except TrustError as exc:
                store.report.skipped.append(SkippedEntry(name, exc.reason))
        return store

    def _load_certificate_blob(self, file: str, data: bytes) -> None:
        blobs: list[tuple[str, bytes]] = []
        if b"-----BEGIN" in data:
            blocks = _PEM_BLOCK.findall(data)
            if not blocks:
                self.report.skipped.append(SkippedEntry(str(file), "no PEM CERTIFICATE block"))
                return
            for index, block in enumerate(blocks):
                where = str(file) if len(blocks) == 1 else f"{file}[{index}]"
                try:
                    blobs.append((where, base64.b64decode(b"".join(block.split()), validate=True)))
                except (binascii.Error, ValueError) as exc:
                    self.report.skipped.append(SkippedEntry(where, f"bad PEM base64: {exc}"))
        else:
            blobs.append((str(file), data))
        for where, der in blobs:
            try:
                parts = _parts(der)
                if parts.der in self._anchors:
                    self.report.skipped.append(SkippedEntry(where, "duplicate certificate"))
                    continue
                anchor = self.add_certificate(parts, source=where)
            except TrustError as exc:
                self.report.skipped.append(SkippedEntry(where, exc.reason))
                continue
            self.report.loaded.append(LoadedEntry(where, anchor.subject, anchor.fingerprint))

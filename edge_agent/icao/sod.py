"""EF.SOD, the Document Security Object (ICAO 9303-10 §4.6.2), and the CMS pieces it is made of.

EF.SOD is an application tag ``77`` wrapping a CMS ``ContentInfo`` of type SignedData
(RFC 5652 §5) whose encapsulated content is the ``LDSSecurityObject`` (eContentType
``id-icao-mrtd-security-ldsSecurityObject``, 2.23.136.1.1.1)::

    LDSSecurityObject ::= SEQUENCE {
        version                LDSSecurityObjectVersion,        -- v0(0) or v1(1)
        hashAlgorithm          DigestAlgorithmIdentifier,
        dataGroupHashValues    SEQUENCE SIZE (2..ub-DataGroups) OF DataGroupHash,
        ldsVersionInfo         LDSVersionInfo OPTIONAL }        -- present iff version is v1
    DataGroupHash ::= SEQUENCE { dataGroupNumber INTEGER (1..16), dataGroupHashValue OCTET STRING }
    LDSVersionInfo ::= SEQUENCE { ldsVersion PrintableString, unicodeVersion PrintableString }

The SignedData carries the Document Signer (DS) certificate (ICAO 9303-10 §4.6.2.2, 9303-12
§7.1.2) and one signer info with mandatory signed attributes (content-type and message-digest,
RFC 5652 §5.3/§11). This module only *parses* (structure and consistency); cryptographic checks are
in :mod:`edge_agent.icao.passive_auth`. The generic SignedData reader here is shared with the CSCA
master list reader (ICAO 9303-12 §9) in :mod:`edge_agent.icao.trust`, as are the signature
primitives (:func:`verify_signature`), which accept EC keys with explicit domain parameters.

Every malformed input raises :class:`SodError` (a ``ValueError``) with a specific ``reason``;
asn1crypto parses lazily, so all fields are forced inside the guarded section and any exception it
raises is converted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from asn1crypto import algos, cms, core, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from edge_agent.icao.ecparams import (
    CURVES_BY_OID,
    CurveError,
    CurveParams,
    cryptography_curve,
    decode_point,
    ecdsa_verify_digest,
    match_named_curve,
    validate_curve,
)
from edge_agent.icao.errors import IcaoError
from edge_agent.icao.tlv import TlvError, encode_length, parse_single

OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"
"""id-icao-mrtd-security-ldsSecurityObject (ICAO 9303-10 §4.6.2.1)."""
OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"
"""id-icao-cscaMasterList (ICAO 9303-12 §9)."""
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_CONTENT_TYPE_ATTR = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST_ATTR = "1.2.840.113549.1.9.4"
OID_SIGNING_TIME_ATTR = "1.2.840.113549.1.9.5"

SOD_TAG = 0x77
MAX_DG_NUMBER = 16

HASH_LENGTHS: dict[str, int] = {
    "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64,
}
"""Digest algorithms allowed by ICAO 9303-12 §5.2 (hash algorithms) and their output lengths."""

_HASH_OIDS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}

_CRYPTOGRAPHY_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}

SignatureFamily = Literal["rsa-pkcs1v15", "rsa-pss", "ecdsa", "ecdsa-plain"]

# signature OID -> (family, hash name or None when the digest algorithm supplies it)
_SIGNATURE_OIDS: dict[str, tuple[SignatureFamily, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa-pkcs1v15", None),  # rsaEncryption, used by many SODs
    "1.2.840.113549.1.1.5": ("rsa-pkcs1v15", "sha1"),
    "1.2.840.113549.1.1.14": ("rsa-pkcs1v15", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa-pkcs1v15", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa-pkcs1v15", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa-pkcs1v15", "sha512"),
    "1.2.840.113549.1.1.10": ("rsa-pss", None),  # hash from RSASSA-PSS-params (RFC 4055 §3.1)
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey misused as a signature OID
    "1.2.840.10045.4.1": ("ecdsa", "sha1"),
    "1.2.840.10045.4.3.1": ("ecdsa", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    # BSI TR-03111 §5.2.1 ecdsa-plain-signatures (r || s), seen in some eMRTD PKIs
    "0.4.0.127.0.7.1.1.4.1.1": ("ecdsa-plain", "sha1"),
    "0.4.0.127.0.7.1.1.4.1.2": ("ecdsa-plain", "sha224"),
    "0.4.0.127.0.7.1.1.4.1.3": ("ecdsa-plain", "sha256"),
    "0.4.0.127.0.7.1.1.4.1.4": ("ecdsa-plain", "sha384"),
    "0.4.0.127.0.7.1.1.4.1.5": ("ecdsa-plain", "sha512"),
}

_MGF1_OID = "1.2.840.113549.1.1.8"


class CmsError(IcaoError, ValueError):
    """Malformed or unsupported CMS / X.509 structure; ``reason`` says what."""


class SodError(CmsError):
    """Malformed EF.SOD (ICAO 9303-10 §4.6.2)."""


class SignatureError(IcaoError, ValueError):
    """A signature does not verify, or cannot be verified with the given key and algorithm."""

# --------------------------------------------------------------------------- ASN.1 definitions


class DataGroupHash(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-10 §4.6.2.3 DataGroupHash."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("dataGroupNumber", core.Integer),
        ("dataGroupHashValue", core.OctetString),
    ]


class DataGroupHashValues(core.SequenceOf):  # type: ignore[misc]
    _child_spec = DataGroupHash


class LDSVersionInfo(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("ldsVersion", core.PrintableString),
        ("unicodeVersion", core.PrintableString),
    ]


class LDSSecurityObject(core.Sequence):  # type: ignore[misc]
    """ICAO 9303-10 §4.6.2.3 LDSSecurityObject."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("version", core.Integer),
        ("hashAlgorithm", algos.DigestAlgorithm),
        ("dataGroupHashValues", DataGroupHashValues),
        ("ldsVersionInfo", LDSVersionInfo, {"optional": True}),
    ]


# --------------------------------------------------------------------------- algorithms


def hash_name_from_oid(oid: str) -> str:
    """``sha256`` etc. for a digest OID allowed by ICAO 9303-12 §5.2; :class:`CmsError` else."""
    name = _HASH_OIDS.get(oid)
    if name is None:
        raise CmsError(f"unsupported hash algorithm {oid}")
    return name


def digest(hash_name: str, data: bytes) -> bytes:
    """The hash of ``data`` with a named algorithm of :data:`HASH_LENGTHS`."""
    if hash_name not in HASH_LENGTHS:
        raise CmsError(f"unsupported hash algorithm {hash_name}")
    return hashlib.new(hash_name, data).digest()


@dataclass(frozen=True, slots=True)
class SignatureAlgorithm:
    """A signature algorithm identifier, resolved (RFC 5652 §10.1.2, RFC 4055, RFC 5758).

    ``hash_algorithm`` is the message hash. For RSASSA-PSS, ``mgf_hash`` and ``salt_length`` come
    from ``RSASSA-PSS-params`` (defaults SHA-1, MGF1-SHA-1, 20; RFC 4055 §3.1).
    """

    oid: str
    family: SignatureFamily
    hash_algorithm: str
    mgf_hash: str | None = None
    salt_length: int | None = None

    @property
    def name(self) -> str:
        """A readable name: ``ecdsa-with-sha256``, ``rsassa-pss(sha256,mgf1-sha256,32)``."""
        if self.family == "rsa-pss":
            return f"rsassa-pss({self.hash_algorithm},mgf1-{self.mgf_hash},{self.salt_length})"
        return f"{self.family}-with-{self.hash_algorithm}"


def parse_signature_algorithm(
    algorithm: Any, default_hash: str | None = None
) -> SignatureAlgorithm:
    """Resolve an asn1crypto ``AlgorithmIdentifier`` (any class with algorithm/parameters).

    ``default_hash`` supplies the hash for OIDs that name no hash (rsaEncryption, id-ecPublicKey
    used as a signature OID): the signer info's digest algorithm (RFC 5652 §5.4).
    """
    oid = algorithm["algorithm"].dotted
    entry = _SIGNATURE_OIDS.get(oid)
    if entry is None:
        raise CmsError(f"unsupported signature algorithm {oid}")
    family, hash_name = entry
    if family == "rsa-pss":
        params = algorithm["parameters"]
        if isinstance(params, core.Void) or params is None:
            raise CmsError("RSASSA-PSS without parameters")
        pss = algos.RSASSAPSSParams.load(params.dump(), strict=True)
        hash_oid = pss["hash_algorithm"]["algorithm"].dotted
        mgf = pss["mask_gen_algorithm"]
        if mgf["algorithm"].dotted != _MGF1_OID:
            raise CmsError(f"unsupported RSASSA-PSS mask generation {mgf['algorithm'].dotted}")
        mgf_params = algos.DigestAlgorithm.load(mgf["parameters"].dump(), strict=True)
        salt = int(pss["salt_length"].native)
        trailer = pss["trailer_field"].native
        if trailer not in ("trailer_field_bc", 1):
            raise CmsError(f"unsupported RSASSA-PSS trailer field {trailer}")
        if salt < 0 or salt > 1024:
            raise CmsError(f"RSASSA-PSS salt length {salt} out of range")
        return SignatureAlgorithm(
            oid=oid, family=family, hash_algorithm=hash_name_from_oid(hash_oid),
            mgf_hash=hash_name_from_oid(mgf_params["algorithm"].dotted), salt_length=salt,
        )
    if hash_name is None:
        if default_hash is None:
            raise CmsError(f"signature algorithm {oid} names no hash and none is implied")
        hash_name = default_hash
    return SignatureAlgorithm(oid=oid, family=family, hash_algorithm=hash_name)


# --------------------------------------------------------------------------- public keys


@dataclass(frozen=True, slots=True)
class ExplicitEcPublicKey:
    """An EC public key verified with :mod:`edge_agent.icao.ecparams` arithmetic.

    Used only for curves ``cryptography`` refuses (brainpoolP160r1/P192r1, non-standard explicit
    parameters); see :mod:`edge_agent.icao.ecparams` for the measurement behind this.
    """

    curve: CurveParams
    point: tuple[int, int]


PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ExplicitEcPublicKey


def _curve_from_specified(spec: Any) -> CurveParams:
    if spec["field_id"]["field_type"].native != "prime_field":
        raise SignatureError("EC characteristic-two fields are not supported")
    p = int(spec["field_id"]["parameters"].native)
    a = int.from_bytes(spec["curve"]["a"].native, "big")
    b = int.from_bytes(spec["curve"]["b"].native, "big")
    n = int(spec["order"].native)
    cofactor_field = spec["cofactor"]
    h = None if isinstance(cofactor_field, core.Void) else int(cofactor_field.native)
    base = bytes(spec["base"].native)
    provisional = CurveParams("explicit", None, p=p, a=a % p, b=b % p, gx=0, gy=0, n=n, h=h or 1)
    try:
        gx, gy = decode_point(provisional, base)
    except CurveError as exc:
        raise SignatureError(f"explicit EC parameters: base point: {exc}") from exc
    named = match_named_curve(p, a, b, gx, gy, n, h)
    if named is not None:
        return named
    custom = CurveParams("explicit", None, p=p, a=a % p, b=b % p, gx=gx, gy=gy, n=n, h=h or 1)
    try:
        validate_curve(custom)
    except CurveError as exc:
        raise SignatureError(f"explicit EC parameters: {exc}") from exc
    return custom


def load_public_key(spki_der: bytes) -> PublicKey:
    """Load a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) for verification.

    RSA (rsaEncryption or id-RSASSA-PSS) and EC keys with a named curve or explicit parameters
    (RFC 3279 §2.3.5, ICAO 9303-11 §9.2) are supported. EC keys go to ``cryptography`` first
    (it maps explicit parameters of the standard curves itself); only a curve it refuses is
    mapped or verified by :mod:`edge_agent.icao.ecparams`. Raises :class:`SignatureError`.
    """
    try:
        info = keys.PublicKeyInfo.load(spki_der, strict=True)
        algorithm = info["algorithm"]["algorithm"].dotted
        if algorithm == "1.2.840.10045.2.1":
            native = _load_with_cryptography(spki_der)
            if native is not None:
                return native
        if algorithm in ("1.2.840.113549.1.1.1", "1.2.840.113549.1.1.10"):
            rsa_key = keys.RSAPublicKey.load(bytes(info["public_key"]), strict=True)
            numbers = rsa.RSAPublicNumbers(
                int(rsa_key["public_exponent"].native), int(rsa_key["modulus"].native)
            )
            return numbers.public_key()
        if algorithm != "1.2.840.10045.2.1":
            raise SignatureError(f"unsupported public key algorithm {algorithm}")
        params = info["algorithm"]["parameters"]
        point_bytes = bytes(info["public_key"])
        if params.name == "named":
            curve = CURVES_BY_OID.get(params.chosen.dotted)
            if curve is None:
                raise SignatureError(f"unsupported named curve {params.chosen.dotted}")
        elif params.name == "specified":
            curve = _curve_from_specified(params.chosen)
        else:
            raise SignatureError("implicitlyCA EC parameters are not supported")
        point = decode_point(curve, point_bytes)
        crypto_curve = cryptography_curve(curve.name)
        if crypto_curve is not None:
            return ec.EllipticCurvePublicNumbers(point[0], point[1], crypto_curve).public_key()
        return ExplicitEcPublicKey(curve, point)
    except SignatureError:
        raise
    except Exception as exc:  # asn1crypto / cryptography errors on malformed keys
        raise SignatureError(f"unusable public key: {type(exc).__name__}: {exc}") from exc


def _load_with_cryptography(spki_der: bytes) -> ec.EllipticCurvePublicKey | None:
    """The EC key as ``cryptography`` loads it, or None when it refuses the curve."""
    try:
        key = serialization.load_der_public_key(spki_der)
    except (UnsupportedAlgorithm, ValueError):
        return None
    return key if isinstance(key, ec.EllipticCurvePublicKey) else None


def _plain_to_der(signature: bytes) -> bytes:
    if not signature or len(signature) % 2:
        raise SignatureError("plain ECDSA signature of odd length")
    half = len(signature) // 2
    return encode_dss_signature(
        int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
    )


def verify_signature(
    public_key: PublicKey | bytes, algorithm: SignatureAlgorithm, data: bytes, signature: bytes
) -> None:
    """Verify ``signature`` over ``data``; raise :class:`SignatureError` with a reason otherwise.

    ``public_key`` is a loaded key or SubjectPublicKeyInfo DER. Supports RSA PKCS#1 v1.5,
    RSASSA-PSS (RFC 8017 §8.1, parameters from the algorithm identifier), ECDSA with a DER
    ``Ecdsa-Sig-Value`` (RFC 5758 §3.2) or plain r||s (BSI TR-03111), on any supported curve.
    """
    key = load_public_key(public_key) if isinstance(public_key, bytes) else public_key
    hash_cls = _CRYPTOGRAPHY_HASHES.get(algorithm.hash_algorithm)
    if hash_cls is None:
        raise SignatureError(f"unsupported hash algorithm {algorithm.hash_algorithm}")
    try:
        if algorithm.family in ("rsa-pkcs1v15", "rsa-pss"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise SignatureError(f"{algorithm.name} needs an RSA key")
            if algorithm.family == "rsa-pkcs1v15":
                key.verify(signature, data, padding.PKCS1v15(), hash_cls())
            else:
                mgf_cls = _CRYPTOGRAPHY_HASHES.get(algorithm.mgf_hash or "")
                if mgf_cls is None or algorithm.salt_length is None:
                    raise SignatureError("RSASSA-PSS parameters incomplete")
                pss = padding.PSS(mgf=padding.MGF1(mgf_cls()), salt_length=algorithm.salt_length)
                key.verify(signature, data, pss, hash_cls())
            return
        der = _plain_to_der(signature) if algorithm.family == "ecdsa-plain" else signature
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(der, data, ec.ECDSA(hash_cls()))
            return
        if isinstance(key, ExplicitEcPublicKey):
            sig = algos.DSASignature.load(der, strict=True)
            r, s = int(sig["r"].native), int(sig["s"].native)
            if not ecdsa_verify_digest(key.curve, key.point, digest(algorithm.hash_algorithm, data),
                                       r, s):
                raise SignatureError(f"{algorithm.name} signature does not verify")
            return
        raise SignatureError(f"{algorithm.name} needs an EC key")
    except InvalidSignature as exc:
        raise SignatureError(f"{algorithm.name} signature does not verify") from exc
    except (SignatureError, CmsError):
        raise
    except UnsupportedAlgorithm as exc:
        raise SignatureError(f"{algorithm.name}: unsupported: {exc}") from exc
    except Exception as exc:  # malformed DER signature, bad lengths, ...
        raise SignatureError(f"{algorithm.name}: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True, slots=True)
class CertificateParts:
    """What verification needs from an X.509 certificate (RFC 5280 §4.1), read with asn1crypto.

    Kept apart from ``cryptography``'s object because that one cannot hand out EC keys with
    explicit parameters; names are compared in RFC 5280 §7.1 normalised form (``*_key``).
    ``signature_algorithm`` is a reason string when the certificate's own signature algorithm is
    unsupported (the certificate stays usable as a signer; its signature just cannot be checked).
    """

    der: bytes
    tbs: bytes
    signature_algorithm: SignatureAlgorithm | str  # a str says why it is unsupported
    signature: bytes
    spki: bytes
    subject: str
    issuer: str
    subject_key: bytes
    issuer_key: bytes
    serial_number: int
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None
    is_ca: bool
    key_cert_sign: bool
    not_before: datetime
    not_after: datetime

    @property
    def self_issued(self) -> bool:
        """Subject and issuer are the same name (RFC 5280 §3.2): CSCA root or link certificate."""
        return self.subject_key == self.issuer_key


_NAME_LABELS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.5": "serialNumber", "2.5.4.9": "STREET",
    "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
    "1.2.840.113549.1.9.1": "emailAddress",
}


def _escape_dn_value(value: str) -> str:
    out = "".join("\\" + ch if ch in ',+"\\<>;' else ch for ch in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def _name_text(name: Any) -> str:
    """RFC 4514 string of an asn1crypto Name (last RDN first, like ``cryptography``)."""
    rdns = []
    for rdn in name.chosen:
        parts = []
        for atv in rdn:
            oid = atv["type"].dotted
            value = atv["value"].native
            label = _NAME_LABELS.get(oid, oid)
            text = value.hex() if isinstance(value, bytes) else str(value)
            parts.append(f"{label}={_escape_dn_value(text)}")
        rdns.append("+".join(parts))
    return ",".join(reversed(rdns))


def _name_key(name: Any) -> bytes:
    try:
        return str(name.hashable).encode("utf-8")
    except Exception:
        return bytes(name.dump())


def certificate_parts(der: bytes | Any) -> CertificateParts:
    """Read a DER certificate (or asn1crypto ``Certificate``); :class:`CmsError` when malformed."""
    try:
        cert = der if isinstance(der, asn1_x509.Certificate) else asn1_x509.Certificate.load(
            der, strict=True
        )
        tbs = cert["tbs_certificate"]
        sig_alg: SignatureAlgorithm | str
        try:
            sig_alg = parse_signature_algorithm(cert["signature_algorithm"])
        except CmsError as exc:  # readable certificate, but its signature cannot be checked
            sig_alg = exc.reason
        inner = tbs["signature"]["algorithm"].dotted
        if inner != cert["signature_algorithm"]["algorithm"].dotted:
            raise CmsError("certificate signature algorithm differs from the TBS one")
        basic = cert.basic_constraints_value
        key_usage = cert.key_usage_value
        aki_value = cert.authority_key_identifier_value
        aki = None
        if aki_value is not None and not isinstance(aki_value["key_identifier"], core.Void):
            aki = bytes(aki_value["key_identifier"].native)
        ski = cert.key_identifier
        validity = tbs["validity"]
        return CertificateParts(
            der=cert.dump(),
            tbs=tbs.dump(),
            signature_algorithm=sig_alg,
            signature=bytes(cert["signature_value"].native),
            spki=tbs["subject_public_key_info"].dump(),
            subject=_name_text(tbs["subject"]),
            issuer=_name_text(tbs["issuer"]),
            subject_key=_name_key(tbs["subject"]),
            issuer_key=_name_key(tbs["issuer"]),
            serial_number=int(tbs["serial_number"].native),
            subject_key_identifier=bytes(ski) if ski is not None else None,
            authority_key_identifier=aki,
            is_ca=bool(basic is not None and basic["ca"].native),
            key_cert_sign=bool(key_usage is not None and "key_cert_sign" in key_usage.native),
            not_before=validity["not_before"].native,
            not_after=validity["not_after"].native,
        )
    except CmsError:
        raise
    except Exception as exc:
        raise CmsError(f"malformed certificate: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------- SignedData


@dataclass(frozen=True, slots=True)
class SignedDataInfo:
    """A parsed CMS SignedData with its first signer (RFC 5652 §5.1, §5.3).

    ``signed_attrs`` is the DER of the signed attributes re-tagged as ``SET OF`` (``31``), i.e. the
    exact bytes the signature covers (RFC 5652 §5.4); None when the signer has none (then the
    signature covers ``content``). ``message_digest`` and ``content_type_attr`` are the values of
    the two mandatory signed attributes; ``signing_time`` that of the optional one.
    """

    content_type: str
    content: bytes
    digest_algorithms: tuple[str, ...]
    certificates: tuple[bytes, ...]
    signer_count: int
    signer_id: str
    signer_certificate: bytes | None
    digest_algorithm: str
    signature_algorithm: SignatureAlgorithm
    signed_attrs: bytes | None
    content_type_attr: str | None
    message_digest: bytes | None
    signature: bytes
    signing_time: datetime | None = None
    """The optional signing-time signed attribute (RFC 5652 §11.3), timezone-aware."""


def _matches_sid(sid: Any, cert: Any) -> bool:
    try:
        return _matches_sid_strict(sid, cert)
    except Exception:  # a malformed certificate that is not the signer's does not matter
        return False


def _matches_sid_strict(sid: Any, cert: Any) -> bool:
    if sid.name == "issuer_and_serial_number":
        tbs = cert["tbs_certificate"]
        ias = sid.chosen
        return bool(
            int(ias["serial_number"].native) == int(tbs["serial_number"].native)
            and _name_key(ias["issuer"]) == _name_key(tbs["issuer"])
        )
    if sid.name == "subject_key_identifier":
        ski = cert.key_identifier
        return ski is not None and bytes(ski) == bytes(sid.chosen.native)
    return False


_Attributes = tuple[bytes | None, str | None, bytes | None, datetime | None]


def _parse_attributes(signer: Any) -> _Attributes:
    attrs = signer["signed_attrs"]
    if isinstance(attrs, core.Void):
        return None, None, None, None
    content_type: str | None = None
    message_digest: bytes | None = None
    signing_time: datetime | None = None
    seen: set[str] = set()
    for attr in attrs:
        oid = attr["type"].dotted
        if oid in seen and oid in (OID_CONTENT_TYPE_ATTR, OID_MESSAGE_DIGEST_ATTR,
                                   OID_SIGNING_TIME_ATTR):
            raise CmsError(f"signed attribute {oid} appears twice")
        seen.add(oid)
        values = attr["values"]
        if oid == OID_CONTENT_TYPE_ATTR:
            if len(values) != 1:
                raise CmsError("content-type attribute must have exactly one value")
            content_type = core.ObjectIdentifier.load(values[0].dump(), strict=True).dotted
        elif oid == OID_MESSAGE_DIGEST_ATTR:
            if len(values) != 1:
                raise CmsError("message-digest attribute must have exactly one value")
            message_digest = bytes(core.OctetString.load(values[0].dump(), strict=True).native)
        elif oid == OID_SIGNING_TIME_ATTR:
            if len(values) != 1:
                raise CmsError("signing-time attribute must have exactly one value")
            signing_time = _signing_time(values[0].dump())
        else:
            for value in values:  # force parsing of every other attribute value
                value.dump()
    if content_type is None:
        raise CmsError("signed attributes lack the content-type attribute")
    if message_digest is None:
        raise CmsError("signed attributes lack the message-digest attribute")
    contents = attrs.contents
    return (b"\x31" + encode_length(len(contents)) + contents, content_type, message_digest,
            signing_time)


def _signing_time(der: bytes) -> datetime:
    """``Time ::= CHOICE { utcTime, generalTime }`` (RFC 5652 §11.3), as an aware datetime."""
    try:
        time = cms.Time.load(der, strict=True).native
    except Exception as exc:  # asn1crypto raises ValueError and friends on malformed times
        raise CmsError(f"signing-time attribute malformed: {exc}") from exc
    if not isinstance(time, datetime) or time.tzinfo is None:
        raise CmsError("signing-time attribute is not a UTC time")
    return time


def parse_signed_data(
    data: bytes, expected_content_type: str, *, require_signer_certificate: bool = True
) -> SignedDataInfo:
    """Parse a DER ``ContentInfo`` holding SignedData (RFC 5652 §3, §5) with the given eContentType.

    The first signer info is used; its certificate is looked up among the embedded certificates
    by issuer and serial number or by subject key identifier (RFC 5652 §5.3 SignerIdentifier).
    Raises :class:`CmsError` with a specific reason.
    """
    try:
        return _parse_signed_data(data, expected_content_type, require_signer_certificate)
    except CmsError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, KeyError, ...
        raise CmsError(f"malformed CMS: {type(exc).__name__}: {exc}") from exc


def _parse_signed_data(
    data: bytes, expected_content_type: str, require_signer_certificate: bool
) -> SignedDataInfo:
    if not data or data[0] != 0x30:
        raise CmsError("not a DER SEQUENCE (ContentInfo)")
    try:
        info = cms.ContentInfo.load(data, strict=True)
    except ValueError as exc:
        if "trailing" in str(exc).lower() or "extra data" in str(exc).lower():
            raise CmsError("trailing bytes after ContentInfo") from exc
        raise
    if info["content_type"].dotted != OID_SIGNED_DATA:
        raise CmsError(f"ContentInfo is not SignedData but {info['content_type'].dotted}")
    signed = info["content"]
    if not isinstance(signed, cms.SignedData):
        raise CmsError("ContentInfo has no SignedData content")
    signed["version"].native  # noqa: B018 (force parsing)
    digest_algorithms = tuple(
        alg["algorithm"].dotted for alg in signed["digest_algorithms"]
    )
    encap = signed["encap_content_info"]
    econtent_type = encap["content_type"].dotted
    if econtent_type != expected_content_type:
        raise CmsError(
            f"eContentType is {econtent_type}, expected {expected_content_type}"
        )
    econtent_field = encap["content"]
    if isinstance(econtent_field, core.Void):
        raise CmsError("SignedData has no encapsulated content")
    econtent = bytes(econtent_field)

    certs: list[Any] = []
    cert_field = signed["certificates"]
    if not isinstance(cert_field, core.Void):
        for choice in cert_field:
            if choice.name == "certificate":
                certs.append(choice.chosen)  # read lazily: only the signer's matters
    crls = signed["crls"]
    if not isinstance(crls, core.Void):
        len(crls)

    signer_infos = signed["signer_infos"]
    if len(signer_infos) == 0:
        raise CmsError("SignedData has no signer info")
    signer = signer_infos[0]
    signer["version"].native  # noqa: B018 (force parsing)
    sid = signer["sid"]
    if sid.name not in ("issuer_and_serial_number", "subject_key_identifier"):
        raise CmsError(f"unsupported signer identifier {sid.name}")
    sid.native  # noqa: B018 (force parsing)
    digest_algorithm = hash_name_from_oid(signer["digest_algorithm"]["algorithm"].dotted)
    signature_algorithm = parse_signature_algorithm(signer["signature_algorithm"], digest_algorithm)
    signed_attrs, content_type_attr, message_digest, signing_time = _parse_attributes(signer)
    if content_type_attr is not None and content_type_attr != econtent_type:
        raise CmsError(
            f"content-type attribute {content_type_attr} differs from eContentType {econtent_type}"
        )
    if message_digest is not None and len(message_digest) != HASH_LENGTHS[digest_algorithm]:
        raise CmsError(
            f"message-digest attribute of {len(message_digest)} bytes for {digest_algorithm}"
        )
    unsigned = signer["unsigned_attrs"]
    if not isinstance(unsigned, core.Void):
        unsigned.native  # noqa: B018 (force parsing)
    signature = bytes(signer["signature"].native)
    if not signature:
        raise CmsError("empty signature")

    signer_cert = next((c.dump() for c in certs if _matches_sid(sid, c)), None)
    if signer_cert is None and require_signer_certificate:
        if not certs:
            raise CmsError("SignedData carries no certificate")
        raise CmsError("no embedded certificate matches the signer identifier")
    return SignedDataInfo(
        content_type=econtent_type,
        content=econtent,
        digest_algorithms=digest_algorithms,
        certificates=tuple(c.dump() for c in certs),
        signer_count=len(signer_infos),
        signer_id=sid.name,
        signer_certificate=signer_cert,
        digest_algorithm=digest_algorithm,
        signature_algorithm=signature_algorithm,
        signed_attrs=signed_attrs,
        content_type_attr=content_type_attr,
        message_digest=message_digest,
        signature=signature,
        signing_time=signing_time,
    )


# --------------------------------------------------------------------------- EF.SOD


@dataclass(frozen=True, slots=True)
class SecurityObject:
    """A parsed EF.SOD (ICAO 9303-10 §4.6.2).

    ``dg_hashes`` maps data-group number (1..16) to the stored hash; ``hash_algorithm`` is the
    LDSSecurityObject's (``sha256`` ...). ``signer_certificate`` is the Document Signer
    certificate embedded in the SignedData; ``signed_data`` holds the raw pieces passive
    authentication verifies (eContent, signed attributes, signature, algorithms).
    """

    version: int
    hash_algorithm: str
    dg_hashes: dict[int, bytes]
    lds_version: str | None
    unicode_version: str | None
    signer_certificate: x509.Certificate
    signer_certificate_der: bytes
    signed_data: SignedDataInfo
    raw: bytes = field(repr=False)

    @property
    def signer_subject(self) -> str:
        """The Document Signer's subject DN (RFC 4514 string)."""
        return self.signer_certificate.subject.rfc4514_string()


def parse_sod(data: bytes, *, allow_bare_cms: bool = False) -> SecurityObject:
    """Parse EF.SOD: tag ``77`` around a SignedData ContentInfo (ICAO 9303-10 §4.6.2).

    With ``allow_bare_cms`` a ContentInfo without the ``77`` wrapper is accepted too.
    Raises :class:`SodError` with a specific reason for any malformed input.
    """
    try:
        return _parse_sod(bytes(data), allow_bare_cms)
    except SodError:
        raise
    except CmsError as exc:
        raise SodError(exc.reason) from exc
    except Exception as exc:
        raise SodError(f"malformed EF.SOD: {type(exc).__name__}: {exc}") from exc


def _unwrap_77(data: bytes) -> bytes:
    try:
        element = parse_single(data)
    except TlvError as exc:
        if "trailing" in exc.reason:
            raise SodError(f"trailing bytes after EF.SOD: {exc.reason}") from exc
        raise SodError(f"EF.SOD wrapper: {exc.reason}") from exc
    if element.tag != SOD_TAG:
        raise SodError(f"EF.SOD must start with tag 77, found {element.tag:X}")
    return element.value


def _parse_sod(data: bytes, allow_bare_cms: bool) -> SecurityObject:
    if not data:
        raise SodError("empty EF.SOD")
    if data[0] == SOD_TAG:
        cms_bytes = _unwrap_77(data)
    elif allow_bare_cms and data[0] == 0x30:
        cms_bytes = data
    else:
        raise SodError(f"EF.SOD must start with tag 77, found {data[0]:02X}")
    if not cms_bytes:
        raise SodError("EF.SOD wrapper is empty")
    signed = parse_signed_data(cms_bytes, OID_LDS_SECURITY_OBJECT)
    if signed.signed_attrs is None:
        raise SodError("signer info has no signed attributes (mandatory, ICAO 9303-10 §4.6.2.2)")
    assert signed.signer_certificate is not None  # require_signer_certificate=True

    try:
        lds = LDSSecurityObject.load(signed.content, strict=True)
        version = int(lds["version"].native)
        hash_oid = lds["hashAlgorithm"]["algorithm"].dotted
        values = lds["dataGroupHashValues"]
        entries = [
            (int(v["dataGroupNumber"].native), bytes(v["dataGroupHashValue"].native))
            for v in values
        ]
        version_info = lds["ldsVersionInfo"]
        lds_version = unicode_version = None
        if not isinstance(version_info, core.Void):
            lds_version = str(version_info["ldsVersion"].native)
            unicode_version = str(version_info["unicodeVersion"].native)
    except SodError:
        raise
    except Exception as exc:
        raise SodError(f"malformed LDSSecurityObject: {type(exc).__name__}: {exc}") from exc
    if version not in (0, 1):
        raise SodError(f"LDSSecurityObject version {version} is neither v0 nor v1")
    if version == 1 and lds_version is None:
        raise SodError("LDSSecurityObject v1 without ldsVersionInfo")
    if version == 0 and lds_version is not None:
        raise SodError("LDSSecurityObject v0 with ldsVersionInfo")
    hash_algorithm = hash_name_from_oid(hash_oid)
    if not entries:
        raise SodError("LDSSecurityObject lists no data group hash")
    dg_hashes: dict[int, bytes] = {}
    for number, value in entries:
        if not 1 <= number <= MAX_DG_NUMBER:
            raise SodError(f"data group number {number} out of range 1..{MAX_DG_NUMBER}")
        if number in dg_hashes:
            raise SodError(f"duplicate data group number {number}")
        if len(value) != HASH_LENGTHS[hash_algorithm]:
            raise SodError(
                f"hash of DG{number} is {len(value)} bytes, {hash_algorithm} gives "
                f"{HASH_LENGTHS[hash_algorithm]}"
            )
        dg_hashes[number] = value
    try:
        certificate = x509.load_der_x509_certificate(signed.signer_certificate)
    except Exception as exc:
        raise SodError(f"document signer certificate rejected: {exc}") from exc
    return SecurityObject(
        version=version,
        hash_algorithm=hash_algorithm,
        dg_hashes=dg_hashes,
        lds_version=lds_version,
        unicode_version=unicode_version,
        signer_certificate=certificate,
        signer_certificate_der=signed.signer_certificate,
        signed_data=signed,
        raw=data,
    )

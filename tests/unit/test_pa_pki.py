"""A test eMRTD PKI built in-process (CSCA → Document Signer → EF.SOD; master lists), plus tests of
the curve constants and explicit-parameter handling in ``edge_agent.icao.ecparams``.

The builders are imported by the other ``test_pa_*`` modules. Everything is synthetic.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

import pytest
from asn1crypto import algos, cms, core, keys
from asn1crypto import x509 as ax
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from edge_agent.icao import ecparams, sod
from edge_agent.icao.sod import LDSSecurityObject

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OID_SOD = "2.23.136.1.1.1"
OID_ML = "2.23.136.1.1.2"

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}
_HASH_OIDS = {
    "sha1": "1.3.14.3.2.26", "sha224": "2.16.840.1.101.3.4.2.4", "sha256": "2.16.840.1.101.3.4.2.1",
    "sha384": "2.16.840.1.101.3.4.2.2", "sha512": "2.16.840.1.101.3.4.2.3",
}

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# ------------------------------------------------------------------------------------ keys


@cache
def ec_key(curve: str, index: int = 0) -> ec.EllipticCurvePrivateKey:
    del index  # distinct cache entries for distinct keys on the same curve
    return ec.generate_private_key(ecparams.cryptography_curve(curve) or ec.SECP256R1())


@cache
def rsa_key(index: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    del index
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


# ------------------------------------------------------------------------------------ signing


def _pss(hash_name: str) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(_HASHES[hash_name]()), salt_length=_HASHES[hash_name]().digest_size)


def sign(key: PrivateKey, data: bytes, hash_name: str, scheme: str = "default") -> bytes:
    """scheme: default (ECDSA or PKCS#1 v1.5), pss, plain (ECDSA r||s).

    A key object with a ``custom_sign(data, hash_name)`` method signs by itself (curves that
    ``cryptography`` cannot use).
    """
    custom = getattr(key, "custom_sign", None)
    if custom is not None:
        return bytes(custom(data, hash_name))
    h = _HASHES[hash_name]()
    if isinstance(key, rsa.RSAPrivateKey):
        pad = _pss(hash_name) if scheme == "pss" else padding.PKCS1v15()
        return key.sign(data, pad, h)
    der = key.sign(data, ec.ECDSA(h))
    if scheme == "plain":
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return der


def signature_algorithm(key: PrivateKey, hash_name: str, scheme: str = "default") -> dict[str, Any]:
    """asn1crypto SignedDigestAlgorithm value for a key / hash / scheme."""
    if isinstance(key, rsa.RSAPrivateKey):
        if scheme == "pss":
            params = algos.RSASSAPSSParams({
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
                "salt_length": _HASHES[hash_name].digest_size,
            })
            return {"algorithm": "rsassa_pss", "parameters": params}
        return {"algorithm": f"{hash_name}_rsa"}
    if scheme == "plain":
        oid = {"sha1": 1, "sha224": 2, "sha256": 3, "sha384": 4, "sha512": 5}[hash_name]
        return {"algorithm": f"0.4.0.127.0.7.1.1.4.1.{oid}"}
    return {"algorithm": f"{hash_name}_ecdsa"}


# ------------------------------------------------------------------------------------ certificates


def name(cn: str, country: str = "VN") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Ministry of Public Security"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


@dataclass
class Issued:
    key: PrivateKey
    der: bytes
    name: x509.Name

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def make_cert(
    subject: str,
    key: PrivateKey,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    key_cert_sign: bool | None = None,
    hash_name: str = "sha256",
    scheme: str = "default",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    country: str = "VN",
    aki: bool = True,
    serial: int | None = None,
) -> Issued:
    """A certificate for ``key`` signed by ``issuer`` (self-signed when None)."""
    subject_name = name(subject, country)
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.name if issuer else subject_name
    kcs = ca if key_cert_sign is None else key_cert_sign
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=365))
        .not_valid_after(not_after or NOW + timedelta(days=3650))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=kcs, crl_sign=ca,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    if isinstance(signer_key, rsa.RSAPrivateKey) and scheme == "pss":
        cert = builder.sign(signer_key, cast(Any, _HASHES[hash_name]()), rsa_padding=_pss(hash_name))
    else:
        cert = builder.sign(signer_key, cast(Any, _HASHES[hash_name]()))
    return Issued(key, cert.public_bytes(serialization.Encoding.DER), subject_name)


def specified_domain(curve_name: str, compressed: bool = False) -> keys.SpecifiedECDomain:
    c = ecparams.CURVES_BY_NAME[curve_name]
    size = c.byte_length
    if compressed:
        base = bytes([2 | (c.gy & 1)]) + c.gx.to_bytes(size, "big")
    else:
        base = b"\x04" + c.gx.to_bytes(size, "big") + c.gy.to_bytes(size, "big")
    return keys.SpecifiedECDomain({
        "version": "ecdpVer1",
        "field_id": {"field_type": "prime_field", "parameters": c.p},
        "curve": {"a": c.a.to_bytes(size, "big"), "b": c.b.to_bytes(size, "big")},
        "base": base,
        "order": c.n,
        "cofactor": c.h,
    })


def explicit_spki(spki_der: bytes, domain: keys.SpecifiedECDomain) -> keys.PublicKeyInfo:
    spki = keys.PublicKeyInfo.load(spki_der)
    return keys.PublicKeyInfo({
        "algorithm": {
            "algorithm": "ec",
            "parameters": keys.ECDomainParameters(name="specified", value=domain),
        },
        "public_key": spki["public_key"].native,
    })


def with_explicit_params(
    cert: Issued, signer_key: PrivateKey, hash_name: str, domain: keys.SpecifiedECDomain | None = None
) -> Issued:
    """Replace the namedCurve of ``cert``'s EC key by ``specifiedCurve`` parameters and re-sign.

    ``cryptography`` cannot build such a certificate, so the DER is edited with asn1crypto.
    """
    parsed = ax.Certificate.load(cert.der)
    assert isinstance(cert.key, ec.EllipticCurvePrivateKey)
    curve_name = parsed["tbs_certificate"]["subject_public_key_info"]["algorithm"]["parameters"].chosen.native
    canonical = {"brainpoolp256r1": "brainpoolP256r1", "brainpoolp384r1": "brainpoolP384r1",
                 "brainpoolp512r1": "brainpoolP512r1", "secp256r1": "secp256r1"}[curve_name]
    tbs = parsed["tbs_certificate"].copy()
    spki_der = parsed["tbs_certificate"]["subject_public_key_info"].dump()
    tbs["subject_public_key_info"] = explicit_spki(spki_der, domain or specified_domain(canonical))
    return resign(tbs, parsed["signature_algorithm"], signer_key, hash_name, cert)


def resign(
    tbs: ax.TbsCertificate, sig_alg: Any, signer_key: PrivateKey, hash_name: str, cert: Issued,
    scheme: str = "default",
) -> Issued:
    tbs_der = tbs.dump(force=True)
    signature = sign(signer_key, tbs_der, hash_name, scheme)
    new = ax.Certificate({
        "tbs_certificate": ax.TbsCertificate.load(tbs_der),
        "signature_algorithm": sig_alg,
        "signature_value": signature,
    })
    return Issued(cert.key, new.dump(), cert.name)


# ------------------------------------------------------------------------------------ the PKI


@dataclass
class Pki:
    csca_bp512: Issued  # explicit brainpoolP512r1 parameters, ecdsa-with-SHA512 (like VN's CSCA)
    csca_rsa: Issued
    ds_bp256: Issued  # ECDSA brainpoolP256r1 under csca_bp512
    ds_p256: Issued  # ECDSA P-256 under csca_rsa
    ds_rsa: Issued  # RSA PKCS#1 v1.5 under csca_rsa
    ds_pss: Issued  # RSA key, certificate RSASSA-PSS-signed under csca_rsa
    ds_explicit: Issued  # ECDSA brainpoolP256r1 with explicit parameters under csca_bp512
    ml_signer: Issued  # master list signer under csca_rsa
    extra: dict[str, Issued] = field(default_factory=dict)


@cache
def pki() -> Pki:
    named_bp512 = make_cert("CSCA Test Vietnam", ec_key("brainpoolP512r1"), ca=True,
                            hash_name="sha512")
    csca_bp512 = with_explicit_params(named_bp512, named_bp512.key, "sha512")
    csca_rsa = make_cert("CSCA Test RSA", rsa_key(0), ca=True)
    ds_bp256 = make_cert("DS Test BP256", ec_key("brainpoolP256r1"), csca_bp512, hash_name="sha512")
    ds_p256 = make_cert("DS Test P256", ec_key("secp256r1"), csca_rsa)
    ds_rsa = make_cert("DS Test RSA", rsa_key(1), csca_rsa)
    ds_pss = make_cert("DS Test PSS", rsa_key(2), csca_rsa, scheme="pss")
    ds_explicit_named = make_cert("DS Test explicit", ec_key("brainpoolP256r1", 1), csca_bp512,
                                  hash_name="sha512")
    ds_explicit = with_explicit_params(ds_explicit_named, csca_bp512.key, "sha512")
    ml_signer = make_cert("Master List Signer Test", ec_key("secp256r1", 1), csca_rsa)
    return Pki(csca_bp512, csca_rsa, ds_bp256, ds_p256, ds_rsa, ds_pss, ds_explicit, ml_signer)


# ------------------------------------------------------------------------------------ CMS


def sample_dgs() -> dict[int, bytes]:
    return {
        1: bytes.fromhex("615B5F1F58") + b"IDVNM3030012342079303001234<<2" + b"0305152F2805151VNM<<<<<<<<<<<0"
        + b"NGUYEN<<THI<MAI<<<<<<<<<<<<<<<",
        2: b"\x75\x10" + bytes(range(16)),
        13: b"\x6d\x08" + b"synthetc",
        14: b"\x6e\x04abcd",
        15: b"\x6f\x04efgh",
    }


def lds_security_object(
    dgs: dict[int, bytes], hash_name: str = "sha256", *, version: int = 0,
    lds_version: tuple[str, str] | None = None,
) -> bytes:
    values = [
        {"dataGroupNumber": n, "dataGroupHashValue": hashlib.new(hash_name, v).digest()}
        for n, v in sorted(dgs.items())
    ]
    obj: dict[str, Any] = {
        "version": version,
        "hashAlgorithm": {"algorithm": hash_name},
        "dataGroupHashValues": values,
    }
    if lds_version is not None:
        obj["ldsVersionInfo"] = {"ldsVersion": lds_version[0], "unicodeVersion": lds_version[1]}
    return bytes(LDSSecurityObject(obj).dump())


def wrap77(content_info: bytes) -> bytes:
    from edge_agent.icao.tlv import encode_tlv

    return encode_tlv(0x77, content_info)


def signed_data(
    econtent: bytes,
    signer: Issued,
    *,
    econtent_type: str = OID_SOD,
    hash_name: str = "sha256",
    scheme: str = "default",
    sig_hash: str | None = None,
    certificates: list[bytes] | None = None,
    sid: str = "issuer_and_serial_number",
    message_digest: bytes | None = None,
    content_type_attr: str | None = None,
    omit_attrs: tuple[str, ...] = (),
    extra_attrs: list[dict[str, Any]] | None = None,
    no_signed_attrs: bool = False,
    signature_override: bytes | None = None,
    tamper_after_signing: bool = False,
    signer_infos: int = 1,
    sig_alg_override: dict[str, Any] | None = None,
    digest_alg_override: str | None = None,
    outer_type: str = "signed_data",
    detached: bool = False,
) -> bytes:
    """A DER ContentInfo SignedData; keyword switches make the malformed and forged variants."""
    sig_hash = sig_hash or hash_name
    cert = ax.Certificate.load(signer.der)
    if sid == "issuer_and_serial_number":
        sid_value = cms.SignerIdentifier(name="issuer_and_serial_number", value={
            "issuer": cert.issuer, "serial_number": cert.serial_number})
    else:
        sid_value = cms.SignerIdentifier(name="subject_key_identifier", value=cert.key_identifier)
    attrs: list[dict[str, Any]] = []
    if "content_type" not in omit_attrs:
        attrs.append({"type": "content_type", "values": [content_type_attr or econtent_type]})
    if "message_digest" not in omit_attrs:
        md = message_digest if message_digest is not None else hashlib.new(hash_name, econtent).digest()
        attrs.append({"type": "message_digest", "values": [md]})
    attrs.extend(extra_attrs or [])
    signed_attrs = cms.CMSAttributes(attrs)
    to_sign = econtent if no_signed_attrs else b"\x31" + signed_attrs.dump()[1:]
    signature = sign(signer.key, to_sign, sig_hash, scheme)
    if tamper_after_signing:
        attrs.append({"type": "signing_time", "values": [core.UTCTime(NOW)]})
        signed_attrs = cms.CMSAttributes(attrs)
    if signature_override is not None:
        signature = signature_override
    info: dict[str, Any] = {
        "version": "v1" if sid == "issuer_and_serial_number" else "v3",
        "sid": sid_value,
        "digest_algorithm": {"algorithm": digest_alg_override or hash_name},
        "signature_algorithm": sig_alg_override or signature_algorithm(signer.key, sig_hash, scheme),
        "signature": signature,
    }
    if not no_signed_attrs:
        info["signed_attrs"] = signed_attrs
    encap: dict[str, Any] = {"content_type": econtent_type}
    if not detached:
        encap["content"] = core.ParsableOctetString(econtent)
    sd = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": hash_name}],
        "encap_content_info": encap,
        "certificates": [ax.Certificate.load(d) for d in (certificates if certificates is not None else [signer.der])],
        "signer_infos": [cms.SignerInfo(info)] * signer_infos,
    })
    if outer_type != "signed_data":
        return bytes(cms.ContentInfo({"content_type": outer_type, "content": core.OctetString(b"x")}).dump())
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": sd}).dump())


def make_sod(dgs: dict[int, bytes] | None = None, signer: Issued | None = None, *,
             hash_name: str = "sha256", **kw: Any) -> bytes:
    dgs = sample_dgs() if dgs is None else dgs
    signer = signer or pki().ds_bp256
    econtent = kw.pop("econtent", None) or lds_security_object(dgs, hash_name)
    return wrap77(signed_data(econtent, signer, hash_name=hash_name, **kw))


def master_list(csca_ders: list[bytes], signer: Issued, **kw: Any) -> bytes:
    content = cms_master_list_content(csca_ders)
    return signed_data(content, signer, econtent_type=OID_ML, **kw)


def cms_master_list_content(csca_ders: list[bytes], version: int = 0) -> bytes:
    from edge_agent.icao.trust import CscaMasterList

    return bytes(CscaMasterList({
        "version": version, "certList": [ax.Certificate.load(d) for d in csca_ders]}).dump())


def ecdsa_sign_digest(curve: ecparams.CurveParams, d: int, digest: bytes, k: int) -> tuple[int, int]:
    """Textbook ECDSA signing (SEC 1 v2 §4.1.3) for curves cryptography cannot use."""
    point = ecparams.scalar_mult(curve, k, (curve.gx, curve.gy))
    assert point is not None
    r = point[0] % curve.n
    e = int.from_bytes(digest, "big") >> max(0, len(digest) * 8 - curve.n.bit_length())
    s = pow(k, -1, curve.n) * (e + r * d) % curve.n
    return r, s


# ------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("curve", ecparams.CURVES, ids=lambda c: c.name)
def test_curve_constants_are_consistent(curve: ecparams.CurveParams) -> None:
    """G on the curve and n·G = O for every listed curve (catches any mistyped constant)."""
    ecparams.validate_curve(curve)


@pytest.mark.parametrize(
    "curve", [c for c in ecparams.CURVES if ecparams.cryptography_curve(c.name)], ids=lambda c: c.name
)
def test_curve_constants_match_cryptography(curve: ecparams.CurveParams) -> None:
    crypto_curve = ecparams.cryptography_curve(curve.name)
    assert crypto_curve is not None
    key = ec.generate_private_key(crypto_curve)
    numbers = key.public_key().public_numbers()
    assert ecparams.scalar_mult(curve, key.private_numbers().private_value, (curve.gx, curve.gy)) == (
        numbers.x, numbers.y)
    sig = key.sign(b"message", ec.ECDSA(hashes.SHA256()))
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(sig)
    digest = hashlib.sha256(b"message").digest()
    assert ecparams.ecdsa_verify_digest(curve, (numbers.x, numbers.y), digest, r, s)
    assert not ecparams.ecdsa_verify_digest(curve, (numbers.x, numbers.y), digest, r, s ^ 1)


def test_match_named_curve() -> None:
    c = ecparams.CURVES_BY_NAME["brainpoolP512r1"]
    assert ecparams.match_named_curve(c.p, c.a, c.b, c.gx, c.gy, c.n, 1) is c
    assert ecparams.match_named_curve(c.p, c.a + c.p, c.b, c.gx, c.gy, c.n) is c  # unreduced a
    assert ecparams.match_named_curve(c.p, c.a, c.b, c.gx, c.gy, c.n + 2) is None
    assert ecparams.match_named_curve(c.p, c.a, c.b, c.gx, c.gy, c.n, 4) is None


def test_compressed_point_decoding() -> None:
    for c in ecparams.CURVES:
        size = c.byte_length
        compressed = bytes([2 | (c.gy & 1)]) + c.gx.to_bytes(size, "big")
        assert ecparams.decode_point(c, compressed) == (c.gx, c.gy)
    c = ecparams.CURVES_BY_NAME["secp256r1"]
    with pytest.raises(ecparams.CurveError):
        ecparams.decode_point(c, b"\x04" + bytes(64))
    with pytest.raises(ecparams.CurveError):
        ecparams.decode_point(c, b"\x05" + bytes(32))
    with pytest.raises(ecparams.CurveError):
        ecparams.decode_point(c, b"")


def test_validate_curve_rejects_bad_parameters() -> None:
    c = ecparams.CURVES_BY_NAME["brainpoolP256r1"]
    bad = ecparams.CurveParams("x", None, c.p, c.a, c.b, c.gx, c.gy, c.n + 2)
    with pytest.raises(ecparams.CurveError, match="order"):
        ecparams.validate_curve(bad)
    with pytest.raises(ecparams.CurveError, match="not on the curve"):
        ecparams.validate_curve(ecparams.CurveParams("x", None, c.p, c.a, c.b, c.gx, c.gy + 1, c.n))


def test_test_pki_csca_has_explicit_brainpool512_parameters() -> None:
    csca = ax.Certificate.load(pki().csca_bp512.der)
    params = csca["tbs_certificate"]["subject_public_key_info"]["algorithm"]["parameters"]
    # specifiedCurve (RFC 3279 §2.3.5), not a namedCurve OID, whatever a library makes of it
    assert params.name == "specified"
    assert csca["signature_algorithm"]["algorithm"].native == "sha512_ecdsa"
    # the locked cryptography (51.0.1) maps these explicit parameters to the named curve itself,
    # so passive authentication loads and verifies such a CSCA natively
    key = x509.load_der_x509_certificate(pki().csca_bp512.der).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "brainpoolP512r1"
    spki = csca["tbs_certificate"]["subject_public_key_info"].dump()
    loaded = sod.load_public_key(spki)
    assert isinstance(loaded, ec.EllipticCurvePublicKey)
    assert loaded.public_numbers() == key.public_numbers()


@pytest.mark.parametrize(("curve", "native"), [
    ("brainpoolP512r1", True), ("brainpoolP384r1", True), ("brainpoolP320r1", True),
    ("brainpoolP224r1", True), ("secp256r1", True), ("secp224r1", True),
    ("brainpoolP192r1", False), ("brainpoolP160r1", False), ("secp256k1", True),
])
def test_explicit_parameters_go_native_where_cryptography_can(curve: str, native: bool) -> None:
    """cryptography first; explicit secp224r1/secp256k1 map to its named curves; only the
    curves it has no implementation for fall back to the integer arithmetic."""
    c = ecparams.CURVES_BY_NAME[curve]
    d = 0x1234567890ABCDEF % c.n
    point = ecparams.scalar_mult(c, d, (c.gx, c.gy))
    assert point is not None
    size = c.byte_length
    spki = keys.PublicKeyInfo({
        "algorithm": {"algorithm": "ec", "parameters": keys.ECDomainParameters(
            name="specified", value=specified_domain(curve))},
        "public_key": b"\x04" + point[0].to_bytes(size, "big") + point[1].to_bytes(size, "big"),
    }).dump()
    loaded = sod.load_public_key(spki)
    assert isinstance(loaded, ec.EllipticCurvePublicKey) is native
    assert isinstance(loaded, sod.ExplicitEcPublicKey) is not native
    digest = hashlib.sha256(b"signed attributes").digest()
    r, s = ecdsa_sign_digest(c, d, digest, k=0xC0FFEE)
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    algorithm = sod.SignatureAlgorithm("1.2.840.10045.4.3.2", "ecdsa", "sha256")
    sod.verify_signature(loaded, algorithm, b"signed attributes", encode_dss_signature(r, s))
    with pytest.raises(sod.SignatureError):
        sod.verify_signature(loaded, algorithm, b"signed attributez", encode_dss_signature(r, s))


def test_no_import_cycle_between_curve_arithmetic_and_explicit_parameters() -> None:
    import ast
    from pathlib import Path

    root = Path(ecparams.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        return {m for m in found if m.startswith("edge_agent.icao")}

    assert "edge_agent.icao.ecparams" not in imports("ec")
    assert imports("curves") == set()
    assert "edge_agent.icao.ec" in imports("ecparams")

"""SubjectPublicKeyInfo parsing for DG14 and DG15 (ICAO 9303-11 §6.1, §6.2, §9.2.5; RFC 5280
§4.1.2.7; RFC 3279 §2.3.1 RSA, §2.3.5 EC with named or explicit parameters; BSI TR-03111 §4)."""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.icao import der
from edge_agent.icao.ec import NAMED_CURVES, Curve, EcError, Point, curve_for_parameters
from edge_agent.icao.ec import decode_point as _decode_point
from edge_agent.icao.errors import LdsError
from edge_agent.icao.tlv import Tlv

OID_RSA = "1.2.840.113549.1.1.1"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_PRIME_FIELD = "1.2.840.10045.1.1"
OID_PK_DH = "0.4.0.127.0.7.2.2.1.1"
OID_PK_ECDH = "0.4.0.127.0.7.2.2.1.2"
OID_DH_PUBLIC_NUMBER = "1.2.840.10046.2.1"


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    """RSA public key (n, e)."""

    n: int
    e: int

    @property
    def size_bits(self) -> int:
        """Modulus length in bits."""
        return self.n.bit_length()


@dataclass(frozen=True, slots=True)
class EcPublicKey:
    """EC public key: curve domain parameters and a validated point."""

    curve: Curve
    point: Point
    algorithm: str = OID_EC_PUBLIC_KEY


@dataclass(frozen=True, slots=True)
class OtherPublicKey:
    """A key of an algorithm this reader does not use (e.g. DH for Chip Authentication)."""

    algorithm: str
    raw: bytes


PublicKey = RsaPublicKey | EcPublicKey | OtherPublicKey


_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)


def is_probable_prime(n: int) -> bool:
    """Miller-Rabin with the first 13 prime bases (deterministic below 3.3e24, sound above)."""
    if n < 2:
        return False
    for q in _SMALL_PRIMES:
        if n % q == 0:
            return n == q
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for base in _SMALL_PRIMES:
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def parse_ec_parameters(element: Tlv) -> Curve:
    """ECParameters: a named-curve OID or the explicit SEQUENCE (RFC 3279 §2.3.5)."""
    if element.tag == der.TAG_OID:
        oid = der.decode_oid(element.value)
        curve = NAMED_CURVES.get(oid)
        if curve is None:
            raise LdsError(f"unsupported named curve {oid}")
        return curve
    der.expect(element, der.TAG_SEQUENCE, "ECParameters")
    parts = der.children(element, "ECParameters")
    if len(parts) < 5:
        raise LdsError(f"ECParameters with {len(parts)} fields, expected at least 5")
    version, field_id, curve_seq, base, order = parts[:5]
    der.expect(version, der.TAG_INTEGER, "ECParameters version")
    field_parts = der.children(der.expect(field_id, der.TAG_SEQUENCE, "FieldID"), "FieldID")
    if len(field_parts) != 2:
        raise LdsError("FieldID must hold fieldType and parameters")
    field_type = der.decode_oid(der.expect(field_parts[0], der.TAG_OID, "fieldType").value)
    if field_type != OID_PRIME_FIELD:
        raise LdsError(f"unsupported field type {field_type} (only prime fields)")
    p = der.decode_unsigned(der.expect(field_parts[1], der.TAG_INTEGER, "prime p").value)
    curve_parts = der.children(der.expect(curve_seq, der.TAG_SEQUENCE, "Curve"), "Curve")
    if len(curve_parts) < 2:
        raise LdsError("Curve must hold a and b")
    a = int.from_bytes(der.expect(curve_parts[0], der.TAG_OCTET_STRING, "curve a").value, "big")
    b = int.from_bytes(der.expect(curve_parts[1], der.TAG_OCTET_STRING, "curve b").value, "big")
    base_bytes = der.expect(base, der.TAG_OCTET_STRING, "base point").value
    n = der.decode_unsigned(der.expect(order, der.TAG_INTEGER, "order").value)
    h = 1
    if len(parts) > 5:
        h = der.decode_unsigned(der.expect(parts[5], der.TAG_INTEGER, "cofactor").value)
    if p < 5 or p.bit_length() > 1024 or p % 2 == 0:
        raise LdsError("field prime out of range")
    if n < 3 or n.bit_length() > p.bit_length() + 1 or h < 1 or h.bit_length() > 16:
        raise LdsError("curve order or cofactor out of range")
    if not is_probable_prime(p):
        raise LdsError("field modulus p is not prime")
    if not is_probable_prime(n):
        raise LdsError("curve order n is not prime")
    size = (p.bit_length() + 7) // 8
    if len(base_bytes) != 1 + 2 * size or base_bytes[0] != 0x04:
        raise LdsError("base point is not an uncompressed point of the field size")
    gx = int.from_bytes(base_bytes[1:1 + size], "big")
    gy = int.from_bytes(base_bytes[1 + size:], "big")
    curve = curve_for_parameters(p, a, b, gx, gy, n, h)
    try:
        _decode_point(Curve("check", p, a % p, b % p, gx, gy, n, 1), base_bytes)
    except EcError as exc:
        raise LdsError(f"base point invalid: {exc.reason}") from exc
    return curve


def decode_ec_point(curve: Curve, data: bytes) -> Point:
    """Validated point, :class:`LdsError` with the reason otherwise."""
    try:
        return _decode_point(curve, data)
    except EcError as exc:
        raise LdsError(f"EC public key: {exc.reason}") from exc
    except ValueError as exc:  # defensive: arithmetic on degenerate explicit parameters
        raise LdsError(f"EC public key: {exc}") from exc


def parse_spki_element(element: Tlv) -> PublicKey:
    """SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey }."""
    der.expect(element, der.TAG_SEQUENCE, "SubjectPublicKeyInfo")
    parts = der.children(element, "SubjectPublicKeyInfo")
    if len(parts) != 2:
        raise LdsError(f"SubjectPublicKeyInfo with {len(parts)} fields, expected 2")
    alg_parts = der.children(der.expect(parts[0], der.TAG_SEQUENCE, "AlgorithmIdentifier"),
                             "AlgorithmIdentifier")
    if not alg_parts:
        raise LdsError("AlgorithmIdentifier is empty")
    oid = der.decode_oid(der.expect(alg_parts[0], der.TAG_OID, "algorithm").value)
    key_bytes = der.bit_string_bytes(parts[1], "subjectPublicKey")
    if oid == OID_RSA:
        rsa = der.single(key_bytes, der.TAG_SEQUENCE, "RSAPublicKey")
        numbers = der.children(rsa, "RSAPublicKey")
        if len(numbers) != 2:
            raise LdsError("RSAPublicKey must hold modulus and exponent")
        n = der.decode_unsigned(der.expect(numbers[0], der.TAG_INTEGER, "modulus").value)
        e = der.decode_unsigned(der.expect(numbers[1], der.TAG_INTEGER, "exponent").value)
        if n.bit_length() < 512 or n % 2 == 0 or e < 3 or e % 2 == 0:
            raise LdsError("RSA modulus or exponent out of range")
        return RsaPublicKey(n, e)
    if oid in (OID_EC_PUBLIC_KEY, OID_PK_ECDH):
        if len(alg_parts) < 2:
            raise LdsError("EC key without domain parameters")
        curve = parse_ec_parameters(alg_parts[1])
        return EcPublicKey(curve, decode_ec_point(curve, key_bytes), oid)
    return OtherPublicKey(oid, element.raw)


def parse_subject_public_key_info(data: bytes) -> PublicKey:
    """Parse a DER SubjectPublicKeyInfo (the whole input must be one element)."""
    return parse_spki_element(der.single(data, der.TAG_SEQUENCE, "SubjectPublicKeyInfo"))

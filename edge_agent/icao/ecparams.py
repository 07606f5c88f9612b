"""Explicit-parameter EC keys that ``cryptography`` refuses: mapping and fallback verification.

Many CSCA and Document Signer certificates (the Vietnamese CSCA among them, docs/cccd.md §7) carry
their EC public key with *explicit* domain parameters (``specifiedCurve``, SEC 1 v2 §C.2 / RFC 3279
§2.3.5) instead of a ``namedCurve`` OID; ICAO 9303-11 §9.2 and BSI TR-03111 §4.1 allow this.

Measured with the locked ``cryptography`` 51.0.1: it now loads explicit parameters that map to
secp256r1, secp384r1, secp521r1 and brainpoolP224r1 … P512r1 (so the Vietnamese-style
brainpoolP512r1 CSCA), and verifies ECDSA with them natively (2.5 ms per brainpoolP512r1
verification against 26 ms in pure Python; key loading 0.02 ms against 0.17 ms). It refuses
brainpoolP160r1/P192r1, explicit secp192r1/secp224r1/secp256k1 and any other explicit curve.
:func:`edge_agent.icao.sod.load_public_key` therefore asks ``cryptography`` first and comes here
only for what it refuses. This module

* maps explicit parameters to a named curve of :mod:`.curves` by comparing p, a, b, G, n (and h
  when present), so explicit secp192r1/secp224r1 still verify natively under the named curve,
* verifies ECDSA with the integer arithmetic of :mod:`.ec` (SEC 1 v2 §4.1.4) for the curves left
  (brainpoolP160r1/P192r1, validated non-standard curves). That arithmetic stays anyway: PACE's
  Generic Mapping needs a non-standard generator no library API offers (ICAO 9303-11 §4.4.3.3.1),
  so this fallback costs only the few functions below.

Everything here handles public data only (verification); no constant-time care is needed.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.icao import ec as _ec
from edge_agent.icao.curves import CURVES, CURVES_BY_NAME, CURVES_BY_OID, CurveParams
from edge_agent.icao.errors import IcaoError


class CurveError(IcaoError, ValueError):
    """Invalid or unsupported elliptic-curve parameters or point."""


_CRYPTOGRAPHY_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "brainpoolP256r1": ec.BrainpoolP256R1,
    "brainpoolP384r1": ec.BrainpoolP384R1,
    "brainpoolP512r1": ec.BrainpoolP512R1,
    "secp192r1": ec.SECP192R1,
    "secp224r1": ec.SECP224R1,
    "secp256r1": ec.SECP256R1,
    "secp384r1": ec.SECP384R1,
    "secp521r1": ec.SECP521R1,
    "secp256k1": ec.SECP256K1,
}


def cryptography_curve(name: str) -> ec.EllipticCurve | None:
    """The ``cryptography`` curve object for a named curve, or None when it has none."""
    cls = _CRYPTOGRAPHY_CURVES.get(name)
    return cls() if cls is not None else None


def match_named_curve(
    p: int, a: int, b: int, gx: int, gy: int, n: int, h: int | None = None
) -> CurveParams | None:
    """The known curve with exactly these domain parameters, or None.

    All of p, a, b, G and n must be equal (a and b compared modulo p, since an encoder may
    write them unreduced); the cofactor, when given, must match too.
    """
    for curve in CURVES:
        if (
            curve.p == p
            and curve.a == a % p
            and curve.b == b % p
            and curve.gx == gx
            and curve.gy == gy
            and curve.n == n
            and (h is None or curve.h == h)
        ):
            return curve
    return None


def decode_point(curve: CurveParams, data: bytes) -> tuple[int, int]:
    """Decode an octet-string point (SEC 1 v2 §2.3.4), uncompressed or compressed.

    The point at infinity and points not on the curve are rejected.
    """
    size = curve.byte_length
    if not data:
        raise CurveError("empty EC point")
    if data[0] == 0x04:
        if len(data) != 1 + 2 * size:
            raise CurveError(f"uncompressed EC point of {len(data)} bytes, expected {1 + 2 * size}")
        x = int.from_bytes(data[1 : 1 + size], "big")
        y = int.from_bytes(data[1 + size :], "big")
    elif data[0] in (0x02, 0x03):
        if len(data) != 1 + size:
            raise CurveError(f"compressed EC point of {len(data)} bytes, expected {1 + size}")
        x = int.from_bytes(data[1:], "big")
        if x >= curve.p:
            raise CurveError("EC point x coordinate out of range")
        y = _sqrt_mod(curve, (x * x * x + curve.a * x + curve.b) % curve.p)
        if y % 2 != data[0] & 1:
            y = curve.p - y
    else:
        raise CurveError(f"unknown EC point format {data[0]:02X}")
    if not curve.contains(x, y):
        raise CurveError("EC point is not on the curve")
    return x, y


def _sqrt_mod(curve: CurveParams, value: int) -> int:
    """Square root modulo p (Tonelli-Shanks; p ≡ 3 mod 4 takes the shortcut)."""
    p = curve.p
    if value == 0:
        return 0
    if pow(value, (p - 1) // 2, p) != 1:
        raise CurveError("compressed EC point has no square root")
    if p % 4 == 3:
        return pow(value, (p + 1) // 4, p)
    q, s = p - 1, 0
    while q % 2 == 0:
        q //= 2
        s += 1
    z = 2
    while pow(z, (p - 1) // 2, p) != p - 1:
        z += 1
    m, c, t, r = s, pow(z, q, p), pow(value, q, p), pow(value, (q + 1) // 2, p)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2 = t2 * t2 % p
            i += 1
        b = pow(c, 1 << (m - i - 1), p)
        m, c, t, r = i, b * b % p, t * b * b % p, r * b % p
    return r


# --- arithmetic: the Jacobian/wNAF core of edge_agent.icao.ec -----------------------------------


def _arith(curve: CurveParams) -> _ec.Curve:
    cached = _ARITH.get(curve)
    if cached is None:
        cached = _ARITH[curve] = _ec.from_params(curve)
    return cached


_ARITH: dict[CurveParams, _ec.Curve] = {}


def scalar_mult(curve: CurveParams, k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    """k·P in affine coordinates (None for the point at infinity); k is taken modulo n."""
    result = _ec.scalar_mult(_arith(curve), k, _ec.Point(*point))
    return None if result is None else (result.x, result.y)


def ecdsa_verify_digest(
    curve: CurveParams, public_point: tuple[int, int], digest: bytes, r: int, s: int
) -> bool:
    """ECDSA verification of a message digest (SEC 1 v2 §4.1.4, BSI TR-03111 §4.2.1.2).

    The digest is truncated to the bit length of n as the standard requires.
    """
    n = curve.n
    if not (1 <= r < n and 1 <= s < n):
        return False
    if not curve.contains(*public_point):
        return False
    e = int.from_bytes(digest, "big")
    excess = len(digest) * 8 - n.bit_length()
    if excess > 0:
        e >>= excess
    w = pow(s, -1, n)
    u1, u2 = e * w % n, r * w % n
    point = _ec.mul_add(_arith(curve), u1, u2, _ec.Point(*public_point))
    if point is None:
        return False
    return point[0] % n == r


def validate_curve(curve: CurveParams) -> None:
    """Sanity checks on (possibly explicit, attacker-chosen) domain parameters.

    G on the curve, n·G = O, p odd and large enough, 4a³ + 27b² ≠ 0 (SEC 1 v2 §3.1.1.2.1, partial:
    primality of p and n is not tested, which is acceptable for verification only).
    """
    p = curve.p
    if p < 3 or p % 2 == 0 or p.bit_length() < 160:
        raise CurveError("EC field prime is invalid or too small")
    if (4 * pow(curve.a, 3, p) + 27 * curve.b * curve.b) % p == 0:
        raise CurveError("EC curve is singular")
    if not curve.contains(curve.gx, curve.gy):
        raise CurveError("EC base point is not on the curve")
    if curve.n.bit_length() < 160:
        raise CurveError("EC group order is too small")
    if _ec.multiply_unreduced(_arith(curve), curve.n, _ec.Point(curve.gx, curve.gy)) is not None:
        raise CurveError("EC base point does not have the declared order")


__all__ = [
    "CURVES", "CURVES_BY_NAME", "CURVES_BY_OID", "CurveError", "CurveParams", "cryptography_curve",
    "decode_point", "ecdsa_verify_digest", "match_named_curve", "scalar_mult", "validate_curve",
]

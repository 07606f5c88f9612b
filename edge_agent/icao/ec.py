"""Elliptic-curve arithmetic over prime fields, short Weierstrass form ``y² = x³ + ax + b``.

Used by PACE Generic Mapping (ICAO 9303-11 §4.4.3.3.1, the mapped generator G' is not a standard
generator, so an EC library's fixed-generator API cannot do it), Chip Authentication (§6.2) and
ECDSA Active Authentication (§6.1). Domain parameters: RFC 5639 (brainpool), FIPS 186-4 (NIST);
point encoding: BSI TR-03111 §3.2 / SEC 1 §2.3.3 (uncompressed ``04 || X || Y``).

Implementation: Jacobian coordinates internally; variable-base multiplication with a width-5 NAF
and an affine precomputed table (mixed additions); base-point multiplication with a cached
fixed-base comb (radix 16). Python integers only. Not constant time: it is used on the reader
side with ephemeral keys drawn per session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from edge_agent.icao.curves import CURVES_BY_NAME, CurveParams
from edge_agent.icao.errors import IcaoError


class EcError(IcaoError, ValueError):
    """Invalid point, encoding or scalar; ``reason`` says what."""


class Point(NamedTuple):
    """An affine point; the point at infinity is represented by ``None`` where allowed."""

    x: int
    y: int


_Jac = tuple[int, int, int]  # (X, Y, Z), Z == 0 means infinity
_INF: _Jac = (1, 1, 0)


@dataclass(frozen=True, slots=True)
class Curve:
    """Domain parameters of a prime curve (p, a, b, G, n, h)."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int = 1
    _comb: list[list[Point]] = field(default_factory=list, repr=False, compare=False, hash=False)

    @property
    def g(self) -> Point:
        """The standard generator."""
        return Point(self.gx, self.gy)

    @property
    def coordinate_size(self) -> int:
        """Bytes of one coordinate (field element) in an encoding."""
        return (self.p.bit_length() + 7) // 8

    def same_parameters(self, other: Curve) -> bool:
        """Whether two curves have identical domain parameters (names ignored)."""
        return (self.p, self.a % self.p, self.b % self.p, self.gx, self.gy, self.n) == (
            other.p, other.a % other.p, other.b % other.p, other.gx, other.gy, other.n)


def from_params(params: CurveParams) -> Curve:
    """The arithmetic view of a curve from the domain-parameter table in :mod:`.curves`."""
    return Curve(params.name, params.p, params.a, params.b, params.gx, params.gy, params.n,
                 params.h)


BRAINPOOL_P256R1 = from_params(CURVES_BY_NAME["brainpoolP256r1"])
BRAINPOOL_P384R1 = from_params(CURVES_BY_NAME["brainpoolP384r1"])
NIST_P256 = from_params(CURVES_BY_NAME["secp256r1"])
NIST_P384 = from_params(CURVES_BY_NAME["secp384r1"])

NAMED_CURVES: dict[str, Curve] = {
    "1.3.36.3.3.2.8.1.1.7": BRAINPOOL_P256R1,
    "1.3.36.3.3.2.8.1.1.11": BRAINPOOL_P384R1,
    "1.2.840.10045.3.1.7": NIST_P256,
    "1.3.132.0.34": NIST_P384,
}
"""Named-curve OIDs (RFC 5639 §4.1, RFC 5480 §2.1.1.1) of the curves this module knows."""


def curve_for_parameters(p: int, a: int, b: int, gx: int, gy: int, n: int, h: int = 1) -> Curve:
    """The known curve with these explicit parameters, or a new anonymous :class:`Curve`."""
    candidate = Curve("explicit", p, a % p if p else a, b % p if p else b, gx, gy, n, h)
    for known in NAMED_CURVES.values():
        if known.same_parameters(candidate):
            return known
    return candidate


# --- Jacobian core -------------------------------------------------------------------------


def _jdouble(pt: _Jac, a: int, p: int) -> _Jac:
    x, y, z = pt
    if not z or not y:
        return _INF
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = (3 * x * x + a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    z3 = 2 * y * z % p
    return (x3, y3, z3)


def _jadd_affine(pt: _Jac, qx: int, qy: int, a: int, p: int) -> _Jac:
    """Mixed addition: Jacobian ``pt`` + affine ``(qx, qy)``."""
    x1, y1, z1 = pt
    if not z1:
        return (qx, qy, 1)
    z1z1 = z1 * z1 % p
    h = (qx * z1z1 - x1) % p
    r = (qy * z1z1 * z1 - y1) % p
    if not h:
        if not r:
            return _jdouble(pt, a, p)
        return _INF
    hh = h * h % p
    hhh = h * hh % p
    v = x1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - y1 * hhh) % p
    return (x3, y3, z1 * h % p)


def _jadd(p1: _Jac, p2: _Jac, a: int, p: int) -> _Jac:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if not z1:
        return p2
    if not z2:
        return p1
    z1z1 = z1 * z1 % p
    z2z2 = z2 * z2 % p
    u1 = x1 * z2z2 % p
    u2 = x2 * z1z1 % p
    s1 = y1 * z2 * z2z2 % p
    s2 = y2 * z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if not h:
        if not r:
            return _jdouble(p1, a, p)
        return _INF
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    return (x3, y3, z1 * z2 * h % p)


def _to_affine(pt: _Jac, p: int) -> Point | None:
    x, y, z = pt
    if not z:
        return None
    zi = pow(z, -1, p)
    zi2 = zi * zi % p
    return Point(x * zi2 % p, y * zi2 * zi % p)


def _batch_to_affine(points: list[_Jac], p: int) -> list[Point]:
    """Montgomery's trick: one inversion for all (none may be infinity)."""
    prefix = []
    acc = 1
    for _x, _y, z in points:
        prefix.append(acc)
        acc = acc * z % p
    inv = pow(acc, -1, p)
    out: list[Point] = [Point(0, 0)] * len(points)
    for i in range(len(points) - 1, -1, -1):
        x, y, z = points[i]
        zi = inv * prefix[i] % p
        inv = inv * z % p
        zi2 = zi * zi % p
        out[i] = Point(x * zi2 % p, y * zi2 * zi % p)
    return out


def _wnaf(k: int, width: int) -> list[int]:
    digits = []
    full = 1 << width
    half = full >> 1
    while k:
        if k & 1:
            d = k & (full - 1)
            if d >= half:
                d -= full
            k -= d
        else:
            d = 0
        digits.append(d)
        k >>= 1
    return digits


_WIDTH = 5


def _mul_var(curve: Curve, k: int, pt: Point) -> _Jac:
    p, a = curve.p, curve.a
    # odd multiples P, 3P, ..., 15P in affine
    two_p = _jdouble((pt.x, pt.y, 1), a, p)
    table_j: list[_Jac] = [(pt.x, pt.y, 1)]
    for _ in range((1 << (_WIDTH - 2)) - 1):
        table_j.append(_jadd(table_j[-1], two_p, a, p))
    if any(not z for _, _, z in table_j):
        # small-order corner case (cannot happen for a point of large prime order)
        acc = _INF
        for bit in bin(k)[2:]:
            acc = _jdouble(acc, a, p)
            if bit == "1":
                acc = _jadd_affine(acc, pt.x, pt.y, a, p)
        return acc
    table = _batch_to_affine(table_j, p)
    acc = _INF
    for d in reversed(_wnaf(k, _WIDTH)):
        acc = _jdouble(acc, a, p) if acc[2] else acc
        if d > 0:
            qx, qy = table[d >> 1]
            acc = _jadd_affine(acc, qx, qy, a, p)
        elif d < 0:
            qx, qy = table[(-d) >> 1]
            acc = _jadd_affine(acc, qx, p - qy, a, p)
    return acc


_COMB_BITS = 4


def _comb_table(curve: Curve) -> list[list[Point]]:
    if curve._comb:
        return curve._comb
    p, a = curve.p, curve.a
    windows = (curve.n.bit_length() + _COMB_BITS - 1) // _COMB_BITS
    base: _Jac = (curve.gx, curve.gy, 1)
    flat: list[_Jac] = []
    for _ in range(windows):
        row = [base]
        for _j in range(2, 1 << _COMB_BITS):
            row.append(_jadd(row[-1], base, a, p))
        flat.extend(row)
        base = _jadd(row[-1], base, a, p)
    affine = _batch_to_affine(flat, p)
    per = (1 << _COMB_BITS) - 1
    curve._comb.extend(affine[i * per:(i + 1) * per] for i in range(windows))
    return curve._comb


def _mul_base(curve: Curve, k: int) -> _Jac:
    table = _comb_table(curve)
    p, a = curve.p, curve.a
    acc = _INF
    mask = (1 << _COMB_BITS) - 1
    i = 0
    while k:
        d = k & mask
        if d:
            qx, qy = table[i][d - 1]
            acc = _jadd_affine(acc, qx, qy, a, p)
        k >>= _COMB_BITS
        i += 1
    return acc


# --- public API ----------------------------------------------------------------------------


def precompute(curve: Curve) -> None:
    """Build the fixed-base table for ``curve`` now (about 30 ms once per process for a 256-bit
    curve) so that the first card read does not pay for it; call at agent start-up."""
    _comb_table(curve)


def is_on_curve(curve: Curve, pt: Point) -> bool:
    """Whether ``pt`` has coordinates in [0, p) and satisfies the curve equation."""
    p = curve.p
    x, y = pt
    if not (0 <= x < p and 0 <= y < p):
        return False
    return (y * y - (x * x * x + curve.a * x + curve.b)) % p == 0


def point_add(curve: Curve, p1: Point | None, p2: Point | None) -> Point | None:
    """P1 + P2 (``None`` is the point at infinity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    return _to_affine(_jadd_affine((p1.x, p1.y, 1), p2.x, p2.y, curve.a, curve.p), curve.p)


def point_double(curve: Curve, pt: Point | None) -> Point | None:
    """2P."""
    if pt is None:
        return None
    return _to_affine(_jdouble((pt.x, pt.y, 1), curve.a, curve.p), curve.p)


def point_negate(curve: Curve, pt: Point | None) -> Point | None:
    """-P."""
    if pt is None:
        return None
    return Point(pt.x, (-pt.y) % curve.p)


def scalar_mult(curve: Curve, k: int, pt: Point | None = None) -> Point | None:
    """k·P (k·G when ``pt`` is None); ``None`` when the result is the point at infinity.

    ``k`` is reduced modulo n, so ``pt`` must lie in the subgroup of order n (true for every
    point on a cofactor-1 curve such as brainpoolP256r1).
    """
    k %= curve.n
    if not k:
        return None
    if pt is None or (pt.x == curve.gx and pt.y == curve.gy):
        return _to_affine(_mul_base(curve, k), curve.p)
    return _to_affine(_mul_var(curve, k, pt), curve.p)


def random_scalar(curve: Curve, rng: Callable[[int], bytes]) -> int:
    """A private key in [1, n) by rejection sampling (BSI TR-03111 §4.1.1, "testing candidates")."""
    size = (curve.n.bit_length() + 7) // 8
    for _ in range(64):
        k = int.from_bytes(rng(size), "big")
        if 1 <= k < curve.n:
            return k
    raise EcError("random source did not yield a private key in range")


def multiply_unreduced(curve: Curve, k: int, pt: Point) -> Point | None:
    """k·P without reducing k modulo n: checks that an untrusted base point has order n."""
    if k <= 0:
        return None
    return _to_affine(_mul_var(curve, k, pt), curve.p)


def mul_add(curve: Curve, k1: int, k2: int, pt: Point) -> Point | None:
    """k1·G + k2·P (for ECDSA verification and the GM mapping)."""
    k1 %= curve.n
    k2 %= curve.n
    acc = _mul_base(curve, k1) if k1 else _INF
    other = _mul_var(curve, k2, pt) if k2 else _INF
    return _to_affine(_jadd(acc, other, curve.a, curve.p), curve.p)


def public_key(curve: Curve, private: int) -> Point:
    """The public point of ``private`` (1 ≤ private < n) on the standard generator."""
    if not 1 <= private < curve.n:
        raise EcError("private key out of range 1..n-1")
    pt = scalar_mult(curve, private)
    assert pt is not None
    return pt


def encode_point(curve: Curve, pt: Point) -> bytes:
    """Uncompressed encoding ``04 || X || Y`` (coordinates left-padded to the field size)."""
    size = curve.coordinate_size
    return b"\x04" + pt.x.to_bytes(size, "big") + pt.y.to_bytes(size, "big")


def decode_point(curve: Curve, data: bytes) -> Point:
    """Decode and validate an uncompressed point; :class:`EcError` with a reason otherwise.

    Rejects other encodings, wrong lengths, coordinates ≥ p, points not on the curve and (for
    curves with a cofactor) points outside the prime-order subgroup.
    """
    size = curve.coordinate_size
    if not data:
        raise EcError("empty point encoding")
    if data[0] != 0x04:
        if data[0] in (0x02, 0x03):
            raise EcError("compressed points are not supported")
        if data == b"\x00":
            raise EcError("point at infinity")
        raise EcError(f"unknown point format {data[0]:02X}")
    if len(data) != 1 + 2 * size:
        raise EcError(f"uncompressed point of {len(data)} bytes, expected {1 + 2 * size}")
    x = int.from_bytes(data[1:1 + size], "big")
    y = int.from_bytes(data[1 + size:], "big")
    if x >= curve.p or y >= curve.p:
        raise EcError("coordinate not below the field prime")
    pt = Point(x, y)
    if not is_on_curve(curve, pt):
        raise EcError("point is not on the curve")
    if curve.h != 1 and _to_affine(_mul_var(curve, curve.n, pt), curve.p) is not None:
        raise EcError("point is not in the prime-order subgroup")
    return pt


def ecdh_x(curve: Curve, private: int, peer: Point) -> bytes:
    """The x coordinate of ``private · peer`` as a field-size byte string (BSI TR-03111 ECKA)."""
    shared = scalar_mult(curve, private, peer)
    if shared is None:
        raise EcError("shared point is the point at infinity")
    return shared.x.to_bytes(curve.coordinate_size, "big")

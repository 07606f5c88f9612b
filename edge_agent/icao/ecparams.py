"""Elliptic-curve domain parameters and explicit-parameter keys for passive authentication.

Many CSCA and Document Signer certificates (the Vietnamese CSCA among them, see CCCD.md §7) carry
their EC public key with *explicit* domain parameters (``specifiedCurve``, SEC 1 v2 §C.2 / RFC 3279
§2.3.5) instead of a ``namedCurve`` OID. ICAO 9303-11 §9.2 and BSI TR-03111 §4.1 allow this;
``cryptography`` refuses such keys. This module

* holds the constants of the curves used by eMRTD PKIs: Brainpool ``r1`` curves (RFC 5639 §3)
  and the NIST / SEC 2 prime curves (FIPS 186-4 §D.1.2, SEC 2 v2 §2),
* maps explicit parameters to a named curve by comparing p, a, b, G, n (and h when present),
* verifies ECDSA with plain integer arithmetic (SEC 1 v2 §4.1.4) when the curve is not one
  ``cryptography`` implements (explicit parameters of an unlisted curve, brainpoolP224r1, ...).

Everything here handles public data only (verification); no constant-time care is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from edge_agent.icao.errors import IcaoError


class CurveError(IcaoError, ValueError):
    """Invalid or unsupported elliptic-curve parameters or point."""


@dataclass(frozen=True, slots=True)
class CurveParams:
    """Short Weierstrass prime curve y² = x³ + ax + b over GF(p), generator G of order n."""

    name: str
    oid: str | None
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int = 1

    @property
    def byte_length(self) -> int:
        """Length of a field element in bytes."""
        return (self.p.bit_length() + 7) // 8

    def contains(self, x: int, y: int) -> bool:
        """Whether (x, y) is an affine point of the curve (SEC 1 v2 §3.2.2.1 step 2-3)."""
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0


def _h(text: str) -> int:
    return int(text.replace(" ", ""), 16)


_NIST_P192 = _h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF")
_NIST_P224 = _h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001")
_NIST_P256 = _h("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF")
_NIST_P384 = _h(
    "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF"
)
_NIST_P521 = (1 << 521) - 1

CURVES: tuple[CurveParams, ...] = (
    # RFC 5639 §3.1-3.7 (the "r1" curves; ICAO 9303-11 §9.5.1 standardized domain parameters)
    CurveParams(
        "brainpoolP160r1", "1.3.36.3.3.2.8.1.1.1",
        p=_h("E95E4A5F737059DC60DFC7AD95B3D8139515620F"),
        a=_h("340E7BE2A280EB74E2BE61BADA745D97E8F7C300"),
        b=_h("1E589A8595423412134FAA2DBDEC95C8D8675E58"),
        gx=_h("BED5AF16EA3F6A4F62938C4631EB5AF7BDBCDBC3"),
        gy=_h("1667CB477A1A8EC338F94741669C976316DA6321"),
        n=_h("E95E4A5F737059DC60DF5991D45029409E60FC09"),
    ),
    CurveParams(
        "brainpoolP192r1", "1.3.36.3.3.2.8.1.1.3",
        p=_h("C302F41D932A36CDA7A3463093D18DB78FCE476DE1A86297"),
        a=_h("6A91174076B1E0E19C39C031FE8685C1CAE040E5C69A28EF"),
        b=_h("469A28EF7C28CCA3DC721D044F4496BCCA7EF4146FBF25C9"),
        gx=_h("C0A0647EAAB6A48753B033C56CB0F0900A2F5C4853375FD6"),
        gy=_h("14B690866ABD5BB88B5F4828C1490002E6773FA2FA299B8F"),
        n=_h("C302F41D932A36CDA7A3462F9E9E916B5BE8F1029AC4ACC1"),
    ),
    CurveParams(
        "brainpoolP224r1", "1.3.36.3.3.2.8.1.1.5",
        p=_h("D7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF"),
        a=_h("68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43"),
        b=_h("2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B"),
        gx=_h("0D9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D"),
        gy=_h("58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD"),
        n=_h("D7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F"),
    ),
    CurveParams(
        "brainpoolP256r1", "1.3.36.3.3.2.8.1.1.7",
        p=_h("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377"),
        a=_h("7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9"),
        b=_h("26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6"),
        gx=_h("8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262"),
        gy=_h("547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997"),
        n=_h("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7"),
    ),
    CurveParams(
        "brainpoolP320r1", "1.3.36.3.3.2.8.1.1.9",
        p=_h("D35E472036BC4FB7E13C785ED201E065F98FCFA6F6F40DEF4F92B9EC7893EC28FCD412B1F1B32E27"),
        a=_h("3EE30B568FBAB0F883CCEBD46D3F3BB8A2A73513F5EB79DA66190EB085FFA9F492F375A97D860EB4"),
        b=_h("520883949DFDBC42D3AD198640688A6FE13F41349554B49ACC31DCCD884539816F5EB4AC8FB1F1A6"),
        gx=_h("43BD7E9AFB53D8B85289BCC48EE5BFE6F20137D10A087EB6E7871E2A10A599C710AF8D0D39E20611"),
        gy=_h("14FDD05545EC1CC8AB4093247F77275E0743FFED117182EAA9C77877AAAC6AC7D35245D1692E8EE1"),
        n=_h("D35E472036BC4FB7E13C785ED201E065F98FCFA5B68F12A32D482EC7EE8658E98691555B44C59311"),
    ),
    CurveParams(
        "brainpoolP384r1", "1.3.36.3.3.2.8.1.1.11",
        p=_h(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123"
            "ACD3A729901D1A71874700133107EC53"
        ),
        a=_h(
            "7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F"
            "8AA5814A503AD4EB04A8C7DD22CE2826"
        ),
        b=_h(
            "04A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D5"
            "7CB4390295DBC9943AB78696FA504C11"
        ),
        gx=_h(
            "1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8"
            "E826E03436D646AAEF87B2E247D4AF1E"
        ),
        gy=_h(
            "8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF9912928"
            "0E4646217791811142820341263C5315"
        ),
        n=_h(
            "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7"
            "CF3AB6AF6B7FC3103B883202E9046565"
        ),
    ),
    CurveParams(
        "brainpoolP512r1", "1.3.36.3.3.2.8.1.1.13",
        p=_h(
            "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330871"
            "7D4D9B009BC66842AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3"
        ),
        a=_h(
            "7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC"
            "2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA"
        ),
        b=_h(
            "3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A7"
            "2BF2C7B9E7C1AC4D77FC94CADC083E67984050B75EBAE5DD2809BD638016F723"
        ),
        gx=_h(
            "81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098E"
            "FF3B1F78E2D0D48D50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822"
        ),
        gy=_h(
            "7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111"
            "B2DCDE494A5F485E5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892"
        ),
        n=_h(
            "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870"
            "553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069"
        ),
    ),
    # FIPS 186-4 §D.1.2 / SEC 2 v2 §2.5-2.9
    CurveParams(
        "secp192r1", "1.2.840.10045.3.1.1",
        p=_NIST_P192, a=_NIST_P192 - 3,
        b=_h("64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1"),
        gx=_h("188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012"),
        gy=_h("07192B95FFC8DA78631011ED6B24CDD573F977A11E794811"),
        n=_h("FFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831"),
    ),
    CurveParams(
        "secp224r1", "1.3.132.0.33",
        p=_NIST_P224, a=_NIST_P224 - 3,
        b=_h("B4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4"),
        gx=_h("B70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21"),
        gy=_h("BD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34"),
        n=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D"),
    ),
    CurveParams(
        "secp256r1", "1.2.840.10045.3.1.7",
        p=_NIST_P256, a=_NIST_P256 - 3,
        b=_h("5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B"),
        gx=_h("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"),
        gy=_h("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"),
        n=_h("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"),
    ),
    CurveParams(
        "secp384r1", "1.3.132.0.34",
        p=_NIST_P384, a=_NIST_P384 - 3,
        b=_h(
            "B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A"
            "C656398D8A2ED19D2A85C8EDD3EC2AEF"
        ),
        gx=_h(
            "AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A38"
            "5502F25DBF55296C3A545E3872760AB7"
        ),
        gy=_h(
            "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C0"
            "0A60B1CE1D7E819D7A431D7C90EA0E5F"
        ),
        n=_h(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973"
        ),
    ),
    CurveParams(
        "secp521r1", "1.3.132.0.35",
        p=_NIST_P521, a=_NIST_P521 - 3,
        b=_h(
            "0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF1"
            "09E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B50"
            "3F00"
        ),
        gx=_h(
            "00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D"
            "3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5"
            "BD66"
        ),
        gy=_h(
            "011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E"
            "662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD1"
            "6650"
        ),
        n=_h(
            "01FF" + "FFFFFFFF" * 7
            + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"
        ),
    ),
    CurveParams(
        "secp256k1", "1.3.132.0.10",
        p=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F"),
        a=0, b=7,
        gx=_h("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798"),
        gy=_h("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"),
        n=_h("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"),
    ),
)

CURVES_BY_NAME: dict[str, CurveParams] = {c.name: c for c in CURVES}
CURVES_BY_OID: dict[str, CurveParams] = {c.oid: c for c in CURVES if c.oid}

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


from edge_agent.icao import ec as _ec  # noqa: E402  (ec imports this module's curve table)

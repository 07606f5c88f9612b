"""EC arithmetic (short Weierstrass, Jacobian) checked against `cryptography` and group laws."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec as cec
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.icao import ec
from edge_agent.icao.ec import BRAINPOOL_P256R1 as BP

CURVES = [
    (ec.BRAINPOOL_P256R1, cec.BrainpoolP256R1()),
    (ec.BRAINPOOL_P384R1, cec.BrainpoolP384R1()),
    (ec.NIST_P256, cec.SECP256R1()),
    (ec.NIST_P384, cec.SECP384R1()),
]
scalars = st.integers(min_value=1, max_value=BP.n - 1)


@pytest.mark.parametrize(("curve", "reference"), CURVES, ids=lambda c: getattr(c, "name", ""))
def test_against_cryptography(curve: ec.Curve, reference: cec.EllipticCurve) -> None:
    assert ec.is_on_curve(curve, curve.g)
    assert ec.scalar_mult(curve, curve.n) is None
    assert ec.scalar_mult(curve, curve.n - 1) == ec.point_negate(curve, curve.g)
    for k in (1, 2, 3, 0xDEADBEEF, curve.n // 3, curve.n - 2):
        numbers = cec.derive_private_key(k, reference).public_key().public_numbers()
        assert ec.scalar_mult(curve, k) == (numbers.x, numbers.y)
        assert ec.scalar_mult(curve, k, ec.scalar_mult(curve, 1, curve.g)) == (numbers.x,
                                                                                numbers.y)
    q = ec.scalar_mult(curve, 7)
    assert q is not None
    other = cec.derive_private_key(11, reference)
    peer = cec.EllipticCurvePublicNumbers(q.x, q.y, reference).public_key()
    assert ec.ecdh_x(curve, 11, q) == other.exchange(cec.ECDH(), peer)


@settings(max_examples=40, deadline=None)
@given(scalars, scalars)
def test_group_laws(a: int, b: int) -> None:
    pa = ec.scalar_mult(BP, a)
    pb = ec.scalar_mult(BP, b)
    assert pa is not None and pb is not None
    assert ec.point_add(BP, pa, pb) == ec.scalar_mult(BP, a + b)
    assert ec.point_add(BP, pa, pb) == ec.point_add(BP, pb, pa)
    assert ec.point_double(BP, pa) == ec.scalar_mult(BP, 2 * a)
    assert ec.scalar_mult(BP, b, pa) == ec.scalar_mult(BP, a, pb)
    assert ec.mul_add(BP, a, b, pb) == ec.scalar_mult(BP, a + b * b)
    assert ec.point_add(BP, pa, ec.point_negate(BP, pa)) is None
    assert ec.decode_point(BP, ec.encode_point(BP, pa)) == pa


def test_infinity_handling() -> None:
    g = BP.g
    assert ec.point_add(BP, None, g) == g and ec.point_add(BP, g, None) == g
    assert ec.point_double(BP, None) is None
    assert ec.scalar_mult(BP, 0) is None
    with pytest.raises(ec.EcError, match="out of range"):
        ec.public_key(BP, 0)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty point encoding"),
    (b"\x00", "point at infinity"),
    (b"\x02" + bytes(32), "compressed points are not supported"),
    (b"\x05" + bytes(64), "unknown point format 05"),
    (b"\x04" + bytes(63), "expected 65"),
    (b"\x04" + b"\xff" * 64, "not below the field prime"),
    (b"\x04" + bytes(64), "not on the curve"),
])
def test_decode_rejects(data: bytes, reason: str) -> None:
    with pytest.raises(ec.EcError, match=reason):
        ec.decode_point(BP, data)


def test_explicit_parameters_map_to_named() -> None:
    same = ec.curve_for_parameters(BP.p, BP.a, BP.b, BP.gx, BP.gy, BP.n)
    assert same is BP
    other = ec.curve_for_parameters(23, 1, 1, 3, 10, 7)
    assert other.name == "explicit"


def test_precompute_is_idempotent() -> None:
    ec.precompute(BP)
    table = BP._comb
    ec.precompute(BP)
    assert BP._comb is table and len(table) == 64
    assert ec.scalar_mult(BP, 5) == ec.scalar_mult(BP, 5, BP.g)

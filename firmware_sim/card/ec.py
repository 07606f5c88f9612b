"""Elliptic-curve arithmetic over prime fields in pure Python (Jacobian coordinates).

Needed on the card side for PACE Generic Mapping (ICAO 9303-11 §4.4.3.3.1): the mapped generator
``G' = s·G + H`` is a point that ``cryptography`` cannot produce, so scalar multiplications by
``G'`` are done here. Curve: brainpoolP256r1 (RFC 5639 §3.4), PACE standard parameter 13
(ICAO 9303-11 §9.5.1). Public points are encoded uncompressed (``04 || X || Y``, BSI TR-03111
§3.2.1). Not constant time: a simulator, not a secure element.
"""

from __future__ import annotations

from dataclasses import dataclass

Affine = tuple[int, int]
Jacobian = tuple[int, int, int]


class PointError(ValueError):
    """A point encoding is malformed or the point is not on the curve."""


@dataclass(frozen=True, slots=True)
class Curve:
    """Short Weierstrass curve ``y² = x³ + a·x + b`` over GF(p) with base point ``g`` of order n."""

    name: str
    p: int
    a: int
    b: int
    g: Affine
    n: int
    h: int = 1

    @property
    def size(self) -> int:
        """Field element size in bytes."""
        return (self.p.bit_length() + 7) // 8

    def contains(self, pt: Affine) -> bool:
        """True if ``pt`` lies on the curve (and its coordinates are field elements)."""
        x, y = pt
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0

    # -- Jacobian arithmetic (X/Z², Y/Z³); the point at infinity has Z = 0 -------------------
    def _double(self, pt: Jacobian) -> Jacobian:
        x1, y1, z1 = pt
        p = self.p
        if z1 == 0 or y1 == 0:
            return (1, 1, 0)
        ysq = y1 * y1 % p
        s = 4 * x1 * ysq % p
        z2 = z1 * z1 % p
        m = (3 * x1 * x1 + self.a * z2 * z2) % p
        x3 = (m * m - 2 * s) % p
        y3 = (m * (s - x3) - 8 * ysq * ysq) % p
        z3 = 2 * y1 * z1 % p
        return (x3, y3, z3)

    def _add(self, p1: Jacobian, p2: Jacobian) -> Jacobian:
        x1, y1, z1 = p1
        x2, y2, z2 = p2
        if z1 == 0:
            return p2
        if z2 == 0:
            return p1
        p = self.p
        z1s = z1 * z1 % p
        z2s = z2 * z2 % p
        u1 = x1 * z2s % p
        u2 = x2 * z1s % p
        s1 = y1 * z2s * z2 % p
        s2 = y2 * z1s * z1 % p
        if u1 == u2:
            if s1 != s2:
                return (1, 1, 0)
            return self._double(p1)
        hh = (u2 - u1) % p
        r = (s2 - s1) % p
        h2 = hh * hh % p
        h3 = hh * h2 % p
        u1h2 = u1 * h2 % p
        x3 = (r * r - h3 - 2 * u1h2) % p
        y3 = (r * (u1h2 - x3) - s1 * h3) % p
        z3 = hh * z1 * z2 % p
        return (x3, y3, z3)

    def _to_affine(self, pt: Jacobian) -> Affine | None:
        x, y, z = pt
        if z == 0:
            return None
        zi = pow(z, -1, self.p)
        zi2 = zi * zi % self.p
        return (x * zi2 % self.p, y * zi2 * zi % self.p)

    def multiply(self, k: int, pt: Affine) -> Affine:
        """``k·pt``; raises :class:`PointError` if the result is the point at infinity."""
        k %= self.n
        acc: Jacobian = (1, 1, 0)
        base: Jacobian = (pt[0], pt[1], 1)
        for bit in bin(k)[2:]:
            acc = self._double(acc)
            if bit == "1":
                acc = self._add(acc, base)
        res = self._to_affine(acc)
        if res is None:
            raise PointError("scalar multiplication gave the point at infinity")
        return res

    def add(self, p1: Affine, p2: Affine) -> Affine:
        """``p1 + p2``; raises :class:`PointError` if the result is the point at infinity."""
        res = self._to_affine(self._add((p1[0], p1[1], 1), (p2[0], p2[1], 1)))
        if res is None:
            raise PointError("point addition gave the point at infinity")
        return res

    def encode(self, pt: Affine) -> bytes:
        """Uncompressed encoding ``04 || X || Y`` (BSI TR-03111 §3.2.1)."""
        return b"\x04" + pt[0].to_bytes(self.size, "big") + pt[1].to_bytes(self.size, "big")

    def decode(self, data: bytes) -> Affine:
        """Parse an uncompressed point and check that it lies on the curve."""
        if len(data) != 1 + 2 * self.size or data[0] != 0x04:
            raise PointError("not an uncompressed point of the right size")
        pt = (
            int.from_bytes(data[1 : 1 + self.size], "big"),
            int.from_bytes(data[1 + self.size :], "big"),
        )
        if not self.contains(pt):
            raise PointError("point is not on the curve")
        return pt


BRAINPOOL_P256R1 = Curve(
    name="brainpoolP256r1",
    p=0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
    a=0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
    b=0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
    g=(
        0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
    ),
    n=0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
)

"""Card side of Active Authentication (ICAO 9303-11 §6.1): INTERNAL AUTHENTICATE ``00 88 00 00``.

* ECDSA: plain signature ``r || s`` (BSI TR-03111 §5.2.1) over SHA-256 of the 8-byte challenge;
  DG14 then carries ActiveAuthenticationInfo naming ecdsa-with-SHA256 (§9.2.11).
* RSA: ISO/IEC 9796-2 digital signature scheme 1 with partial message recovery, SHA-1 and trailer
  ``BC``: ``F = 6A || M1 || SHA-1(M1 || RND.IFD) || BC``, signature ``F^d mod n``, where M1 is a
  fresh random recoverable part filling the modulus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from .apdu import SW
from .errors import ISOError

AAKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def internal_authenticate(key: AAKey, challenge: bytes, rng: Callable[[int], bytes]) -> bytes:
    """Sign the terminal's 8-byte challenge as the AA protocol requires."""
    if len(challenge) != 8:
        raise ISOError(SW.WRONG_LENGTH, "AA challenge must be 8 bytes")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = key.sign(challenge, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    numbers = key.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    m1 = rng(k - 22)
    digest = hashlib.sha1(m1 + challenge).digest()  # noqa: S324 - ISO 9796-2 with SHA-1 as deployed
    f = int.from_bytes(b"\x6a" + m1 + digest + b"\xbc", "big")
    # CRT exponentiation
    p, q = numbers.p, numbers.q
    m_p = pow(f, numbers.dmp1, p)
    m_q = pow(f, numbers.dmq1, q)
    h = (numbers.iqmp * (m_p - m_q)) % p
    sig = m_q + h * q
    return sig.to_bytes(k, "big")

"""Active Authentication (ICAO 9303-11 §6.1; signature formats §6.1.2-§6.1.3).

The terminal sends INTERNAL AUTHENTICATE ``00 88 00 00 08 <challenge> 00`` and checks the
chip's signature over the 8-byte challenge with the DG15 public key:

- RSA: ISO/IEC 9796-2 digital signature scheme 1 (partial message recovery). J = s^e mod n;
  the representative is J, or n - J when the chip sent min(s, n - s). It must read
  ``6A || M1 || H || trailer`` with trailer ``BC`` (SHA-1) or ``<hash id> CC``; then
  H = hash(M1 || challenge).
- ECDSA: plain ``r || s`` (BSI TR-03111 §5.2.1) or DER; the hash comes from DG14's
  ActiveAuthenticationInfo signatureAlgorithm or, without it, from the key size (SHA-256 for
  256-bit curves).

Verification returns :class:`AaResult` (truthy when valid) and never raises on garbage.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from edge_agent.icao.apdu import ApduError, CardStatusError, CommandApdu, ResponseApdu
from edge_agent.icao.channel import CardChannel
from edge_agent.icao.ec import mul_add
from edge_agent.icao.errors import LdsError
from edge_agent.icao.public_keys import EcPublicKey, PublicKey, RsaPublicKey
from edge_agent.icao.security_infos import ActiveAuthenticationInfo
from edge_agent.icao.tlv import TlvError, parse_single

Rng = Callable[[int], bytes]

_ISO9796_HASH_IDS = {0x33: "sha1", 0x34: "sha256", 0x35: "sha512", 0x36: "sha384",
                     0x38: "sha224", 0x31: "ripemd160"}
_ECDSA_HASH_BY_OID = {
    "0.4.0.127.0.7.1.1.4.1.1": "sha1", "0.4.0.127.0.7.1.1.4.1.2": "sha224",
    "0.4.0.127.0.7.1.1.4.1.3": "sha256", "0.4.0.127.0.7.1.1.4.1.4": "sha384",
    "0.4.0.127.0.7.1.1.4.1.5": "sha512",
    "1.2.840.10045.4.1": "sha1", "1.2.840.10045.4.3.1": "sha224",
    "1.2.840.10045.4.3.2": "sha256", "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
}


@dataclass(frozen=True, slots=True)
class AaResult:
    """Outcome of Active Authentication; truthy when the signature verified."""

    valid: bool
    reason: str

    def __bool__(self) -> bool:
        return self.valid


def internal_authenticate_command(challenge: bytes) -> CommandApdu:
    """INTERNAL AUTHENTICATE ``00 88 00 00 08 <challenge> 00``."""
    if len(challenge) != 8:
        raise ValueError("the Active Authentication challenge is 8 bytes")
    return CommandApdu(0x00, 0x88, 0x00, 0x00, challenge, le=256)


def _hash(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def verify_rsa(key: RsaPublicKey, challenge: bytes, signature: bytes) -> AaResult:
    """ISO/IEC 9796-2 scheme 1 with message recovery (§6.1.2)."""
    k = (key.n.bit_length() + 7) // 8
    if not signature or len(signature) > k:
        return AaResult(False, f"RSA signature of {len(signature)} bytes for a {k}-byte modulus")
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return AaResult(False, "RSA signature not below the modulus")
    j = pow(s, key.e, key.n)
    if j & 0x0F != 0x0C:
        j = key.n - j
        if j & 0x0F != 0x0C:
            return AaResult(False, "recovered message does not end with a 9796-2 trailer")
    recovered = j.to_bytes(k, "big").lstrip(b"\x00")
    if not recovered or recovered[0] != 0x6A:
        return AaResult(False, "recovered message header is not 6A (partial recovery)")
    if recovered[-1] == 0xBC:
        hash_name, trailer = "sha1", 1
    elif recovered[-1] == 0xCC and len(recovered) >= 2:
        hash_id = recovered[-2]
        if hash_id not in _ISO9796_HASH_IDS:
            return AaResult(False, f"unknown ISO 9796-2 hash identifier {hash_id:02X}")
        hash_name, trailer = _ISO9796_HASH_IDS[hash_id], 2
    else:
        return AaResult(False, f"unknown ISO 9796-2 trailer {recovered[-1]:02X}")
    try:
        digest_size = hashlib.new(hash_name).digest_size
    except ValueError:
        return AaResult(False, f"hash {hash_name} not available")
    body = recovered[1:-trailer]
    if len(body) < digest_size:
        return AaResult(False, "recovered message shorter than the hash")
    m1, digest = body[:-digest_size], body[-digest_size:]
    if not hmac.compare_digest(_hash(hash_name, m1 + challenge), digest):
        return AaResult(False, "hash of M1 || challenge does not match")
    return AaResult(True, f"RSA ISO 9796-2 signature valid ({hash_name})")


def _ecdsa_hash_name(key: EcPublicKey, info: ActiveAuthenticationInfo | None) -> str | None:
    if info is not None:
        return _ECDSA_HASH_BY_OID.get(info.signature_algorithm)
    bits = key.curve.n.bit_length()
    if bits <= 224:
        return "sha224"
    if bits <= 256:
        return "sha256"
    if bits <= 384:
        return "sha384"
    return "sha512"


def _split_ecdsa(signature: bytes, size: int) -> tuple[int, int] | None:
    if len(signature) == 2 * size:
        return int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    if signature[:1] == b"\x30":
        try:
            seq = parse_single(signature, expected_tag=0x30)
            parts = seq.children()
        except TlvError:
            return None
        if len(parts) == 2 and all(p.tag == 0x02 and p.value for p in parts):
            return (int.from_bytes(parts[0].value, "big", signed=True),
                    int.from_bytes(parts[1].value, "big", signed=True))
    return None


def verify_ecdsa(key: EcPublicKey, challenge: bytes, signature: bytes,
                 info: ActiveAuthenticationInfo | None = None) -> AaResult:
    """ECDSA over the challenge (§6.1.3), plain or DER signature."""
    curve = key.curve
    hash_name = _ecdsa_hash_name(key, info)
    if hash_name is None:
        assert info is not None
        return AaResult(False, f"unsupported AA signature algorithm {info.signature_algorithm}")
    size = (curve.n.bit_length() + 7) // 8
    pair = _split_ecdsa(signature, size)
    if pair is None:
        return AaResult(False,
                        f"ECDSA signature of {len(signature)} bytes is neither plain nor DER")
    r, s = pair
    n = curve.n
    if not (1 <= r < n and 1 <= s < n):
        return AaResult(False, "ECDSA r or s out of range")
    digest = _hash(hash_name, challenge)
    e = int.from_bytes(digest, "big")
    excess = len(digest) * 8 - n.bit_length()
    if excess > 0:
        e >>= excess
    w = pow(s, -1, n)
    point = mul_add(curve, e * w, r * w, key.point)
    if point is None or point.x % n != r:
        return AaResult(False, "ECDSA signature does not verify")
    return AaResult(True, f"ECDSA signature valid ({hash_name})")


def verify_active_authentication(public_key: PublicKey, challenge: bytes, signature: bytes,
                                 aa_info: ActiveAuthenticationInfo | None = None) -> AaResult:
    """Verify the chip's answer to INTERNAL AUTHENTICATE; never raises on garbage input."""
    try:
        if isinstance(public_key, RsaPublicKey):
            return verify_rsa(public_key, challenge, signature)
        if isinstance(public_key, EcPublicKey):
            return verify_ecdsa(public_key, challenge, signature, aa_info)
        return AaResult(False, f"unsupported AA key algorithm {public_key.algorithm}")
    except (ValueError, ArithmeticError, LdsError) as exc:  # defensive: never raise on garbage
        return AaResult(False, f"verification error: {exc}")


def active_authenticate(channel: CardChannel, public_key: PublicKey,
                        aa_info: ActiveAuthenticationInfo | None = None,
                        rng: Rng = os.urandom) -> AaResult:
    """Send INTERNAL AUTHENTICATE with a fresh challenge and verify the answer.

    A refused command (any status word but 9000) is a failed result, not an exception.
    """
    challenge = rng(8)
    try:
        raw = channel.transmit(internal_authenticate_command(challenge).to_bytes())
        signature = ResponseApdu.from_bytes(raw).check("INTERNAL AUTHENTICATE")
    except CardStatusError as exc:
        return AaResult(False, str(exc))
    except ApduError as exc:
        return AaResult(False, f"INTERNAL AUTHENTICATE: {exc.reason}")
    return verify_active_authentication(public_key, challenge, signature, aa_info)

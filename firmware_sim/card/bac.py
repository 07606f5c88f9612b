"""Card side of Basic Access Control (ICAO 9303-11 §4.3, worked example Appendix D).

GET CHALLENGE (``00 84 00 00 08``) returns RND.ICC; EXTERNAL/MUTUAL AUTHENTICATE
(``00 82 00 00 28 <E.IFD || M.IFD> 28``) is checked (MAC first, then RND.ICC), answered with
``E.ICC || M.ICC`` and opens a 3DES secure-messaging session whose SSC is
``RND.ICC[4:8] || RND.IFD[4:8]`` (§9.8.2).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from . import crypto
from .apdu import SW
from .errors import ISOError
from .secure_messaging import SMSession


@dataclass(frozen=True, slots=True)
class BacKeys:
    """Document basic access keys derived from the MRZ information (§9.7.2)."""

    k_enc: bytes
    k_mac: bytes

    @classmethod
    def from_mrz(cls, mrz_information: str) -> BacKeys:
        """``K_seed = SHA-1(MRZ_information)[:16]``; ``K_enc``/``K_mac`` = KDF(K_seed, 1 / 2)."""
        seed = crypto.mrz_key_seed(mrz_information)[:16]
        return cls(crypto.kdf(seed, crypto.KDF_ENC), crypto.kdf(seed, crypto.KDF_MAC))


def mutual_authenticate(
    keys: BacKeys, rnd_icc: bytes, k_icc: bytes, data: bytes
) -> tuple[bytes, SMSession]:
    """Check ``E.IFD || M.IFD`` and answer ``E.ICC || M.ICC``; return (response, SM session).

    Raises :class:`ISOError` 6700 for a wrong length and 6300 when the MAC or RND.ICC is wrong.
    """
    if len(data) != 40:
        raise ISOError(SW.WRONG_LENGTH, "EXTERNAL AUTHENTICATE needs 40 bytes")
    e_ifd, m_ifd = data[:32], data[32:]
    if not hmac.compare_digest(crypto.retail_mac(keys.k_mac, crypto.pad(e_ifd)), m_ifd):
        raise ISOError(SW.AUTH_FAILED, "M.IFD does not verify")
    s = crypto.des3_decrypt(keys.k_enc, e_ifd)
    rnd_ifd, rnd_icc_echo, k_ifd = s[:8], s[8:16], s[16:32]
    if not hmac.compare_digest(rnd_icc_echo, rnd_icc):
        raise ISOError(SW.AUTH_FAILED, "RND.ICC not echoed")
    r = rnd_icc + rnd_ifd + k_icc
    e_icc = crypto.des3_encrypt(keys.k_enc, r)
    m_icc = crypto.retail_mac(keys.k_mac, crypto.pad(e_icc))
    seed = crypto.xor(k_ifd, k_icc)
    session = SMSession(
        "3DES",
        crypto.kdf(seed, crypto.KDF_ENC),
        crypto.kdf(seed, crypto.KDF_MAC),
        int.from_bytes(rnd_icc[4:] + rnd_ifd[4:], "big"),
    )
    return e_icc + m_icc, session

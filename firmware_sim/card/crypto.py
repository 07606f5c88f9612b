"""Card-side symmetric crypto helpers on top of ``cryptography``.

* ISO/IEC 9797-1 padding method 2 (``80 00 ..``), used by BAC, PACE and secure messaging.
* 2-key 3DES-CBC with zero IV and the ISO/IEC 9797-1 MAC algorithm 3 ("retail MAC"),
  ICAO 9303-11 §9.8.3 / Appendix D.
* AES-CBC, AES-ECB (SSC → IV) and AES-CMAC (NIST SP 800-38B) truncated to 8 bytes,
  ICAO 9303-11 §9.8.6.
* The key derivation function of ICAO 9303-11 §9.7.1: ``K = H(K_seed || counter)``.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ZERO8 = bytes(8)
ZERO16 = bytes(16)

KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3


class PaddingError(ValueError):
    """ISO/IEC 9797-1 method 2 padding is missing or malformed."""


def pad(data: bytes, block: int = 8) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append 0x80 then zeros up to a block boundary."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad(data: bytes) -> bytes:
    """Remove ISO/IEC 9797-1 method 2 padding; raise :class:`PaddingError` when absent."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) > 15:
        raise PaddingError("bad ISO 9797-1 method 2 padding")
    return stripped[:-1]


def _des3_key(key: bytes) -> bytes:
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 24:
        return key
    raise ValueError("3DES key must be 16 or 24 bytes")


def des3_encrypt(key: bytes, data: bytes, iv: bytes = ZERO8) -> bytes:
    """2-key 3DES in CBC mode (ICAO 9303-11 §9.8.6.1: IV zero)."""
    enc = Cipher(TripleDES(_des3_key(key)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des3_decrypt(key: bytes, data: bytes, iv: bytes = ZERO8) -> bytes:
    """Inverse of :func:`des3_encrypt`."""
    dec = Cipher(TripleDES(_des3_key(key)), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _des_ecb(key8: bytes, block: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())  # noqa: S305 - single DES step of MAC alg 3
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 with DES (ICAO 9303-11 §9.8.3.1). ``data`` is pre-padded.

    Single-DES CBC with K_a over all blocks, then decrypt with K_b and encrypt with K_a.
    """
    if len(data) % 8:
        raise ValueError("retail MAC input must be padded to 8 bytes")
    ka, kb = key[:8], key[8:16]
    h = ZERO8
    for i in range(0, len(data), 8):
        block = bytes(x ^ y for x, y in zip(h, data[i : i + 8], strict=True))
        h = _des_ecb(ka, block)
    h = _des_ecb(kb, h, decrypt=True)
    return _des_ecb(ka, h)


def aes_encrypt(key: bytes, data: bytes, iv: bytes = ZERO16) -> bytes:
    """AES in CBC mode (ICAO 9303-11 §9.8.6.2)."""
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_decrypt(key: bytes, data: bytes, iv: bytes = ZERO16) -> bytes:
    """Inverse of :func:`aes_encrypt`."""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_ecb_block(key: bytes, block: bytes) -> bytes:
    """One AES block in ECB mode: IV = E(KSenc, SSC) for AES secure messaging."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - IV derivation
    return enc.update(block) + enc.finalize()


def aes_cmac(key: bytes, data: bytes, length: int = 8) -> bytes:
    """AES-CMAC (NIST SP 800-38B) truncated to ``length`` bytes (ICAO 9303-11 §9.8.3.2)."""
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()[:length]


def adjust_parity(key: bytes) -> bytes:
    """Set the DES odd-parity bit of each byte (ICAO 9303-11 §9.7.1, 3DES keys)."""
    out = bytearray()
    for byte in key:
        b = byte & 0xFE
        out.append(b | (bin(b).count("1") % 2 == 0))
    return bytes(out)


def kdf(seed: bytes, counter: int, algorithm: str = "3DES", key_bits: int = 128) -> bytes:
    """ICAO 9303-11 §9.7.1 key derivation ``KDF(K, c)``.

    ``3DES`` → SHA-1, 16 bytes with parity adjusted; ``AES`` 128 → SHA-1 (first 16 bytes);
    ``AES`` 192/256 → SHA-256.
    """
    data = seed + counter.to_bytes(4, "big")
    if algorithm == "3DES":
        return adjust_parity(hashlib.sha1(data).digest()[:16])  # noqa: S324 - mandated by ICAO
    if algorithm != "AES":
        raise ValueError(f"unknown algorithm {algorithm}")
    if key_bits == 128:
        return hashlib.sha1(data).digest()[:16]  # noqa: S324 - mandated by ICAO
    return hashlib.sha256(data).digest()[: key_bits // 8]


def mrz_key_seed(mrz_information: str) -> bytes:
    """``K_seed`` / PACE MRZ password: SHA-1 of the MRZ information (9303-11 §4.3.2, §9.7.3)."""
    return hashlib.sha1(mrz_information.encode("ascii")).digest()  # noqa: S324 - ICAO


def xor(a: bytes, b: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings."""
    return bytes(x ^ y for x, y in zip(a, b, strict=True))

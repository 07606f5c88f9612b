"""Symmetric primitives of ICAO 9303-11 §9.7-§9.8: padding, 3DES, retail MAC, AES, CMAC, KDF.

- Padding: ISO/IEC 9797-1 padding method 2 (``80`` then zeros to the block size), §9.8.
- 3DES: two-key EDE in CBC mode (§9.8.6.1), retail MAC = ISO/IEC 9797-1 MAC algorithm 3 with
  single DES and the final 3DES block (§9.8.6.2).
- AES: AES-CBC (§9.8.7.1) and AES-CMAC truncated to 8 bytes (§9.8.7.2, NIST SP 800-38B).
- KDF (§9.7.1): ``H(Z || counter)``; SHA-1 for 3DES (parity-adjusted) and AES-128, SHA-256 for
  AES-192 and AES-256; counter 1 = K_enc, 2 = K_mac, 3 = PACE password key K_pi.
"""

from __future__ import annotations

import hashlib
from enum import Enum

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from edge_agent.icao.errors import IcaoError

KDF_ENC = 1
KDF_MAC = 2
KDF_PI = 3


class PaddingError(IcaoError, ValueError):
    """Bad ISO 9797-1 method 2 padding; ``reason`` says what was wrong."""


class CipherKind(Enum):
    """The block cipher of a secure-messaging session (ICAO 9303-11 §9.8.6 / §9.8.7)."""

    DES3 = "3DES"
    AES128 = "AES-128"
    AES192 = "AES-192"
    AES256 = "AES-256"

    @property
    def block_size(self) -> int:
        """8 for 3DES, 16 for AES."""
        return 8 if self is CipherKind.DES3 else 16

    @property
    def key_length(self) -> int:
        """Session key length in bytes."""
        return {CipherKind.DES3: 16, CipherKind.AES128: 16,
                CipherKind.AES192: 24, CipherKind.AES256: 32}[self]


def pad(data: bytes, block_size: int) -> bytes:
    """ISO/IEC 9797-1 padding method 2: append ``80`` and zeros to a multiple of the block."""
    fill = block_size - 1 - len(data) % block_size
    return data + b"\x80" + bytes(fill)


def unpad(data: bytes, block_size: int = 8) -> bytes:
    """Remove method 2 padding; :class:`PaddingError` with a reason when it is malformed."""
    if not data:
        raise PaddingError("no data to unpad")
    if len(data) % block_size:
        raise PaddingError(f"length {len(data)} is not a multiple of {block_size}")
    stripped = data.rstrip(b"\x00")
    if not stripped:
        raise PaddingError("padding marker 80 missing (all zero)")
    if stripped[-1] != 0x80:
        raise PaddingError(f"padding marker 80 missing (last non-zero byte {stripped[-1]:02X})")
    if len(data) - len(stripped) >= block_size:
        raise PaddingError("padding longer than one block")
    return stripped[:-1]


def _des3_key(key: bytes) -> bytes:
    if len(key) == 16:
        return key + key[:8]
    if len(key) in (8, 24):
        return key * 3 if len(key) == 8 else key
    raise ValueError(f"3DES key of {len(key)} bytes")


def des3_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """Two-key 3DES-CBC encryption of block-aligned data (zero IV by default)."""
    enc = Cipher(TripleDES(_des3_key(key)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def des3_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """Two-key 3DES-CBC decryption of block-aligned data (zero IV by default)."""
    dec = Cipher(TripleDES(_des3_key(key)), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO/IEC 9797-1 MAC algorithm 3 (DES, output 8 bytes) over already padded ``data``.

    Single-DES CBC with K_a over all blocks but the last; the last block goes through
    3DES EDE (K_a, K_b, K_a), which equals DES_Ka(DES^-1_Kb(DES_Ka(...))).
    """
    if len(key) != 16:
        raise ValueError("retail MAC needs a 16-byte key")
    if not data or len(data) % 8:
        raise ValueError("retail MAC input must be padded to a multiple of 8")
    ka = key[:8]
    head, last = data[:-8], data[-8:]
    chain = bytes(8)
    if head:
        enc = Cipher(TripleDES(ka * 3), modes.CBC(bytes(8))).encryptor()
        chain = (enc.update(head) + enc.finalize())[-8:]
    final = Cipher(TripleDES(key + ka), modes.CBC(chain)).encryptor()
    return final.update(last) + final.finalize()


def aes_cbc_encrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES-CBC encryption of block-aligned data."""
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt(key: bytes, data: bytes, iv: bytes = bytes(16)) -> bytes:
    """AES-CBC decryption of block-aligned data."""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def aes_ecb_block(key: bytes, block: bytes) -> bytes:
    """Encrypt one 16-byte block with AES (used for the SM IV, §9.8.7.1)."""
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (one block, as specified)
    return enc.update(block) + enc.finalize()


def aes_cmac(key: bytes, data: bytes, length: int = 8) -> bytes:
    """AES-CMAC (NIST SP 800-38B) truncated to ``length`` bytes (8 in eMRTD SM and PACE)."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:length]


_PARITY = bytes((b & 0xFE) | (((b >> 1).bit_count() + 1) & 1) for b in range(256))


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's least significant bit so the byte has odd parity (DES keys)."""
    return key.translate(_PARITY)


def kdf(shared: bytes, counter: int, cipher: CipherKind) -> bytes:
    """ICAO 9303-11 §9.7.1: ``K = H(shared || counter)`` cut and adjusted for ``cipher``."""
    suffix = counter.to_bytes(4, "big")
    if cipher is CipherKind.DES3:
        return adjust_parity(hashlib.sha1(shared + suffix).digest()[:16])  # noqa: S324
    if cipher is CipherKind.AES128:
        return hashlib.sha1(shared + suffix).digest()[:16]  # noqa: S324
    digest = hashlib.sha256(shared + suffix).digest()
    return digest[: cipher.key_length]


def mrz_information_hash(mrz_information: str) -> bytes:
    """SHA-1 of the MRZ information (document number, DOB, DOE, each with its check digit).

    BAC uses the first 16 bytes as K_seed (§9.7.2); PACE uses all 20 bytes as the input of
    the KDF with counter 3 (§9.7.3). The string is taken as is: no check digit is computed here.
    """
    return hashlib.sha1(mrz_information.encode("ascii")).digest()  # noqa: S324


def bac_key_seed(mrz_information: str) -> bytes:
    """K_seed = first 16 bytes of SHA-1(MRZ information) (§9.7.2)."""
    return mrz_information_hash(mrz_information)[:16]

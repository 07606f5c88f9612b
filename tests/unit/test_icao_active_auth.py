"""Active Authentication (ICAO 9303-11 §6.1): RSA ISO 9796-2 scheme 1 and ECDSA."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.icao import ec
from edge_agent.icao.active_auth import (
    active_authenticate,
    internal_authenticate_command,
    verify_active_authentication,
)
from edge_agent.icao.public_keys import EcPublicKey, OtherPublicKey, RsaPublicKey
from edge_agent.icao.security_infos import ActiveAuthenticationInfo

CHALLENGE = bytes.fromhex("0102030405060708")
RSA_KEY = rsa.generate_private_key(65537, 1024)
RSA_PUB = RsaPublicKey(RSA_KEY.public_key().public_numbers().n, 65537)
EC_KEY = cec.generate_private_key(cec.BrainpoolP256R1())
_num = EC_KEY.public_key().public_numbers()
EC_PUB = EcPublicKey(ec.BRAINPOOL_P256R1, ec.Point(_num.x, _num.y))


def rsa_sign(challenge: bytes, *, hash_name: str = "sha1", minimal: bool = False,
             header: int = 0x6A) -> bytes:
    n = RSA_PUB.n
    d = RSA_KEY.private_numbers().d
    k = (n.bit_length() + 7) // 8
    trailer = b"\xbc" if hash_name == "sha1" else {"sha256": b"\x34\xcc"}[hash_name]
    digest_len = hashlib.new(hash_name).digest_size
    m1 = bytes(range(7, 7 + k - 1 - digest_len - len(trailer)))
    m1 = bytes(b % 256 for b in m1)
    rep = bytes([header]) + m1 + hashlib.new(hash_name, m1 + challenge).digest() + trailer
    s = pow(int.from_bytes(rep, "big"), d, n)
    if minimal:
        s = min(s, n - s)
    return s.to_bytes(k, "big")


def ec_sign(challenge: bytes, *, plain: bool = True) -> bytes:
    der_sig = EC_KEY.sign(challenge, cec.ECDSA(hashes.SHA256()))
    if not plain:
        return der_sig
    r, s = decode_dss_signature(der_sig)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_command() -> None:
    assert internal_authenticate_command(CHALLENGE).to_bytes() == bytes.fromhex(
        "00880000080102030405060708" + "00")


@pytest.mark.parametrize("minimal", [False, True])
@pytest.mark.parametrize("hash_name", ["sha1", "sha256"])
def test_rsa_valid(minimal: bool, hash_name: str) -> None:
    sig = rsa_sign(CHALLENGE, hash_name=hash_name, minimal=minimal)
    result = verify_active_authentication(RSA_PUB, CHALLENGE, sig)
    assert result and hash_name in result.reason


def test_rsa_failures() -> None:
    sig = rsa_sign(CHALLENGE)
    assert verify_active_authentication(RSA_PUB, bytes(8), sig).reason == (
        "hash of M1 || challenge does not match")
    assert "header is not 6A" in verify_active_authentication(
        RSA_PUB, CHALLENGE, rsa_sign(CHALLENGE, header=0x4A)).reason
    assert not verify_active_authentication(RSA_PUB, CHALLENGE, b"")
    assert "not below the modulus" in verify_active_authentication(
        RSA_PUB, CHALLENGE, b"\xff" * 128).reason


def test_ecdsa_valid_plain_and_der() -> None:
    info = ActiveAuthenticationInfo("2.23.136.1.1.5", 1, "0.4.0.127.0.7.1.1.4.1.3")
    assert verify_active_authentication(EC_PUB, CHALLENGE, ec_sign(CHALLENGE), info)
    assert verify_active_authentication(EC_PUB, CHALLENGE, ec_sign(CHALLENGE, plain=False))
    result = verify_active_authentication(EC_PUB, bytes(8), ec_sign(CHALLENGE))
    assert result.reason == "ECDSA signature does not verify"
    unknown = ActiveAuthenticationInfo("2.23.136.1.1.5", 1, "1.2.3")
    assert "unsupported AA signature algorithm" in verify_active_authentication(
        EC_PUB, CHALLENGE, ec_sign(CHALLENGE), unknown).reason
    assert "out of range" in verify_active_authentication(EC_PUB, CHALLENGE, bytes(64)).reason
    assert not verify_active_authentication(OtherPublicKey("1.2.3", b""), CHALLENGE, b"x")


def test_driver() -> None:
    class Chip:
        def transmit(self, apdu: bytes) -> bytes:
            assert apdu[:5] == bytes.fromhex("0088000008")
            return ec_sign(apdu[5:13]) + b"\x90\x00"

    assert active_authenticate(Chip(), EC_PUB)

    class Refusing:
        def transmit(self, apdu: bytes) -> bytes:
            return b"\x69\x82"

    result = active_authenticate(Refusing(), EC_PUB)
    assert not result and "6982" in result.reason


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=10))
def test_garbage_never_raises(signature: bytes, challenge: bytes) -> None:
    assert not verify_active_authentication(RSA_PUB, challenge, signature)
    assert not verify_active_authentication(EC_PUB, challenge, signature)

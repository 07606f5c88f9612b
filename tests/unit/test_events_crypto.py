"""Event identifiers, subjects, signatures and sealed boxes."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.events.ids import Uuid7Generator, uuid7_time_ms
from edge_agent.events.subject import subject_for
from wire.sealing import SealedBox, SealError, open_sealed, seal
from wire.signing import SignatureError, canonical_bytes, sign_event, verify_event

KEY = b"k" * 32


def test_uuid7_layout_and_order_within_one_millisecond() -> None:
    generate = Uuid7Generator(clock_ms=lambda: 1_700_000_000_123)
    ids = [generate() for _ in range(5000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert ids == sorted(ids, key=lambda u: u.bytes)
    assert len(set(ids)) == len(ids)
    assert uuid7_time_ms(ids[0]) == 1_700_000_000_123


def test_uuid7_survives_a_clock_step_back() -> None:
    times = iter([2000, 2000, 1500, 2001])
    generate = Uuid7Generator(clock_ms=lambda: next(times))
    ids = [generate() for _ in range(4)]
    assert ids == sorted(ids, key=lambda u: u.bytes)


def test_subject_is_keyed_and_stable() -> None:
    a = subject_for("079303001234", KEY)
    assert a == subject_for("079303001234", KEY)
    assert a != subject_for("079303001235", KEY)
    assert a != subject_for("079303001234", b"x" * 32)
    assert len(a) == 32 and "1234" not in a
    with pytest.raises(ValueError):
        subject_for("079303001234", b"short")


def test_signature_round_trip_and_tamper() -> None:
    key = Ed25519PrivateKey.generate()
    event = {"v": 1, "event_id": "x", "seq": 7, "kind": "entry", "demo": {"sex": "F"}}
    signed = sign_event(event, key)
    verify_event(signed, key.public_key())
    for change in ({"seq": 8}, {"kind": "exit"}, {"demo": {"sex": "M"}}):
        with pytest.raises(SignatureError, match="does not verify"):
            verify_event({**signed, **change}, key.public_key())
    with pytest.raises(SignatureError, match="no signature"):
        verify_event(event, key.public_key())
    with pytest.raises(SignatureError, match="base64url"):
        verify_event({**signed, "sig": "a+b/"}, key.public_key())
    with pytest.raises(SignatureError, match="does not verify"):
        verify_event(signed, Ed25519PrivateKey.generate().public_key())


def test_canonical_form_is_key_order_independent_and_rejects_floats() -> None:
    assert canonical_bytes({"b": 1, "a": "Nữ"}) == canonical_bytes({"a": "Nữ", "b": 1})
    assert canonical_bytes({"a": "Nữ"}) == '{"a":"Nữ"}'.encode()
    with pytest.raises(ValueError):
        canonical_bytes({"a": 1.5})


def test_seal_round_trip_and_binding() -> None:
    centre = X25519PrivateKey.generate()
    payload = {"full_name": "Nguyễn Thị Mai", "id_number": "079303001234"}
    box = seal(payload, centre.public_key(), b"event-1|dev-1")
    blob = str(box.to_json())
    assert "079303001234" not in blob and "Nguy" not in blob
    assert open_sealed(box, centre, b"event-1|dev-1") == payload
    with pytest.raises(SealError, match="does not open"):
        open_sealed(box, centre, b"event-2|dev-1")
    with pytest.raises(SealError, match="another key"):
        open_sealed(box, X25519PrivateKey.generate(), b"event-1|dev-1")
    tampered = SealedBox(box.alg, box.kid, box.epk, box.ct[:-2] + ("A" if box.ct[-2] != "A" else "B") + box.ct[-1])
    with pytest.raises(SealError):
        open_sealed(tampered, centre, b"event-1|dev-1")


@given(st.dictionaries(st.sampled_from(["alg", "kid", "epk", "ct", "x"]), st.text(max_size=40)))
def test_malformed_boxes_raise_only_seal_error(data: dict[str, str]) -> None:
    centre = X25519PrivateKey.generate()
    try:
        open_sealed(SealedBox.from_json(data), centre, b"a")
    except SealError:
        pass

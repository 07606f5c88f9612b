"""The wire package both sides import (docs/design.md §2; docs/protocol.md §3, §4.7, §4.8).

Golden vectors: the messages below were signed and sealed by the agent's own code before
canonical JSON, signing and sealing moved into ``wire`` (Ed25519 is deterministic, so the same
key over the same bytes gives the same signature). They must verify and open with the code of
today, byte for byte: a device that has not been upgraded keeps being accepted, and an event
in an outbox at the time of an upgrade is still valid after it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.events.model import Demographics, EventDraft, build_event
from wire import load_schema, validate
from wire.errors import WireError
from wire.kinds import EventAssurance, EventKind, Method
from wire.masking import mask_id
from wire.sealing import (
    ALGORITHM,
    INFO,
    NONCE,
    SealedBox,
    SealError,
    event_aad,
    open_event_box,
    open_sealed,
)
from wire.signing import (
    SignatureError,
    b64url,
    b64url_decode,
    canonical_bytes,
    ed25519_public,
    sign_event,
    verify_event,
    verify_signature,
    wire_bytes,
)
from wire.topics import (
    EVENTS_FILTER,
    STATUS_FILTER,
    TopicError,
    config_topic,
    events_topic,
    occupancy_topic,
    split_topic,
    status_topic,
)

ROOT = Path(__file__).resolve().parents[2]
# RFC 8032 §7.1 TEST 2 private key; RFC 7748 §6.1 Bob's private key: published vectors.
GOLDEN_DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(
    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
GOLDEN_CENTRE_KEY = X25519PrivateKey.from_private_bytes(bytes.fromhex(
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))

# A stay.start built by edge_agent.events.model.build_event with the agent's own signing and
# sealing modules (before the move), synthetic person Trần Văn Bình.
GOLDEN_STAY: dict[str, Any] = {
    "v": 1,
    "event_id": "019a4879-1e7b-7000-8abc-0123456789ab",
    "device_id": "ks-ha-noi-le-tan",
    "site_id": "ks-ha-noi",
    "seq": 4242,
    "occurred_at": "2025-11-03T14:05:00.123+07:00",
    "kind": "stay.start",
    "method": "chip",
    "assurance": "chip-anchored",
    "subject": "0123456789abcdef0123456789abcdef",
    "count": 1,
    "demographics": {"age_band": "25-44", "sex": "M", "birth_province": "001"},
    "reason": None,
    "details": {"stay_id": "3f2c8a4e-9b1d-4c7e-a5f0-6d2b8e1c9a47",
                "ward_or_room": "Phòng 204 – tầng 2", "expected_departure": "2025-11-05",
                "reason_code": "tourism"},
    "sealed": {
        "alg": "X25519-HKDF-SHA256-CHACHA20POLY1305",
        "kid": "3p7bfXt9wbQ",
        "epk": "z06QD5S8SCx9K8SnwIFkgavTr3lQBd33C2lXZy7-4Xw",
        "ct": "6dYhlDztgyMKq_B_51oCuasXkn2YI0nrH1x1H0ooAqx7RDdYoNGLdpddHVt4Z3J5dTTk_ddVBp4ppRwDlv"
              "ZIGKUnQdhzGsL-1rt2s0jUnLHCihnO_SFszy8LKhdUfjxCrrtzZQv5xf0YzHhYVh2ITRbzrroJ7uHu4EBS"
              "Vrky2FS4Xcx6YVyPXUhD8pnmu8HhK96rYb3AN6FoJmWIrrdVgL2dVT2IJooJaSzvlhZNMQ-hSxg8wqTIsz"
              "0ymehGOG783wNltFvxlWTvOW20TMeCmzcIt0TjtNbG1AZhVo8y21me",
    },
    "sig": "JSgW0AapCstu7CnMw-_zL7_wUA4jS-FCCOvgqyGtv3LPmO8KPCycOSyKROH1upVyaUxW803usFV1jAQlYN"
           "mgCg",
}
GOLDEN_PERSONAL = {"full_name": "Trần Văn Bình", "id_number": "001099012345",
                   "date_of_birth": "1999-01-02", "sex": "M", "nationality": "VNM",
                   "address": "12 Phố Huế, Hai Bà Trưng, Hà Nội", "document_type": "cccd"}

# Escapes, control characters, nested arrays and an integer beyond 2**53, signed by the agent's
# sign_event before the move; with the SHA-256 of the canonical bytes it computed.
GOLDEN_ODD: dict[str, Any] = {
    "v": 1, "device_id": "gate-x",
    "nested": [1, True, None, {"b": "ữ", "a": "\u0000\u001f\"\\/"}],
    "n": -9007199254740993,
    "sig": "iu2Tyf3LTyi95WYP2tVQa3AaL913enqNkbMZE46OC4z7hXKuhObpEltfHsDEdOEC6wBYJDESPRLwV1OVhx"
           "cyAA",
}
GOLDEN_ODD_CANONICAL_SHA256 = "e88092acecc5ed7399f8485b83b3fae48e092f7574bc5f671c27c4920c247ffb"


def _flip(text: str) -> str:
    return text[:-3] + ("A" if text[-3] != "A" else "B") + text[-2:]


# -- golden vectors --------------------------------------------------------------------------------


def test_golden_event_signed_by_the_old_agent_code_verifies_on_both_paths() -> None:
    validate("event.v1", GOLDEN_STAY)
    public = GOLDEN_DEVICE_KEY.public_key()
    verify_event(GOLDEN_STAY, public)  # the agent's API (cryptography key)
    raw = public.public_bytes_raw()
    verify_signature(GOLDEN_STAY, ed25519_public(raw), float_free=True)  # the collector's
    # Signing again gives the very same bytes (deterministic Ed25519 over the same canonical form).
    assert sign_event({k: v for k, v in GOLDEN_STAY.items() if k != "sig"},
                      GOLDEN_DEVICE_KEY)["sig"] == GOLDEN_STAY["sig"]
    with pytest.raises(SignatureError, match="does not verify"):
        verify_event({**GOLDEN_STAY, "seq": 4243}, public)


def test_golden_canonical_bytes_are_unchanged() -> None:
    body = {k: v for k, v in GOLDEN_ODD.items() if k != "sig"}
    assert hashlib.sha256(canonical_bytes(body)).hexdigest() == GOLDEN_ODD_CANONICAL_SHA256
    assert canonical_bytes(GOLDEN_ODD) == canonical_bytes(body)  # sig is never covered
    verify_event(GOLDEN_ODD, GOLDEN_DEVICE_KEY.public_key())
    assert sign_event(body, GOLDEN_DEVICE_KEY)["sig"] == GOLDEN_ODD["sig"]
    # What is published is the same serialisation of the whole message, sig included.
    assert wire_bytes(body) == canonical_bytes(GOLDEN_ODD)
    published = wire_bytes(GOLDEN_ODD)
    assert json.loads(published) == GOLDEN_ODD and b'"sig":' in published
    assert "ữ".encode() in published


def test_golden_box_sealed_by_the_old_agent_code_opens_with_the_collectors_call() -> None:
    opened = open_event_box(GOLDEN_STAY["sealed"], GOLDEN_CENTRE_KEY, GOLDEN_STAY["event_id"],
                            GOLDEN_STAY["device_id"])
    assert opened == GOLDEN_PERSONAL
    validate("stay-personal.v1", opened)
    with pytest.raises(SealError, match="does not open"):  # bound to its event
        open_event_box(GOLDEN_STAY["sealed"], GOLDEN_CENTRE_KEY, str(uuid.uuid4()),
                       GOLDEN_STAY["device_id"])
    with pytest.raises(SealError, match="another key"):
        open_event_box(GOLDEN_STAY["sealed"], X25519PrivateKey.generate(),
                       GOLDEN_STAY["event_id"], GOLDEN_STAY["device_id"])


def test_an_event_built_today_opens_and_verifies_the_same_way() -> None:
    ict = timezone(timedelta(hours=7))
    draft = EventDraft(EventKind.STAY_START, Method.CHIP, EventAssurance.CHIP_ANCHORED,
                       datetime(2025, 11, 3, 14, 5, 0, 123000, tzinfo=ict),
                       subject=GOLDEN_STAY["subject"],
                       demographics=Demographics("25-44", "M", "001"),
                       details=dict(GOLDEN_STAY["details"]), personal=GOLDEN_PERSONAL)
    event = build_event(draft, device_id=GOLDEN_STAY["device_id"],
                        site_id=GOLDEN_STAY["site_id"], seq=4242,
                        event_id=uuid.UUID(GOLDEN_STAY["event_id"]),
                        signing_key=GOLDEN_DEVICE_KEY, centre_key=GOLDEN_CENTRE_KEY.public_key())
    # Everything but the freshly sealed box (a new ephemeral key each time) is the golden event.
    assert {k: v for k, v in event.items() if k not in ("sealed", "sig")} == \
        {k: v for k, v in GOLDEN_STAY.items() if k not in ("sealed", "sig")}
    assert event["sealed"]["kid"] == GOLDEN_STAY["sealed"]["kid"]
    verify_event(event, GOLDEN_DEVICE_KEY.public_key())
    assert open_event_box(event["sealed"], GOLDEN_CENTRE_KEY, event["event_id"],
                          event["device_id"]) == GOLDEN_PERSONAL


def test_protocol_worked_example_verifies_with_the_wire_package() -> None:
    """docs/protocol.md §10: every signed example verifies under the published device key with
    the collector's fast path, and the sealed one opens under the published centre key."""
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    examples = [json.loads(body) for _, body in
                re.findall(r"<!-- example: ([a-z.0-9-]+) -->\n```json\n(.*?)```", text, re.S)]
    device = ed25519_public(bytes.fromhex(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
    centre = X25519PrivateKey.from_private_bytes(bytes.fromhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    signed = [e for e in examples if "sig" in e]
    sealed = [e for e in signed if e.get("sealed")]
    assert len(signed) >= 6 and sealed
    for example in signed:
        verify_signature(example, device)
    for example in sealed:
        plain = open_event_box(example["sealed"], centre, example["event_id"],
                               example["device_id"])
        assert plain["id_number"] == "079303001234"


# -- the parts ------------------------------------------------------------------------------------


def test_seal_constants_are_the_protocols() -> None:
    assert GOLDEN_STAY["sealed"]["alg"] == ALGORITHM
    assert INFO == b"cccd-checkin/seal/v1"
    assert bytes(12) == NONCE
    assert event_aad("e", "d") == b"e|d"
    box = SealedBox.from_json(GOLDEN_STAY["sealed"])
    with pytest.raises(SealError, match="does not open"):
        open_sealed(SealedBox(box.alg, box.kid, box.epk, _flip(box.ct)), GOLDEN_CENTRE_KEY,
                    event_aad(GOLDEN_STAY["event_id"], GOLDEN_STAY["device_id"]))
    for bad in (None, {}, {**GOLDEN_STAY["sealed"], "alg": "x"},
                {**GOLDEN_STAY["sealed"], "extra": 1}, {**GOLDEN_STAY["sealed"], "epk": "a+b"}):
        with pytest.raises(SealError):
            open_event_box(bad, GOLDEN_CENTRE_KEY, "e", "d")


def test_errors_share_one_root_and_carry_a_path() -> None:
    with pytest.raises(WireError) as sig:
        verify_event({"v": 1}, GOLDEN_DEVICE_KEY.public_key())
    assert (sig.value.path, sig.value.reason) == ("$.sig", "no signature")
    with pytest.raises(WireError) as seal:
        open_event_box({}, GOLDEN_CENTRE_KEY, "e", "d")
    assert seal.value.path == "$.sealed"
    with pytest.raises(WireError):
        events_topic("a/b")
    with pytest.raises(SignatureError, match="floating-point"):
        canonical_bytes({"a": 1.5})


@pytest.mark.parametrize("text", ["a+b", "ab==", "a b", "a\tb", "a\rb", "a!b", 5])
def test_b64url_decode_refuses_anything_but_unpadded_base64url(text: Any) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_b64url_round_trip() -> None:
    for data in (b"", b"\x00", b"\xff\xfe", bytes(range(256))):
        assert b64url_decode(b64url(data)) == data
        assert "=" not in b64url(data)


def test_signature_of_wrong_length_or_alphabet_is_refused() -> None:
    public = ed25519_public(GOLDEN_DEVICE_KEY.public_key().public_bytes_raw())
    with pytest.raises(SignatureError, match="64"):
        verify_signature({**GOLDEN_ODD, "sig": b64url(bytes(63))}, public)
    with pytest.raises(SignatureError, match="base64url"):
        verify_signature({**GOLDEN_ODD, "sig": "a/b"}, public)
    with pytest.raises(ValueError, match="32"):
        ed25519_public(bytes(31))


def test_topics_built_and_parsed() -> None:
    assert events_topic("gate-1") == "checkin/v1/gate-1/events"
    assert status_topic("gate-1") == "checkin/v1/gate-1/status"
    assert config_topic("gate-1") == "checkin/v1/gate-1/config"
    assert occupancy_topic("hue") == "checkin/v1/sites/hue/occupancy"
    assert EVENTS_FILTER == "checkin/v1/+/events" and STATUS_FILTER == "checkin/v1/+/status"
    assert split_topic(events_topic("gate-1")) == ("gate-1", "event")
    assert split_topic(status_topic("gate-1")) == ("gate-1", "status")
    for other in (config_topic("gate-1"), occupancy_topic("hue"), "checkin/v1/sites/events",
                  "checkin/v2/gate-1/events", "checkin/v1//events", "checkin/v1/a/b/events", ""):
        assert split_topic(other) is None, other
    for bad in ("", "a/b", "a+", "#", "a\x00", " a", "a "):
        with pytest.raises(TopicError, match="cannot be a topic level"):
            events_topic(bad)


@pytest.mark.parametrize(("text", "masked"), [
    ("079303001234", "********1234"), ("123456789", "*****6789"), ("1234", "****"), ("12", "**"),
    ("", ""), (None, ""),
])
def test_mask_keeps_only_the_last_four(text: str | None, masked: str) -> None:
    assert mask_id(text) == masked


def test_enumerations_are_the_schemas() -> None:
    props = load_schema("event.v1")["properties"]
    assert [k.value for k in EventKind] == props["kind"]["enum"]
    assert [m.value for m in Method] == props["method"]["enum"]
    assert [a.value for a in EventAssurance] == props["assurance"]["enum"]

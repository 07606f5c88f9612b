"""The sealed subject (docs/protocol.md §4.7.1): the agent seals the reference to the centre,
the collector opens it and stores a subject keyed with a key no device holds; a legacy clear
subject lands on the same stored value; every malformed or unopenable box is refused with
``sealed-subject-unopenable`` (§4.10); the device dedupes with its own rotating local key."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from central.ingest.validate import (
    DeviceView,
    Incoming,
    Reason,
    Rejection,
    ValidEvent,
    check_event,
    decode,
)
from central.registry import raw_public_key
from central.subjects import STORED, SubjectError, SubjectKeys, subject_for
from edge_agent.events.ids import Uuid7Generator
from edge_agent.events.local_subject import (
    StaticSubjects,
    SubjectKeyring,
    generation_of,
)
from edge_agent.events.model import (
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    build_event,
)
from edge_agent.events.subject import subject_for as device_subject
from wire.sealing import SealError, open_subject_box, seal, seal_subject, subject_aad
from wire.signing import ed25519_public, sign_event

ID = "079303001234"
PROVINCE = b"p" * 32
CENTRE_SUBJECT = b"c" * 32
KEYS = SubjectKeys(CENTRE_SUBJECT, PROVINCE)
CENTRE = X25519PrivateKey.generate()
SIGNING = Ed25519PrivateKey.generate()
DEVICE_ID = "gate-ngo-mon-01"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
IDS = Uuid7Generator()
VIEW = DeviceView(DEVICE_ID, "hue-dai-noi", ed25519_public(raw_public_key(SIGNING.public_key())),
                  False, site_kind="heritage")


def draft(*, subject: str | None = None, ref: str | None = ID) -> EventDraft:
    return EventDraft(EventKind.ENTRY, Method.CHIP, EventAssurance.CHIP_ANCHORED, NOW,
                      subject=subject, subject_ref=ref,
                      demographics=Demographics("25-44", "F", "079"))


def wire_event(d: EventDraft, seq: int = 1) -> dict[str, Any]:
    return build_event(d, device_id=DEVICE_ID, site_id="hue-dai-noi", seq=seq,
                       event_id=IDS(), signing_key=SIGNING,
                       centre_key=CENTRE.public_key())


def ingest(event: dict[str, Any], *, centre: X25519PrivateKey | None = CENTRE,
           keys: SubjectKeys | None = KEYS) -> ValidEvent | Rejection:
    decoded = decode(Incoming(f"checkin/v1/{DEVICE_ID}/events", json.dumps(event).encode(),
                              received_at=NOW))
    if isinstance(decoded, Rejection):
        return decoded
    return check_event(decoded, VIEW, max_future_skew=timedelta(minutes=10), centre_key=centre,
                       subjects=keys)


def resigned(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {k: v for k, v in event.items() if k != "sig"}
    body.update(changes)
    return sign_event({k: v for k, v in body.items() if v is not _DROP}, SIGNING)


_DROP = object()


# -- the centre's keys --------------------------------------------------------------------------

@given(st.from_regex(r"\A[0-9]{12}\Z"))
def test_legacy_and_sealed_land_on_the_same_stored_subject(id_number: str) -> None:
    legacy = device_subject(id_number, PROVINCE)  # what an older agent sent
    stored = KEYS.stored(legacy)
    assert stored == KEYS.for_reference(id_number) == KEYS.for_id_number(id_number)
    assert STORED.fullmatch(stored) and stored != legacy and len(stored) == 32


def test_the_stored_subject_needs_the_centre_key() -> None:
    other = SubjectKeys(b"d" * 32, PROVINCE)
    assert other.for_reference(ID) != KEYS.for_reference(ID)
    assert KEYS.for_reference("bhyt:7930012345") != KEYS.for_reference(ID)
    with pytest.raises(SubjectError, match="province"):
        SubjectKeys(CENTRE_SUBJECT).for_reference(ID)
    with pytest.raises(SubjectError, match="16 bytes"):
        SubjectKeys(b"short")
    for bad in ("07930300123", "bhyt:123", "x" * 12, "079303001234\n"):
        with pytest.raises(SubjectError):
            KEYS.for_reference(bad)
    with pytest.raises(SubjectError, match="32 hex"):
        KEYS.stored(KEYS.stored(subject_for(ID, PROVINCE)))  # never keyed twice


# -- sealing and opening ------------------------------------------------------------------------

def test_the_sealed_subject_opens_only_for_its_event_at_the_centre() -> None:
    box = seal_subject(ID, CENTRE.public_key(), "e1", "d1").to_json()
    assert open_subject_box(box, CENTRE, "e1", "d1") == ID
    for event_id, device_id in (("e2", "d1"), ("e1", "d2")):
        with pytest.raises(SealError, match="does not open") as exc:
            open_subject_box(box, CENTRE, event_id, device_id)
        assert exc.value.path == "$.subject_sealed"
    with pytest.raises(SealError, match="another key"):
        open_subject_box(box, X25519PrivateKey.generate(), "e1", "d1")
    # A stay's personal box of the same event (other associated data) is no subject.
    personal = seal({"ref": ID}, CENTRE.public_key(), b"e1|d1").to_json()
    with pytest.raises(SealError, match="does not open"):
        open_subject_box(personal, CENTRE, "e1", "d1")
    with pytest.raises(ValueError):
        seal_subject("12345", CENTRE.public_key(), "e1", "d1")


@pytest.mark.parametrize("plaintext", [
    {"ref": "07930300123"}, {"ref": 79303001234}, {"ref": ID, "name": "Mai"}, {},
    {"id_number": ID}, {"ref": "bhyt:79300123"}])
def test_a_box_with_the_wrong_plaintext_is_refused_without_quoting_it(
        plaintext: dict[str, Any]) -> None:
    box = seal(plaintext, CENTRE.public_key(), subject_aad("e1", "d1")).to_json()
    with pytest.raises(SealError) as exc:
        open_subject_box(box, CENTRE, "e1", "d1")
    assert "0793" not in exc.value.reason and "Mai" not in exc.value.reason


# -- the agent's event and the collector's ingest ----------------------------------------------

def test_the_agent_sends_no_subject_in_clear_and_the_collector_stores_the_centre_subject() -> None:
    event = wire_event(draft(subject="g1." + "ab" * 16))
    assert event["subject"] is None and set(event["subject_sealed"]) == {"alg", "kid", "epk",
                                                                         "ct"}
    text = json.dumps(event)
    assert ID not in text and "ab" * 16 not in text  # neither the number nor the local subject
    valid = ingest(event)
    assert isinstance(valid, ValidEvent)
    assert valid.message["subject"] == KEYS.for_reference(ID)
    assert "subject_sealed" not in valid.message


def test_a_legacy_clear_subject_is_keyed_the_same_way() -> None:
    legacy = wire_event(draft(subject=device_subject(ID, PROVINCE), ref=None))
    assert legacy["subject"] == device_subject(ID, PROVINCE) and "subject_sealed" not in legacy
    valid = ingest(legacy)
    assert isinstance(valid, ValidEvent) and valid.message["subject"] == KEYS.for_reference(ID)
    # A collector without the centre subject key stores it as it came (not yet upgraded).
    kept = ingest(legacy, keys=None)
    assert isinstance(kept, ValidEvent) and kept.message["subject"] == legacy["subject"]


@pytest.mark.parametrize(("centre", "keys", "missing"), [
    (None, KEYS, "keys.centre_private_key"),
    (CENTRE, None, "keys.centre_subject_key"),
    (CENTRE, SubjectKeys(CENTRE_SUBJECT), "keys.subject_key")])
def test_a_collector_without_its_keys_refuses_a_sealed_subject(
        centre: X25519PrivateKey | None, keys: SubjectKeys | None, missing: str) -> None:
    refused = ingest(wire_event(draft()), centre=centre, keys=keys)
    assert isinstance(refused, Rejection)
    assert refused.reason is Reason.SEALED_SUBJECT_UNOPENABLE and missing in refused.detail


def test_malformed_sealed_subjects_are_refused_with_their_reason() -> None:
    event = wire_event(draft())
    box = event["subject_sealed"]
    ct = box["ct"]
    cases: list[tuple[dict[str, Any], Reason, str]] = [
        # Signed by the device, but the box is tampered, another event's, or another key's.
        (resigned(event, subject_sealed=dict(box, ct=ct[:5] + ("A" if ct[5] != "A" else "B")
                                             + ct[6:])),
         Reason.SEALED_SUBJECT_UNOPENABLE, "does not open"),
        (resigned(event, subject_sealed=wire_event(draft())["subject_sealed"]),
         Reason.SEALED_SUBJECT_UNOPENABLE, "does not open"),
        (resigned(event, subject_sealed=seal_subject(
            ID, X25519PrivateKey.generate().public_key(), event["event_id"],
            DEVICE_ID).to_json()), Reason.SEALED_SUBJECT_UNOPENABLE, "another key"),
        (resigned(event, subject_sealed=seal({"ref": "1"}, CENTRE.public_key(), subject_aad(
            event["event_id"], DEVICE_ID)).to_json()),
         Reason.SEALED_SUBJECT_UNOPENABLE, "not {\"ref\""),
        # The schema: neither a clear subject nor a box, both, or a box that is no box.
        (resigned(event, subject_sealed=_DROP), Reason.SCHEMA, "$.subject"),
        (resigned(event, subject_sealed=None), Reason.SCHEMA, "$.subject"),
        (resigned(event, subject=device_subject(ID, PROVINCE)), Reason.SCHEMA, "$.subject"),
        (resigned(event, subject_sealed=dict(box, alg="none")), Reason.SCHEMA,
         "$.subject_sealed"),
        (resigned(event, subject_sealed=ID), Reason.SCHEMA, "$.subject"),
    ]
    for bad, reason, words in cases:
        refused = ingest(bad)
        assert isinstance(refused, Rejection), bad
        assert refused.reason is reason and words in refused.detail, (refused, words)
        assert "0793" not in refused.detail
    # A manual or rejected event carries no sealed subject.
    manual = resigned(event, kind="manual", method="manual", assurance="manual",
                      reason="child", details={"counts_as": "entry"},
                      demographics={"age_band": None, "sex": None, "birth_province": None})
    refused = ingest(manual)
    assert isinstance(refused, Rejection) and refused.reason is Reason.SCHEMA
    assert "$.subject_sealed" in refused.detail


# -- the device-local subject -------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_the_local_keyring_is_private_rotates_and_keeps_what_open_stays_need(
        tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "outbox.sqlite3.subject-keys"
    ring = SubjectKeyring(path, clock=clock)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    first = ring.subject(ID, clock())
    assert generation_of(first) == 1 and first != device_subject(ID, PROVINCE)
    assert SubjectKeyring(path, clock=clock).subject(ID, clock()) == first  # kept on disk
    assert StaticSubjects(b"k" * 32).subject(ID, NOW) != first  # a random key per device
    clock.now += timedelta(days=1, seconds=1)
    second = ring.subject(ID, clock())
    assert generation_of(second) == 2 and second != first
    assert ring.candidates(ID, clock()) == {first, second}  # the debounce and stays still match
    assert ring.prune() == []  # retired less than a day ago
    clock.now += timedelta(days=1)  # generation 3 is due; generation 1 retired a day ago
    assert ring.prune(in_use=[first]) == []  # an open stay still needs generation 1
    assert first in ring.candidates(ID, clock())
    assert ring.prune() == [1]
    assert first not in ring.candidates(ID, clock()) and ring.generations == [2, 3]
    assert ID not in path.read_text() and json.loads(path.read_text())["keys"]
    assert SubjectKeyring(path, clock=clock).generations == ring.generations

"""Collector-side signature verification, sealed-box opening (the wire package), validation and
settings, checked against bytes produced by the agent (edge_agent) and the docs/protocol.md §10 example."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from central.counting import last_close, stay_deadline
from central.ingest.crypto import load_centre_key
from central.ingest.validate import DeviceView, Incoming, Reason, check_event, decode, scrub
from central.registry import raw_public_key
from central.settings import SettingsError, load_settings
from central.subjects import subject_for
from wire.sealing import SealError as SealedBoxError
from wire.sealing import open_event_box as open_sealed
from wire.sealing import open_subject_box, seal
from wire.signing import SignatureError as BadSignatureError
from wire.signing import ed25519_public, sign_event, verify_signature

ROOT = Path(__file__).resolve().parents[2]
ALICE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
DEVICE = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


def doc_examples() -> list[dict[str, object]]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- example: event.v1 -->\s*```json\n(.*?)```", text, re.S)
    return [json.loads(b) for b in blocks]


def test_doc_examples_verify_and_the_stay_opens_with_the_test_key() -> None:
    public = ed25519_public(bytes.fromhex(DEVICE))
    centre = X25519PrivateKey.from_private_bytes(bytes.fromhex(ALICE))
    examples = doc_examples()
    assert len(examples) == 7
    for ev in examples:
        verify_signature(ev, public)
    sealed = next(e for e in examples if e.get("subject_sealed"))
    assert open_subject_box(sealed["subject_sealed"], centre, str(sealed["event_id"]),
                            str(sealed["device_id"])) == "079303001234"
    assert subject_for("079303001234", bytes(range(16))) == next(
        e for e in examples if e["kind"] == "entry" and e["subject"])["subject"]
    stay = next(e for e in examples if e["kind"] == "stay.start")
    personal = open_sealed(stay["sealed"], centre, str(stay["event_id"]), str(stay["device_id"]))
    assert personal["full_name"] == "Nguyễn Thị Mai" and personal["id_number"] == "079303001234"
    with pytest.raises(SealedBoxError):  # bound to its event
        open_sealed(stay["sealed"], centre, str(uuid.uuid4()), str(stay["device_id"]))
    with pytest.raises(SealedBoxError):  # another centre key
        open_sealed(stay["sealed"], X25519PrivateKey.generate(), str(stay["event_id"]),
                    str(stay["device_id"]))


def test_agent_signatures_verify_and_tampering_does_not() -> None:
    key = Ed25519PrivateKey.generate()
    event = sign_event({"v": 1, "a": "ệ", "n": [1, None, {"z": True}]}, key)
    public = ed25519_public(raw_public_key(key.public_key()))
    verify_signature(event, public)
    sig = event["sig"]
    flipped = sig[:20] + ("B" if sig[20] != "B" else "C") + sig[21:]  # inside, not padding bits
    for bad in (dict(event, a="e"), dict(event, sig=flipped),
                {k: v for k, v in event.items() if k != "sig"}, dict(event, sig="@@")):
        with pytest.raises(BadSignatureError):
            verify_signature(bad, public)


def test_agent_sealed_box_opens_in_central() -> None:
    centre = X25519PrivateKey.generate()
    box = seal({"x": "Trần"}, centre.public_key(), b"e1|d1").to_json()
    assert open_sealed(box, centre, "e1", "d1") == {"x": "Trần"}
    with pytest.raises(SealedBoxError):
        ct = box["ct"]
        open_sealed(dict(box, ct=ct[:8] + ("B" if ct[8] != "B" else "C") + ct[9:]), centre,
                    "e1", "d1")
    with pytest.raises(SealedBoxError):
        open_sealed(dict(box, extra=1), centre, "e1", "d1")


def test_centre_key_file_formats(tmp_path: Path) -> None:
    key = X25519PrivateKey.generate()
    (tmp_path / "raw").write_bytes(key.private_bytes_raw())
    (tmp_path / "hex").write_text(key.private_bytes_raw().hex() + "\n")
    for name in ("raw", "hex"):
        assert load_centre_key(tmp_path / name).private_bytes_raw() == key.private_bytes_raw()


def test_decode_reasons_and_scrubbing() -> None:
    t = "checkin/v1/gate-1/events"
    assert decode(Incoming("checkin/v1/sites/x/occupancy", b"{}")).reason == Reason.BAD_TOPIC
    assert decode(Incoming(t, b"\xff")).reason == Reason.MALFORMED_JSON
    assert decode(Incoming(t, b"x" * 16385)).reason == Reason.OVERSIZE
    rejected = decode(Incoming(t, b'{"v":1}'))
    assert rejected.reason == Reason.SCHEMA and rejected.detail.startswith("$")
    for literal in (b"1.5", b"1e3", b"NaN", b"-Infinity"):  # none on the wire (protocol §1)
        floating = decode(Incoming(t, b'{"v":1,"seq":' + literal + b"}"))
        assert floating.reason == Reason.SCHEMA and "floating-point" in floating.detail
    assert scrub("'079303001234' does not match '^x$'") == "<value> does not match '^x$'"
    assert "<digits>" in scrub("bad 079303001234 here")


def test_clock_skew_rule() -> None:
    example = doc_examples()[0]
    device = DeviceView("gate-ngo-mon-01", "hue-dai-noi",
                        ed25519_public(bytes.fromhex(DEVICE)), False)
    payload = json.dumps(example).encode()
    occurred = datetime(2025, 4, 30, 2, 15, 2, tzinfo=UTC)
    for received, ok in ((occurred - timedelta(minutes=9), True),
                         (occurred - timedelta(minutes=11), False),
                         (occurred + timedelta(days=30), True)):  # late events are fine
        decoded = decode(Incoming("checkin/v1/gate-ngo-mon-01/events", payload,
                                  received_at=received))
        result = check_event(decoded, device, max_future_skew=timedelta(minutes=10),
                             centre_key=None)
        assert (getattr(result, "reason", None) != Reason.CLOCK_SKEW) is ok


@pytest.mark.parametrize(("local", "deadline"), [
    ("2025-04-30T14:05", "2025-04-30T23:00"), ("2025-04-30T22:59", "2025-04-30T23:00"),
    ("2025-04-30T23:00", "2025-05-01T08:00"), ("2025-04-30T23:40", "2025-05-01T08:00"),
    ("2025-05-01T00:30", "2025-05-01T23:00")])
def test_stay_deadline_cccd_section_9(local: str, deadline: str) -> None:
    vn = "+07:00"
    got = stay_deadline(datetime.fromisoformat(local + vn))
    assert got == datetime.fromisoformat(deadline + vn)


def test_last_close_time() -> None:
    now = datetime.fromisoformat("2025-04-30T18:00+07:00")
    assert last_close(now, "17:30") == datetime.fromisoformat("2025-04-30T17:30+07:00")
    assert last_close(now, "23:00") == datetime.fromisoformat("2025-04-29T23:00+07:00")


def test_settings_defaults_and_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("")
    s = load_settings(path)
    assert s.database_url == "sqlite:///var/central.sqlite3"
    assert s.max_future_skew == timedelta(minutes=10) and s.close_time == "23:00"
    path.write_text('[keys]\ndata_key = "data.key"\n[broker]\nurl = "mqtt://127.0.0.1:1883"\n')
    s = load_settings(path)
    assert s.data_key == tmp_path / "data.key" and s.broker.port == 1883
    for text, key in (("[retention]\nevents_days = 0\n", "retention.events_days"),
                      ('[sites]\nclose_time = "25:00"\n', "sites.close_time"),
                      ("[ingest]\nbogus = 1\n", "ingest.bogus"),
                      ('[broker]\ngroup = "a/b"\n', "broker.group"),
                      ('database_url = "mysql://x"\n', "database_url")):
        path.write_text(text)
        with pytest.raises(SettingsError) as info:
            load_settings(path)
        assert info.value.key == key

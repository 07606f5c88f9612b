"""The wire contract: JSON Schemas in wire/ and the examples of docs/protocol.md."""

from __future__ import annotations

import ast
import copy
import json
import re
import shlex
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from jsonschema import Draft202012Validator

from edge_agent.events.ids import Uuid7Generator
from edge_agent.events.model import (
    AGE_BANDS,
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    build_event,
)
from edge_agent.reading import FailureReason
from wire import (
    MAX_PAYLOAD_BYTES,
    SCHEMA_NAMES,
    WireError,
    config_topic,
    events_topic,
    load_schema,
    occupancy_topic,
    parse_message,
    status_topic,
    validate,
)
from wire.sealing import SealedBox, open_sealed
from wire.signing import sign_event, verify_event

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = ROOT / "docs" / "protocol.md"
ICT = timezone(timedelta(hours=7))
SIGNING = Ed25519PrivateKey.generate()
CENTRE = X25519PrivateKey.generate()
NEW_ID = Uuid7Generator()
# Published test vectors used by the worked example (docs/protocol.md §10).
DOC_DEVICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
DOC_CENTRE_KEY = X25519PrivateKey.from_private_bytes(bytes.fromhex(
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
PERSONAL = {"full_name": "Nguyễn Thị Mai", "id_number": "079303001234",
            "date_of_birth": "2003-05-15", "sex": "F", "nationality": "VNM",
            "address": "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh", "document_type": "cccd"}
SUBJECT = "4a98e7fc23fe7efe2edf1279c355a570"
IDENTIFIED = Demographics("15-24", "F", "079")


def wire(draft: EventDraft, seq: int = 1) -> dict[str, Any]:
    return build_event(draft, device_id="gate-ngo-mon-01", site_id="hue-dai-noi", seq=seq,
                       event_id=NEW_ID(), signing_key=SIGNING, centre_key=CENTRE.public_key())


def draft(kind: EventKind, **kw: Any) -> EventDraft:
    at = datetime(2025, 4, 30, 9, 15, 2, tzinfo=ICT)
    base: dict[str, Any] = {"method": Method.CHIP, "assurance": EventAssurance.CHIP_ANCHORED,
                            "occurred_at": at, "subject": SUBJECT, "demographics": IDENTIFIED}
    if kind in (EventKind.MANUAL, EventKind.REJECTED):
        base.update(subject=None, demographics=Demographics())
    if kind is EventKind.MANUAL:
        base.update(method=Method.MANUAL, assurance=EventAssurance.MANUAL, reason="child",
                    details={"counts_as": "entry"})
    if kind is EventKind.REJECTED:
        base.update(assurance=EventAssurance.NONE, reason="card-lost")
    if kind is EventKind.VISIT:
        base.update(details={"insurance": "unknown"})
    if kind.is_stay:
        base.update(personal=dict(PERSONAL), details={
            "stay_id": str(uuid.uuid4()), "ward_or_room": "Khoa Nội 3",
            "expected_departure": "2025-05-03", "reason_code": "treatment"})
    base.update(kw)
    return EventDraft(kind=kind, **base)


VALID_DRAFTS = {
    "entry-chip": draft(EventKind.ENTRY),
    "exit-qr": draft(EventKind.EXIT, method=Method.CARD_QR, assurance=EventAssurance.QR),
    "entry-vneid-group": draft(EventKind.ENTRY, method=Method.VNEID_QR,
                               assurance=EventAssurance.VNEID_QR, count=40,
                               details={"over_capacity": True}),
    "entry-mismatch": draft(EventKind.ENTRY, details={"qr_mismatch": ["full_name", "sex"]}),
    "entry-sex-unknown": draft(EventKind.ENTRY, demographics=Demographics("60+", None, "999")),
    "visit": draft(EventKind.VISIT, assurance=EventAssurance.CHIP_SIGNED,
                   details={"insurance": "valid", "department": "Khoa Nhi"}),
    "stay-start": draft(EventKind.STAY_START),
    "stay-end-qr": draft(EventKind.STAY_END, method=Method.CARD_QR, assurance=EventAssurance.QR),
    "manual": draft(EventKind.MANUAL, count=3),
    "manual-visit": draft(EventKind.MANUAL, reason="paper-insurance",
                          details={"counts_as": "visit"}),
    "rejected-qr": draft(EventKind.REJECTED, method=Method.CARD_QR, reason="qr-invalid",
                         details={"attempted": "visit"}),
    "rejected-full": draft(EventKind.REJECTED, reason="capacity-full", count=5),
    "rejected-manual": draft(EventKind.REJECTED, method=Method.MANUAL, reason="capacity-full"),
    "visit-bhyt": draft(EventKind.VISIT, method=Method.BHYT_QR, assurance=EventAssurance.QR,
                        demographics=Demographics("25-44", "M", None),
                        details={"insurance": "valid", "department": "Khoa Nội"}),
    "entry-vneid-level": draft(EventKind.ENTRY, method=Method.VNEID_QR,
                               assurance=EventAssurance.VNEID_QR, details={"vneid_level": 1}),
    "entry-qr-flags": draft(EventKind.ENTRY, method=Method.CARD_QR, assurance=EventAssurance.QR,
                            details={"qr_flags": ["card-expired", "issue-date-future"]}),
    "rejected-vneid": draft(EventKind.REJECTED, method=Method.VNEID_QR,
                            reason="vneid-unavailable", details={"attempted": "entry"}),
    "rejected-bhyt": draft(EventKind.REJECTED, method=Method.BHYT_QR,
                           reason="bhyt-not-accepted", details={"attempted": "stay.start"}),
}


@pytest.mark.parametrize("name", sorted(VALID_DRAFTS))
def test_build_event_output_validates(name: str) -> None:
    event = wire(VALID_DRAFTS[name])
    validate("event.v1", event)
    validate("event", event)  # the version suffix may be omitted
    payload = json.dumps(event, ensure_ascii=False).encode()
    assert len(payload) < MAX_PAYLOAD_BYTES
    assert parse_message("event.v1", payload) == event


@pytest.mark.parametrize("code", [r.value for r in FailureReason])
def test_every_failure_reason_is_a_rejected_reason(code: str) -> None:
    validate("event.v1", wire(draft(EventKind.REJECTED, reason=code)))


@pytest.mark.parametrize("band", AGE_BANDS)
def test_every_age_band_is_allowed(band: str) -> None:
    validate("event.v1", wire(draft(EventKind.ENTRY, demographics=Demographics(band, "M",
                                                                               "001"))))


def mutate(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    target = out
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


DELETE = object()
ENTRY = wire(VALID_DRAFTS["entry-chip"])
VISIT = wire(VALID_DRAFTS["visit"])
STAY = wire(VALID_DRAFTS["stay-start"])
MANUAL = wire(VALID_DRAFTS["manual"])
REJECTED = wire(VALID_DRAFTS["rejected-qr"])
BHYT_VISIT = wire(VALID_DRAFTS["visit-bhyt"])

INVALID = [
    # (event, member, new value, expected JSON path, words in the reason)
    (ENTRY, "v", 2, "$.v", "must be 1"),
    (ENTRY, "event_id", str(uuid.uuid4()), "$.event_id", "does not match"),
    (ENTRY, "event_id", "01968479-E1CB-735B-9C5C-5C5C5C5C5C5C", "$.event_id", "does not match"),
    (ENTRY, "device_id", "Gate/01", "$.device_id", "does not match"),
    (ENTRY, "site_id", "", "$.site_id", "does not match"),
    (ENTRY, "seq", 0, "$.seq", "minimum"),
    (ENTRY, "seq", "1", "$.seq", "not of type 'integer'"),
    (ENTRY, "occurred_at", "2025-04-30T09:15:02", "$.occurred_at", "does not match"),
    (ENTRY, "occurred_at", "2025-04-30 09:15:02+07:00", "$.occurred_at", "does not match"),
    (ENTRY, "occurred_at", "2025-13-30T09:15:02Z", "$.occurred_at", "does not match"),
    (ENTRY, "kind", "arrival", "$.kind", "is not one of"),
    (ENTRY, "method", "nfc", "$.method", "is not one of"),
    (ENTRY, "assurance", "qr", "$.assurance", "is not one of"),
    (ENTRY, "assurance", "none", "$.assurance", ""),
    (ENTRY, "method", "manual", "$.method", ""),
    (ENTRY, "subject", None, "$.subject", "not of type 'string'"),
    (ENTRY, "subject", "4A98E7FC23FE7EFE2EDF1279C355A570", "$.subject", "does not match"),
    (ENTRY, "subject", "079303001234", "$.subject", "does not match"),
    (ENTRY, "count", 0, "$.count", "minimum"),
    (ENTRY, "count", 1001, "$.count", "maximum"),
    (ENTRY, "reason", "child", "$.reason", "must be null"),
    (ENTRY, "details", {"insurance": "valid"}, "$.details", "unknown member"),
    (ENTRY, "details", {"qr_mismatch": []}, "$.details.qr_mismatch", "should be non-empty"),
    (ENTRY, "details", {"qr_mismatch": ["address"]}, "$.details.qr_mismatch[0]",
     "is not one of"),
    (ENTRY, "details", {"over_capacity": False}, "$.details.over_capacity", "must be true"),
    (ENTRY, "sealed", STAY["sealed"], "$.sealed", "must be null"),
    (ENTRY, "demographics.age_band", None, "$.demographics.age_band", "not of type"),
    (ENTRY, "demographics.age_band", "25-34", "$.demographics.age_band", "is not one of"),
    (ENTRY, "demographics.sex", "Nữ", "$.demographics.sex", "is not one of"),
    (ENTRY, "demographics.birth_province", "79", "$.demographics.birth_province",
     "does not match"),
    (ENTRY, "demographics.full_name", "Nguyễn Thị Mai", "$.demographics", "unknown member"),
    (ENTRY, "demographics.sex", DELETE, "$.demographics", "'sex' is a required property"),
    (ENTRY, "full_name", "Nguyễn Thị Mai", "$", "unknown member"),
    (ENTRY, "id_number", "079303001234", "$", "unknown member"),
    (ENTRY, "sig", DELETE, "$", "'sig' is a required property"),
    (ENTRY, "sig", "abc", "$.sig", "does not match"),
    (ENTRY, "sealed", DELETE, "$", "'sealed' is a required property"),
    (VISIT, "details", {}, "$.details", "'insurance' is a required property"),
    (VISIT, "details", {"insurance": "expired"}, "$.details.insurance", "is not one of"),
    (VISIT, "details", {"insurance": "valid", "department": "Phòng 12"},
     "$.details.department", "does not match"),
    (VISIT, "count", 2, "$.count", "must be 1"),
    (STAY, "sealed", None, "$.sealed", "not of type 'object'"),
    (STAY, "sealed.alg", "RSA-OAEP", "$.sealed.alg", "must be"),
    (STAY, "sealed.kid", "x", "$.sealed.kid", "does not match"),
    (STAY, "sealed.extra", "1", "$.sealed", "unknown member"),
    (STAY, "details.stay_id", "room-204", "$.details.stay_id", "does not match"),
    (STAY, "details.expected_departure", "03/05/2025", "$.details.expected_departure",
     "does not match"),
    (STAY, "details.reason_code", "holiday", "$.details.reason_code", "is not one of"),
    (STAY, "details.ward_or_room", DELETE, "$.details", "'ward_or_room' is a required"),
    (STAY, "details.full_name", "Nguyễn Thị Mai", "$.details", "unknown member"),
    (STAY, "count", 3, "$.count", "must be 1"),
    (MANUAL, "reason", None, "$.reason", ""),
    (MANUAL, "reason", "tourist", "$.reason", "is not one of"),
    (MANUAL, "subject", ENTRY["subject"], "$.subject", "must be null"),
    (MANUAL, "demographics.age_band", "0-5", "$.demographics.age_band", "must be null"),
    (MANUAL, "details", {}, "$.details", "'counts_as' is a required property"),
    (MANUAL, "assurance", "qr", "$.assurance", ""),
    (REJECTED, "reason", "unknown-error", "$.reason", "is not one of"),
    (REJECTED, "reason", None, "$.reason", ""),
    (REJECTED, "subject", ENTRY["subject"], "$.subject", "must be null"),
    (REJECTED, "demographics.birth_province", "079", "$.demographics.birth_province",
     "must be null"),
    (REJECTED, "assurance", "qr", "$.assurance", ""),
    (REJECTED, "details", {"attempted": "manual"}, "$.details.attempted", "is not one of"),
    (REJECTED, "details", {"raw_qr": "079303001234|..."}, "$.details", "unknown member"),
    (BHYT_VISIT, "demographics.birth_province", "079", "$.demographics.birth_province",
     "must be null"),
    (BHYT_VISIT, "kind", "entry", "$.kind", ""),
    (BHYT_VISIT, "assurance", "vneid-qr", "$.assurance", ""),
    (ENTRY, "demographics.birth_province", None, "$.demographics.birth_province",
     "is not of type 'string'"),
    (ENTRY, "details", {"vneid_level": 3}, "$.details.vneid_level", "is not one of"),
    (ENTRY, "details", {"qr_flags": ["expired"]}, "$.details.qr_flags[0]", "is not one of"),
    (VISIT, "details", {"insurance": "valid", "qr_flags": []}, "$.details.qr_flags",
     "should be non-empty"),
]


@pytest.mark.parametrize(("event", "member", "value", "path", "words"), INVALID,
                         ids=[f"{e['kind']}:{m}={v!r}"[:60] for e, m, v, *_ in INVALID])
def test_invalid_events_fail_with_the_right_path(event: dict[str, Any], member: str,
                                                 value: Any, path: str, words: str) -> None:
    bad = mutate(event, member, value)
    with pytest.raises(WireError) as info:
        validate("event.v1", bad)
    error = info.value
    assert error.path == path, str(error)
    assert words in error.reason, str(error)
    assert str(error).startswith(path + ": ") and error.schema == "event.v1"


def test_schemas_are_valid_draft_2020_12() -> None:
    for name in SCHEMA_NAMES:
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert load_schema("event.v1") is not load_schema("event.v1")  # fresh copies
    with pytest.raises(KeyError):
        load_schema("nope")


def test_schema_enumerations_match_the_event_model() -> None:
    props = load_schema("event.v1")["properties"]
    assert set(props["kind"]["enum"]) == {k.value for k in EventKind}
    assert set(props["method"]["enum"]) == {m.value for m in Method}
    assert set(props["assurance"]["enum"]) == {a.value for a in EventAssurance}
    assert set(props["demographics"]["properties"]["age_band"]["enum"]) == {*AGE_BANDS, None}
    rejected = set(load_schema("event.v1")["$defs"]["rejected_reason"]["enum"])
    assert {r.value for r in FailureReason} <= rejected
    assert {"qr-invalid", "expired-card", "capacity-full"} <= rejected


def test_parse_message_limits() -> None:
    with pytest.raises(WireError, match="exceeds 16384"):
        parse_message("event.v1", b"{" + b" " * MAX_PAYLOAD_BYTES + b"}")
    with pytest.raises(WireError, match="not JSON"):
        parse_message("event.v1", b"{nope")
    with pytest.raises(WireError, match="not UTF-8"):
        parse_message("event.v1", b"\xff")
    with pytest.raises(WireError, match="not a JSON object"):
        parse_message("event.v1", b"[1]")


def test_topics() -> None:
    assert events_topic("gate-01") == "checkin/v1/gate-01/events"
    assert status_topic("gate-01") == "checkin/v1/gate-01/status"
    assert config_topic("gate-01") == "checkin/v1/gate-01/config"
    assert occupancy_topic("hue-dai-noi") == "checkin/v1/sites/hue-dai-noi/occupancy"
    for bad in ("a/b", "+", "#", ""):
        with pytest.raises(WireError):
            events_topic(bad)


def test_status_occupancy_config_schemas() -> None:
    status = sign_event({
        "v": 1, "state": "online", "device_id": "gate-01", "site_id": "hue-dai-noi",
        "at": "2025-04-30T09:15:30+07:00", "version": "0.1.0", "uptime_s": 5,
        "heartbeat_s": 30, "last_seq": 0, "outbox_depth": 0,
        "oldest_undelivered_at": None, "readers": {"pcsc": "ok"}, "scanners": {}}, SIGNING)
    validate("status.v1", status)
    validate("status.v1", {k: v for k, v in status.items() if k != "sig"})
    validate("status.v1", {"state": "offline"})
    validate("status.v1", {"state": "offline", "v": 1, "device_id": "gate-01",
                           "reason": "connection-lost", "version": "0.1.0"})
    for bad in ({"state": "gone"}, {**status, "outbox_depth": -1},
                {**status, "readers": {"pcsc": "fine"}},
                {**status, "readers": {"pcsc": {"state": "ok", "atr": "3B8F"}}},
                {**status, "holder": "Nguyễn Thị Mai"},
                {"state": "offline", "reason": "bored"},
                {k: v for k, v in status.items() if k != "outbox_depth"}):
        with pytest.raises(WireError):
            validate("status.v1", bad)
    occupancy = {"v": 1, "site_id": "hue-dai-noi", "occupancy": 0, "capacity": None,
                 "at": "2025-04-30T09:15:00Z"}
    validate("occupancy.v1", occupancy)
    with pytest.raises(WireError, match=r"^\$.capacity"):
        validate("occupancy.v1", {**occupancy, "capacity": 0})
    with pytest.raises(WireError, match=r"^\$.occupancy"):
        validate("occupancy.v1", {**occupancy, "occupancy": -1})
    config = {"v": 1, "device_id": "gate-01", "revision": 1, "at": "2025-04-30T06:00:00Z",
              "settings": {"direction": "exit"}}
    validate("config.v1", config)
    with pytest.raises(WireError, match=r"^\$.settings: unknown member"):
        validate("config.v1", {**config, "settings": {"broker_url": "mqtt://evil"}})
    with pytest.raises(WireError, match=r"^\$.settings.dedupe_window_s"):
        validate("config.v1", {**config, "settings": {"dedupe_window_s": -5}})


def test_the_uplink_status_messages_follow_the_contract() -> None:
    from edge_agent.uplink.status import DeviceHealth, offline_status, online_status

    at = datetime(2025, 4, 30, 2, 15, tzinfo=UTC)
    online = online_status(device_id="gate-01", version="0.1.0", outbox_depth=3,
                           oldest_undelivered_at=at, at=at,
                           health=DeviceHealth(readers={"pcsc": "ok"},
                                               scanners={"serial:/dev/ttyACM0": "absent"}),
                           signer=lambda m: sign_event(m, SIGNING))
    verify_event(parse_message("status.v1", online), SIGNING.public_key())
    for reason, when in (("connection-lost", None), ("stopped", at)):
        parse_message("status.v1", offline_status(device_id="gate-01", version="0.1.0",
                                                  reason=reason, at=when))


def test_sealed_plaintext_schema() -> None:
    validate("stay-personal.v1", PERSONAL)
    with pytest.raises(WireError, match=r"^\$.id_number"):
        validate("stay-personal.v1", {**PERSONAL, "id_number": "79303001234"})
    with pytest.raises(WireError, match=r"^\$: unknown member"):
        validate("stay-personal.v1", {**PERSONAL, "religion": "Không"})


def test_wire_imports_neither_side() -> None:
    files = sorted((ROOT / "wire").glob("*.py"))
    assert len(files) >= 6
    for file in files:
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("edge_agent", "central", "firmware_sim",
                                               "drivers", "demo")
                           for n in names), file


# -- docs/protocol.md ---------------------------------------------------------------------------

def doc_examples() -> list[tuple[str, dict[str, Any]]]:
    text = PROTOCOL.read_text(encoding="utf-8")
    found = re.findall(r"<!-- example: ([a-z.0-9-]+) -->\n```json\n(.*?)```", text, re.S)
    return [(name, json.loads(body)) for name, body in found]


def test_doc_has_examples_of_every_message() -> None:
    names = [name for name, _ in doc_examples()]
    assert {"event.v1", "status.v1", "occupancy.v1", "config.v1"} <= set(names)
    kinds = {obj["kind"] for name, obj in doc_examples() if name == "event.v1"}
    assert {"entry", "visit", "stay.start", "manual", "rejected"} <= kinds


@pytest.mark.parametrize(("name", "obj"), doc_examples(),
                         ids=[f"{n}:{o.get('kind', o.get('state', 'x'))}"
                              for n, o in doc_examples()])
def test_doc_example_validates_and_verifies(name: str, obj: dict[str, Any]) -> None:
    validate(name, obj)
    if "sig" in obj:
        verify_event(obj, DOC_DEVICE_KEY.public_key())
    if obj.get("sealed"):
        aad = f"{obj['event_id']}|{obj['device_id']}".encode()
        plain = open_sealed(SealedBox.from_json(obj["sealed"]), DOC_CENTRE_KEY, aad)
        validate("stay-personal.v1", plain)
        assert plain["id_number"] == "079303001234"
        clear = json.dumps({k: v for k, v in obj.items() if k != "sealed"}, ensure_ascii=False)
        assert "079303001234" not in clear and "Nguyễn" not in clear


def test_doc_worked_example_commands_carry_valid_messages() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    block = re.search(r"<!-- worked-example: shell -->\n```sh\n(.*?)```", text, re.S)
    assert block is not None
    script = block.group(1).replace("\\\n", " ")
    published = []
    for line in script.splitlines():
        if not line.strip().startswith("mosquitto_pub"):
            continue
        args = shlex.split(line)
        topic = args[args.index("-t") + 1]
        payload = args[args.index("-m") + 1]
        published.append(topic)
        level = topic.split("/")
        schema = {"events": "event.v1", "status": "status.v1", "config": "config.v1",
                  "occupancy": "occupancy.v1"}[level[-1]]
        obj = parse_message(schema, payload.encode("utf-8"))
        if level[2] != "sites":
            assert obj["device_id"] == level[2]
        else:
            assert obj["site_id"] == level[3]
        if "--will-payload" in args:
            validate("status.v1", json.loads(args[args.index("--will-payload") + 1]))
            assert args[args.index("--will-topic") + 1] == topic
    assert published == [status_topic("gate-ngo-mon-01"), events_topic("gate-ngo-mon-01"),
                         occupancy_topic("hue-dai-noi"), config_topic("gate-ngo-mon-01")]
    expected = int(re.search(r"-v -C (\d+)", script).group(1))  # type: ignore[union-attr]
    assert expected == len(published)


def test_doc_documents_every_reason_code_and_detail() -> None:
    text = PROTOCOL.read_text(encoding="utf-8")
    schema = load_schema("event.v1")["$defs"]
    for code in schema["rejected_reason"]["enum"] + schema["manual_reason"]["enum"]:
        assert f"`{code}`" in text, code
    for member in ("stay_id", "ward_or_room", "expected_departure", "reason_code",
                   "insurance", "department", "counts_as", "attempted", "qr_mismatch",
                   "over_capacity", "qr_flags", "vneid_level", "bhyt-qr"):
        assert f"`{member}`" in text, member

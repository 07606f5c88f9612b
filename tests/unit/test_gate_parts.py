"""The agent's pure parts around the presentation machine: health mapping within status.v1,
the junk-rejection budget, the outputs per verdict, desk forms, the [[lanes]] / [outputs] /
chip configuration, and the kiosk's CAN pad and direction endpoints."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import VerifyKey

from drivers.card_reader import ReaderError
from edge_agent.config import ConfigError, Direction, OutputsBackend, parse_config
from edge_agent.desk import parse_manual, parse_stay
from edge_agent.events.model import Demographics, EventAssurance, EventDraft, EventKind, Method
from edge_agent.flows import (
    AccommodationFlow,
    Counts,
    HeritageGateFlow,
    HospitalFlow,
    ManualReason,
    Outcome,
    Verdict,
)
from edge_agent.flows.messages import Text
from edge_agent.health import MAX_DETAIL, Health, HealthState, wire_health
from edge_agent.junk import RejectedBudget, is_junk
from edge_agent.kiosk import KioskState, create_app
from edge_agent.kiosk.app import DESK_HEADER
from edge_agent.signals import plan_for
from edge_agent.uplink.status import DeviceHealth, online_status
from wire import parse_message
from wire.signing import sign_event, verify_signature

AT = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()
CENTRE_VIEW = VerifyKey(KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
"""The device key as the collector holds it (PyNaCl)."""


# -- health -----------------------------------------------------------------------------------

FAILURES: list[Health] = [
    Health.ok(), Health(HealthState.STARTING), Health(HealthState.DISABLED),
    Health.absent(ReaderError("no PC/SC reader")),
    Health.absent(OSError(2, "No such file or directory: '/dev/ttyACM0'")),
    Health.error(ReaderError("card lost\r\n\x00 in the middle" + "x" * 500)),
    Health.error("stopped: RuntimeError: " + "é" * 300),
    Health.error(""),
]


def test_every_driver_failure_maps_to_a_status_the_schema_and_centre_accept() -> None:
    readers = {f"sim:/cards/{n}": h for n, h in enumerate(FAILURES)}
    scanners = {"serial:/dev/ttyACM0?" + "a" * 300: Health.error("x"),
                **{f"hid:{n}": Health.absent("gone") for n in range(30)}}
    payload = online_status(device_id="gate-01", version="1.0", outbox_depth=0,
                            oldest_undelivered_at=None, at=AT,
                            health=DeviceHealth(readers=wire_health(readers),
                                                scanners=wire_health(scanners)),
                            signer=lambda m: sign_event(m, KEY))
    message = parse_message("status.v1", payload)  # raises on any schema violation
    verify_signature(message, CENTRE_VIEW, float_free=True)
    states = [v if isinstance(v, str) else v["state"] for v in message["readers"].values()]
    assert states == ["ok", "starting", "disabled", "absent", "absent", "error", "error", "error"]
    detail = message["readers"]["sim:/cards/5"]["detail"]
    assert len(detail) <= MAX_DETAIL and "\x00" not in detail and "\n" not in detail
    assert len(message["scanners"]) == 16


def test_a_tampered_signed_status_is_refused_by_the_centre() -> None:
    payload = online_status(device_id="gate-01", version="1.0", outbox_depth=0,
                            oldest_undelivered_at=None, at=AT, health=DeviceHealth(),
                            signer=lambda m: sign_event(m, KEY))
    message = parse_message("status.v1", payload)
    message["outbox_depth"] = 5
    with pytest.raises(Exception, match="signature"):
        verify_signature(message, CENTRE_VIEW, float_free=True)


# -- junk budget ------------------------------------------------------------------------------

def rejected(reason: str) -> EventDraft:
    return EventDraft(kind=EventKind.REJECTED, method=Method.CARD_QR,
                      assurance=EventAssurance.NONE, occurred_at=AT, subject=None, count=1,
                      demographics=Demographics(), reason=reason, details={})


def test_only_unreadable_scans_are_junk() -> None:
    assert is_junk([rejected("qr-invalid")])
    assert not is_junk([rejected("capacity-full")])
    assert not is_junk([])


def test_the_budget_limits_the_rate_and_the_pending_junk() -> None:
    budget = RejectedBudget(per_minute=3, max_pending=10)
    assert [budget.admit(0.0, 0) for _ in range(5)] == [True, True, True, False, False]
    assert budget.admit(20.0, 0)          # one token back after 20 s
    assert not budget.admit(20.0, 0)
    assert not budget.admit(1000.0, 10)   # bound of pending junk reached
    assert budget.admit(1000.0, 9)
    with pytest.raises(ValueError):
        RejectedBudget(-1, 1)


# -- outputs per verdict ----------------------------------------------------------------------

def verdict(outcome: Outcome, warnings: tuple[str, ...] = ()) -> Verdict:
    return Verdict(accepted=outcome in (Outcome.ACCEPTED, Outcome.ALREADY_COUNTED),
                   outcome=outcome, text_title=Text("a", "a"), text_message=Text("b", "b"),
                   counts=Counts(day=date(2026, 5, 1)), warnings=warnings)


@pytest.mark.parametrize(("outcome", "warnings", "gate", "signal", "relay"), [
    (Outcome.ACCEPTED, (), True, "accept", True),
    (Outcome.ACCEPTED, ("capacity-warn",), True, "warn", True),
    (Outcome.ALREADY_COUNTED, (), True, "warn", True),   # repeat tap: the turnstile again
    (Outcome.REJECTED, (), True, "reject", False),
    (Outcome.NOT_RECORDED, (), True, "reject", False),
    (Outcome.REFUSED, (), False, "reject", False),
    (Outcome.ACCEPTED, (), False, "accept", False),       # a desk has no turnstile
])
def test_output_patterns(outcome: Outcome, warnings: tuple[str, ...], gate: bool, signal: str,
                         relay: bool) -> None:
    plan = plan_for(verdict(outcome, warnings), gate=gate)
    assert (plan.signal, plan.relay) == (signal, relay)


# -- desk forms and declared actions ------------------------------------------------------------

def test_desk_forms_parse_or_say_why() -> None:
    assert parse_manual({"reason": "child", "count": "3"}).count == 3
    assert parse_manual({"reason": "no-card"}).reason is ManualReason.NO_CARD
    for bad in ({"reason": "vip"}, {"reason": "child", "count": "x"},
                {"reason": "child", "count": True}, {"reason": "child", "count": [1]}):
        with pytest.raises(ValueError):
            parse_manual(bad)
    form = parse_stay({"room": " 12A ", "expected_departure": "2026-05-03"})
    assert (form.room, form.expected_departure) == ("12A", date(2026, 5, 3))
    for bad in ({"room": "", "expected_departure": "2026-05-03"},
                {"room": "1", "expected_departure": "3/5/2026"},
                {"room": "x" * 65, "expected_departure": "2026-05-03"},
                {"room": "1", "expected_departure": "2026-05-03", "reason_code": "holiday"}):
        with pytest.raises(ValueError):
            parse_stay(bad)
    assert parse_stay({"room": "1", "expected_departure": "2026-05-03",
                       "reason_code": "caregiver"}).reason_code == "caregiver"


def test_flows_declare_the_desk_actions_they_accept() -> None:
    assert HeritageGateFlow.ACTIONS == ("manual",)
    assert HospitalFlow.ACTIONS == ("manual", "admit", "discharge", "next")
    assert AccommodationFlow.ACTIONS == ("check_in", "check_out")


# -- configuration ----------------------------------------------------------------------------

GATE = """
[device]
id = "gate-01"
site_id = "hue"
site_kind = "heritage-gate"
direction = "both"

[keys]
signing_key = "k/sign.pem"
centre_public_key = "k/centre.pem"
subject_key = "k/subject.key"

[readers]
uris = ["pcsc:0", "pcsc:1"]

[scanners]
uris = ["serial:/dev/ttyACM0", "serial:/dev/ttyACM1"]

[broker]
url = "mqtt://127.0.0.1:1883"

[outbox]
path = "outbox.sqlite3"
"""

LANES = """
[[lanes]]
name = "vao"
readers = ["pcsc:0"]
scanners = ["serial:/dev/ttyACM0"]
direction = "entry"

[[lanes]]
name = "ra"
readers = ["pcsc:1"]
scanners = ["serial:/dev/ttyACM1"]
direction = "exit"
"""


def test_defaults_one_lane_no_outputs_and_a_short_tap_window() -> None:
    config = parse_config(GATE)
    (lane,) = config.lanes
    assert lane.readers == ("pcsc:0", "pcsc:1") and lane.direction is None
    assert config.outputs.backend is OutputsBackend.NONE
    assert config.chip.tap_window_s == 4.0 and config.chip.after_qr and config.chip.can_pad
    assert (config.outbox.max_rejected, config.outbox.rejected_per_minute) == (1000, 30)


def test_lanes_pair_readers_and_scanners_with_a_direction() -> None:
    config = parse_config(GATE + LANES + '\n[chip]\ntap_window_s = 2.5\nafter_qr = false\n')
    assert [(lane.name, lane.direction) for lane in config.lanes] == [
        ("vao", Direction.ENTRY), ("ra", Direction.EXIT)]
    assert config.chip.tap_window_s == 2.5 and not config.chip.after_qr


@pytest.mark.parametrize(("text", "key"), [
    (GATE + LANES.replace('"pcsc:1"', '"pcsc:0"'), "lanes[1].readers"),
    (GATE + LANES.replace('"pcsc:1"', '"pcsc:9"'), "lanes[1].readers"),
    (GATE + LANES[:LANES.index("[[lanes]]", 5)], "lanes"),  # pcsc:1 and ttyACM1 in no lane
    (GATE + LANES.replace('"ra"', '"vao"'), "lanes[1].name"),
    (GATE.replace('"both"', '"entry"') + LANES, "lanes[1].direction"),
    ("lanes = 3\n" + GATE, "lanes"),
    (GATE + "\n[chip]\ntap_window_s = 0\n", "chip.tap_window_s"),
    (GATE + "\n[outputs]\nrelay = 40\n", "outputs.relay"),
    (GATE + "\n[outputs]\nrelay = 17\nbuzzer = 17\n", "outputs"),
    (GATE + '\n[outputs]\nbackend = "gpiozero"\n', "outputs.backend"),
    (GATE + "\n[outputs]\nrelay_pulse_s = 30\n", "outputs.relay_pulse_s"),
    (GATE + "\n[outputs]\nbell = 3\n", "outputs.bell"),
])
def test_bad_lanes_and_outputs_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == key, info.value


def test_outputs_table() -> None:
    config = parse_config(GATE + "\n[outputs]\nrelay = 17\nbuzzer = 27\ngreen = 22\n"
                          "red = 23\namber = 24\nrelay_pulse_s = 1.5\n")
    assert config.outputs.backend is OutputsBackend.GPIOZERO
    assert config.outputs.pins() == {"relay": 17, "buzzer": 27, "green": 22, "red": 23,
                                     "amber": 24, "relay_active_high": True}
    simulated = parse_config(GATE + '\n[outputs]\nbackend = "simulated"\nrelay = 17\n')
    assert simulated.outputs.backend is OutputsBackend.SIMULATED


# -- kiosk endpoints ----------------------------------------------------------------------------

def test_can_pad_and_direction_posts_need_the_custom_header() -> None:
    calls: list[tuple[str, Any]] = []

    def can(lane: str, digits: str) -> dict[str, Any]:
        calls.append(("can", (lane, digits)))
        return {"lane": lane}

    def choose(direction: str) -> dict[str, Any]:
        if direction not in ("entry", "exit"):
            raise ValueError("direction must be entry or exit")
        calls.append(("direction", direction))
        return {"direction": direction}

    client = create_app(KioskState(choose_direction=True, direction="entry"), can=can,
                        choose_direction=choose).test_client()
    headers = {DESK_HEADER: "1"}
    assert client.post("/can", json={"lane": "1", "can": "123456"}).status_code == 403
    assert client.post("/direction", json={"direction": "exit"}).status_code == 403
    assert client.post("/can", json={"lane": "1", "can": "123456"},
                       headers=headers).status_code == 200
    assert client.post("/direction", json={"direction": "exit"},
                       headers=headers).status_code == 200
    bad = client.post("/direction", json={"direction": "up"}, headers=headers)
    assert bad.status_code == 422 and "entry or exit" in bad.get_json()["error"]
    assert client.post("/can", data="x", headers=headers).status_code == 400
    assert calls == [("can", ("1", "123456")), ("direction", "exit")]
    html = client.get("/").get_data(as_text=True)
    assert "VÀO" in html and "RA" in html and 'data-direction="exit"' in html
    assert create_app(KioskState()).test_client().post(
        "/can", json={}, headers=headers).status_code == 404


def test_desk_pin_locks_the_desk_page_and_its_actions() -> None:
    done: list[str] = []

    def desk(action: str, fields: dict[str, Any]) -> dict[str, Any]:
        done.append(action)
        return {"title": "ok"}

    app = create_app(KioskState(), desk=desk, desk_actions=("manual",), desk_pin="2468",
                     selected=lambda: {"masked_id": "********3820", "name": "Oanh", "age_s": 2})
    client = app.test_client()
    headers = {DESK_HEADER: "1"}
    assert 'id="desk-unlock"' in client.get("/desk").get_data(as_text=True)
    assert client.post("/desk/manual", json={"reason": "child"}, headers=headers).status_code == 403
    assert client.get("/desk/selected").status_code == 403
    assert client.post("/desk/unlock", json={"pin": "1111"}, headers=headers).status_code == 403
    assert client.post("/desk/unlock", json={"pin": "2468"}).status_code == 403  # no header
    assert client.post("/desk/unlock", json={"pin": "2468"}, headers=headers).status_code == 200
    page = client.get("/desk").get_data(as_text=True)
    assert 'id="desk-unlock"' not in page and 'data-action="manual"' in page
    assert client.get("/desk/selected").get_json()["selected"]["masked_id"] == "********3820"
    assert client.post("/desk/manual", json={"reason": "child"}, headers=headers).status_code == 200
    assert client.post("/desk/lock", json={}, headers=headers).status_code == 200
    assert client.post("/desk/manual", json={"reason": "child"}, headers=headers).status_code == 403
    assert done == ["manual"]
    # Another browser (no cookie) is still locked; the kiosk page links to the desk.
    assert app.test_client().get("/desk/selected").status_code == 403
    assert 'href="/desk"' in client.get("/").get_data(as_text=True)


def test_wrong_pins_lock_the_pad_for_a_while() -> None:
    app = create_app(KioskState(), desk=lambda a, f: {}, desk_actions=("manual",),
                     desk_pin="2468")
    client = app.test_client()
    headers = {DESK_HEADER: "1"}
    codes = [client.post("/desk/unlock", json={"pin": "0000"}, headers=headers).status_code
             for _ in range(5)]
    assert codes == [403] * 5
    assert client.post("/desk/unlock", json={"pin": "2468"}, headers=headers).status_code == 429


def test_without_a_pin_the_desk_is_open_as_before() -> None:
    app = create_app(KioskState(), desk=lambda a, f: {"title": "ok"}, desk_actions=("manual",))
    client = app.test_client()
    assert client.post("/desk/manual", json={}, headers={DESK_HEADER: "1"}).status_code == 200
    assert client.post("/desk/unlock", json={}, headers={DESK_HEADER: "1"}).status_code == 404


@pytest.mark.parametrize("pin", ['"12"', '"123456789"', '"12a4"', "2468"])
def test_desk_pin_configuration(pin: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(GATE + f"\n[kiosk]\ndesk_pin = {pin}\n")
    assert info.value.key == "kiosk.desk_pin"
    assert parse_config(GATE + '\n[kiosk]\ndesk_pin = "2468"\n').kiosk.desk_pin == "2468"


def test_only_the_current_face_image_is_served_and_only_displayable_types() -> None:
    state = KioskState()
    client = create_app(state).test_client()
    url = state.keep_photo(b"\xff\xd8jpeg", "image/jpeg")
    assert url is not None
    response = client.get(url)
    assert response.status_code == 200 and response.data == b"\xff\xd8jpeg"
    assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/photo/guessed").status_code == 404
    assert state.keep_photo(b"\x00\x00\x00\x0cjP", "image/jp2") is None  # not displayable
    assert client.get(url).status_code == 404  # the previous face is gone
    assert state.keep_photo(None, None) is None

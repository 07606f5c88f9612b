"""The centre's runtime configuration on the device (edge_agent.runtime_config,
docs/protocol.md §8): parse, revision rule, merge over the TOML configuration."""

from __future__ import annotations

from typing import Any

import pytest

from edge_agent.config import (
    CapacityPolicy,
    Config,
    Direction,
    Language,
    NameDisplay,
    parse_config,
)
from edge_agent.runtime_config import (
    RuntimeConfigError,
    RuntimeSettings,
    accept,
    apply,
    parse_config_message,
)

GATE = """
[device]
id = "gate-01"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "entry"

[keys]
signing_key = "k/sign.pem"
centre_public_key = "k/centre.pem"
subject_key = "k/subject.key"

[readers]
uris = ["sim:/tmp/card"]

[broker]
url = "mqtt://127.0.0.1:1883"
heartbeat_s = 30

[capacity]
dedupe_window_s = 5

[outbox]
path = "outbox.sqlite3"
"""

DESK = GATE.replace('site_kind = "heritage-gate"\ndirection = "entry"',
                    'site_kind = "hospital-reception"').replace("gate-01", "desk-01")


def message(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"v": 1, "device_id": "gate-01", "revision": 3,
                            "at": "2026-12-06T03:00:00.000+00:00",
                            "settings": {"language": "en", "dedupe_window_s": 60}}
    base.update(changes)
    return base


def gate() -> Config:
    return parse_config(GATE)


def test_a_valid_message_parses_into_typed_settings() -> None:
    runtime = parse_config_message(message(settings={
        "direction": "both", "language": "en", "name_display": "initials",
        "capacity_policy": "refuse", "dedupe_window_s": 0, "heartbeat_s": 5}), "gate-01")
    assert runtime.revision == 3 and runtime.device_id == "gate-01"
    assert runtime.settings == RuntimeSettings(
        direction=Direction.BOTH, language=Language.EN, name_display=NameDisplay.INITIALS,
        capacity_policy=CapacityPolicy.REFUSE, dedupe_window_s=0, heartbeat_s=5)
    assert runtime.settings.as_dict() == {
        "direction": "both", "language": "en", "name_display": "initials",
        "capacity_policy": "refuse", "dedupe_window_s": 0, "heartbeat_s": 5}
    assert runtime.message == message(settings=runtime.settings.as_dict())


@pytest.mark.parametrize(("bad", "reason"), [
    ([1, 2], "not a JSON object"),
    (message(v=2), "$.v"),
    (message(revision=0), "$.revision"),
    (message(revision="4"), "$.revision"),
    (message(at="yesterday"), "$.at"),
    (message(device_id="Gate 01"), "$.device_id"),
    (message(settings={"broker": "mqtt://evil"}), "$.settings"),
    (message(settings={"language": "fr"}), "$.settings.language"),
    (message(settings={"dedupe_window_s": 3601}), "$.settings.dedupe_window_s"),
    (message(settings={"heartbeat_s": 1}), "$.settings.heartbeat_s"),
    (message(extra=True), "$"),
    ({k: v for k, v in message().items() if k != "settings"}, "settings"),
    (message(device_id="gate-02"), "addressed to device 'gate-02', not to this device"),
])
def test_malformed_or_foreign_messages_are_refused_with_a_reason(bad: Any, reason: str) -> None:
    with pytest.raises(RuntimeConfigError) as caught:
        parse_config_message(bad, "gate-01")
    assert reason in caught.value.reason


def test_only_a_higher_revision_is_accepted() -> None:
    runtime = parse_config_message(message(revision=3), "gate-01")
    accept(runtime, 0)
    accept(runtime, 2)
    for held in (3, 4):
        with pytest.raises(RuntimeConfigError, match=f"revision 3 is not above .*{held}"):
            accept(runtime, held)


def test_settings_are_laid_over_the_local_configuration() -> None:
    base = gate()
    merged = apply(base, RuntimeSettings(direction=Direction.BOTH, language=Language.EN,
                                         name_display=NameDisplay.GIVEN,
                                         capacity_policy=CapacityPolicy.REFUSE,
                                         dedupe_window_s=90, heartbeat_s=10))
    assert merged.device.direction is Direction.BOTH
    assert merged.device.language is Language.EN
    assert merged.device.name_display is NameDisplay.GIVEN
    assert merged.capacity.policy is CapacityPolicy.REFUSE
    assert merged.capacity.dedupe_window_s == 90
    assert merged.broker.heartbeat_s == 10
    # Nothing else moves: keys, broker URL, readers, outbox stay local.
    assert (merged.keys, merged.broker.url, merged.readers, merged.outbox) == (
        base.keys, base.broker.url, base.readers, base.outbox)


def test_a_setting_not_named_keeps_the_local_value_not_the_previous_revision() -> None:
    base = gate()
    first = apply(base, RuntimeSettings(language=Language.EN, dedupe_window_s=0))
    assert (first.device.language, first.capacity.dedupe_window_s) == (Language.EN, 0)
    second = apply(base, RuntimeSettings(language=Language.EN))
    assert second.capacity.dedupe_window_s == 5  # back to the TOML value
    assert apply(base, RuntimeSettings()) == base


def test_direction_is_refused_where_it_does_not_apply() -> None:
    desk = parse_config(DESK)
    with pytest.raises(RuntimeConfigError, match="heritage-gate devices only"):
        apply(desk, RuntimeSettings(direction=Direction.ENTRY))
    assert apply(desk, RuntimeSettings(language=Language.EN)).device.language is Language.EN

    lanes = parse_config(GATE.replace('direction = "entry"', 'direction = "both"') + """
[[lanes]]
name = "A"
readers = ["sim:/tmp/card"]
direction = "exit"
""")
    with pytest.raises(RuntimeConfigError, match="conflicts with lane 'A'"):
        apply(lanes, RuntimeSettings(direction=Direction.ENTRY))
    assert apply(lanes, RuntimeSettings(direction=Direction.EXIT)).device.direction is \
        Direction.EXIT

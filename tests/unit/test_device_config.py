"""The centre's side of the runtime configuration (central.device_config, docs/protocol.md §8):
revision rule, merging with the retained settings, schema-valid messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from central.device_config import (
    DeviceConfigError,
    config_message,
    merge_settings,
    next_revision,
    parse_retained,
)
from wire import validate

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def test_revision_is_above_the_retained_one_and_the_clock() -> None:
    assert next_revision(None, NOW) == NOW_MS
    assert next_revision(7, NOW) == NOW_MS
    assert next_revision(NOW_MS + 5, NOW) == NOW_MS + 6  # a clock behind the last publish


def test_settings_not_given_are_kept_unless_reset() -> None:
    previous = {"language": "en", "dedupe_window_s": 60}
    assert merge_settings(previous, {"heartbeat_s": 10}) == {
        "language": "en", "dedupe_window_s": 60, "heartbeat_s": 10}
    assert merge_settings(previous, {"language": "vi"}) == {"language": "vi",
                                                            "dedupe_window_s": 60}
    assert merge_settings(previous, {"heartbeat_s": 10}, reset=True) == {"heartbeat_s": 10}
    with pytest.raises(DeviceConfigError, match="not settable by the centre: broker"):
        merge_settings({}, {"broker": "mqtt://elsewhere"})


def test_message_is_schema_valid_or_refused() -> None:
    message = config_message("gate-01", 5, NOW, {"language": "en", "direction": "both"})
    validate("config.v1", message)
    assert message["at"] == "2026-12-06T03:00:00.000+00:00"
    with pytest.raises(DeviceConfigError, match=r"\$\.settings\.dedupe_window_s"):
        config_message("gate-01", 5, NOW, {"dedupe_window_s": 99999})
    with pytest.raises(DeviceConfigError, match=r"\$\.device_id"):
        config_message("Gate 01", 5, NOW, {})


def test_retained_message_read_back() -> None:
    message = config_message("gate-01", 5, NOW, {"language": "en"})
    assert parse_retained(json.dumps(message).encode(), "gate-01") == message
    assert parse_retained(b"", "gate-01") is None
    for bad, reason in ((b"{", "not valid"), (b'{"v": 1}', "not valid"),
                        (b"\xff", "not valid"),
                        (json.dumps(message).encode(), "names 'gate-01'")):
        with pytest.raises(DeviceConfigError, match=reason):
            parse_retained(bad, "gate-02" if b"gate-01" in bad else "gate-01")

"""Topic names of wire v1: builders for each side and the collector's parser (docs/protocol.md §3).

Pure code shared by the agent (:mod:`edge_agent.uplink`) and the collector (ingest, broker ACLs,
occupancy and configuration publishers), so neither writes a topic by hand.
"""

from __future__ import annotations

from typing import Literal

from wire.errors import WireError

__all__ = [
    "EVENTS_FILTER", "STATUS_FILTER", "TOPIC_PREFIX", "TopicError", "check_level",
    "config_topic", "events_topic", "occupancy_topic", "receipts_topic", "split_topic",
    "status_topic",
]

TOPIC_PREFIX = "checkin/v1"
"""The root of every topic of wire v1."""
EVENTS_FILTER = f"{TOPIC_PREFIX}/+/events"
"""Every device's events (the collector subscribes to it through a shared subscription)."""
STATUS_FILTER = f"{TOPIC_PREFIX}/+/status"
"""Every device's status, heartbeat and last will."""
_FORBIDDEN = "/+#\x00"


class TopicError(WireError):
    """A device or site id that cannot be one level of a topic."""

    def __init__(self, reason: str) -> None:
        super().__init__("$", reason)


def check_level(value: str, what: str) -> str:
    """``value`` if it can be one topic level: not empty, no ``/``, ``+``, ``#`` or NUL (MQTT 5
    §4.7), no surrounding white space; :class:`TopicError` otherwise."""
    if not value or any(c in value for c in _FORBIDDEN) or value != value.strip():
        raise TopicError(f"{what} {value!r} cannot be a topic level")
    return value


def events_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/events`` (QoS 1, not retained)."""
    return f"{TOPIC_PREFIX}/{check_level(device_id, 'device id')}/events"


def status_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/status`` (retained; the last will lives here)."""
    return f"{TOPIC_PREFIX}/{check_level(device_id, 'device id')}/status"


def config_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/config`` (retained, central → device)."""
    return f"{TOPIC_PREFIX}/{check_level(device_id, 'device id')}/config"


def receipts_topic(device_id: str) -> str:
    """``checkin/v1/<device_id>/receipts`` (retained, central → device; wire v2,
    docs/protocol.md §4.11)."""
    return f"{TOPIC_PREFIX}/{check_level(device_id, 'device id')}/receipts"


def occupancy_topic(site_id: str) -> str:
    """``checkin/v1/sites/<site_id>/occupancy`` (retained, central → devices)."""
    return f"{TOPIC_PREFIX}/sites/{check_level(site_id, 'site id')}/occupancy"


def split_topic(topic: str) -> tuple[str, Literal["event", "status"]] | None:
    """``checkin/v1/<device_id>/events|status`` → (device_id, ``"event"`` | ``"status"``);
    ``None`` for any other topic."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[2] == "sites":
        return None
    if not parts[2]:
        return None
    if parts[3] == "events":
        return parts[2], "event"
    if parts[3] == "status":
        return parts[2], "status"
    return None

"""Runtime configuration from the centre (docs/protocol.md §8): parse, check, merge. No I/O.

The centre keeps one retained message per device on ``checkin/v1/<device_id>/config``
(schema ``config.v1``). Its ``settings`` are the *whole* set of overrides at that revision: they
are laid over the device's own TOML configuration (never over the previous revision), so a
setting the centre no longer names returns to the local value. A message is taken only if it
fits the schema, names this device, carries a revision above the one the device holds and its
settings fit this device (``direction`` only at a heritage gate, and never against a lane's
fixed direction); anything else is refused whole with a :class:`RuntimeConfigError` naming the
reason (never a partial change).

The agent persists the message it applied (the same JSON, see ``Agent``) and parses it again
with :func:`parse_config_message` at start-up, so a broker that lost its retained message does
not revert the device.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from edge_agent.config import (
    CapacityPolicy,
    Config,
    Direction,
    Language,
    NameDisplay,
    SiteKind,
)
from wire import WireError, validate

__all__ = ["RuntimeConfig", "RuntimeConfigError", "RuntimeSettings", "accept", "apply",
           "parse_config_message"]


class RuntimeConfigError(ValueError):
    """A configuration message the device does not apply; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """The overrides the centre may send (docs/configuration.md); None: the local value."""

    direction: Direction | None = None
    language: Language | None = None
    name_display: NameDisplay | None = None
    capacity_policy: CapacityPolicy | None = None
    dedupe_window_s: int | None = None
    heartbeat_s: int | None = None

    def as_dict(self) -> dict[str, str | int]:
        """The settings given, as on the wire."""
        out: dict[str, str | int] = {}
        for field in fields(self):
            name, value = field.name, getattr(self, field.name)
            if value is not None:
                out[name] = value.value if hasattr(value, "value") else value
        return out


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    """One parsed ``config.v1`` message."""

    device_id: str
    revision: int
    at: str
    settings: RuntimeSettings
    message: dict[str, Any]
    """The message as received (what the agent persists)."""


def parse_config_message(message: Any, device_id: str) -> RuntimeConfig:
    """A ``config.v1`` message for ``device_id``; raises :class:`RuntimeConfigError`."""
    if not isinstance(message, dict):
        raise RuntimeConfigError("not a JSON object")
    try:
        validate("config.v1", message)
    except WireError as exc:
        raise RuntimeConfigError(f"not a valid config.v1 message: {exc}") from None
    if message["device_id"] != device_id:
        raise RuntimeConfigError(f"addressed to device {message['device_id']!r}, "
                                 f"not to this device {device_id!r}")
    raw = message["settings"]
    settings = RuntimeSettings(
        direction=Direction(raw["direction"]) if "direction" in raw else None,
        language=Language(raw["language"]) if "language" in raw else None,
        name_display=NameDisplay(raw["name_display"]) if "name_display" in raw else None,
        capacity_policy=(CapacityPolicy(raw["capacity_policy"]) if "capacity_policy" in raw
                         else None),
        dedupe_window_s=raw.get("dedupe_window_s"),
        heartbeat_s=raw.get("heartbeat_s"))
    return RuntimeConfig(device_id=device_id, revision=int(message["revision"]),
                         at=str(message["at"]), settings=settings, message=dict(message))


def accept(runtime: RuntimeConfig, held_revision: int) -> None:
    """Raise :class:`RuntimeConfigError` unless ``runtime`` is newer than the revision held
    (0: none held)."""
    if runtime.revision <= held_revision:
        raise RuntimeConfigError(f"revision {runtime.revision} is not above the revision "
                                 f"held ({held_revision})")


def apply(base: Config, settings: RuntimeSettings) -> Config:
    """``base`` (the device's TOML configuration) with ``settings`` laid over it; raises
    :class:`RuntimeConfigError` when a setting does not fit this device."""
    device = base.device
    direction = device.direction
    if settings.direction is not None:
        if device.site_kind is not SiteKind.HERITAGE_GATE:
            raise RuntimeConfigError(f"direction applies to heritage-gate devices only, not "
                                     f"{device.site_kind}")
        direction = settings.direction
        for lane in base.lanes:
            if lane.direction is not None and direction not in (Direction.BOTH,
                                                                lane.direction):
                raise RuntimeConfigError(
                    f"direction {direction} conflicts with lane {lane.name!r}, fixed to "
                    f"{lane.direction}; only \"both\" or {lane.direction} fit this device")
    return replace(
        base,
        device=replace(device, direction=direction,
                       language=settings.language or device.language,
                       name_display=settings.name_display or device.name_display),
        capacity=replace(base.capacity,
                         policy=settings.capacity_policy or base.capacity.policy,
                         dedupe_window_s=(base.capacity.dedupe_window_s
                                          if settings.dedupe_window_s is None
                                          else settings.dedupe_window_s)),
        broker=replace(base.broker,
                       heartbeat_s=(base.broker.heartbeat_s if settings.heartbeat_s is None
                                    else settings.heartbeat_s)))

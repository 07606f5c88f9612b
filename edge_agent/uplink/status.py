"""The retained status message and its last will (docs/design.md §3, MQTT 5 §3.1.2.5).

``checkin/v1/<device_id>/status`` always holds the device's latest word (retained, §3.3.1.3):

* the **will** registered in CONNECT, which the broker publishes when the connection is lost
  without a DISCONNECT (§3.1.2.5): ``{"v":1,"device_id","state":"offline","reason":
  "connection-lost","version"}``; it cannot carry a time (it is written at connect time);
* ``online`` at connect and at every heartbeat, with the outbox depth, the commit time of the
  oldest undelivered event, reader and scanner health and the software version (plus the
  optional ``site_id``, ``last_seq``, ``outbox_bytes``, ``uptime_s``, ``heartbeat_s`` of
  docs/protocol.md §6);
* ``offline`` with ``"reason":"stopped"`` and ``at`` on a clean stop (the normal DISCONNECT
  discards the will, §3.14.4).

Health values are a state of the schema (``ok | absent | error | starting | disabled``) or
``{"state", "detail"}`` with a bounded one-line detail; the agent maps every driver failure to
one (:mod:`edge_agent.health`). They never carry card data. The agent signs every status it
publishes with the device key (docs/protocol.md §4.8, §6); the will is written at connect time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wire.signing import wire_bytes

STATUS_VERSION = 1


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """What the agent reports of its peripherals in each heartbeat."""

    readers: Mapping[str, Any] = field(default_factory=dict)
    scanners: Mapping[str, Any] = field(default_factory=dict)


StatusProvider = Callable[[], DeviceHealth]
StatusSigner = Callable[[dict[str, Any]], dict[str, Any]]


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


def _encode(message: dict[str, Any], signer: StatusSigner | None) -> bytes:
    if signer is not None:
        message = signer(message)
    return wire_bytes(message)


def online_status(*, device_id: str, version: str, outbox_depth: int,
                  oldest_undelivered_at: datetime | None, health: DeviceHealth, at: datetime,
                  site_id: str | None = None, last_seq: int | None = None,
                  outbox_bytes: int | None = None, uptime_s: int | None = None,
                  heartbeat_s: int | None = None,
                  signer: StatusSigner | None = None, unreceipted: int | None = None,
                  oldest_unreceipted_at: datetime | None = None) -> bytes:
    optional: dict[str, Any] = {
        "site_id": site_id, "last_seq": last_seq, "outbox_bytes": outbox_bytes,
        "uptime_s": uptime_s, "heartbeat_s": heartbeat_s, "unreceipted": unreceipted}
    if unreceipted is not None:  # wire v2 receipts (docs/protocol.md §4.11)
        optional["oldest_unreceipted_at"] = (None if oldest_unreceipted_at is None
                                             else rfc3339(oldest_unreceipted_at))
    return _encode({
        **{k: v for k, v in optional.items()
           if v is not None or k == "oldest_unreceipted_at"},
        "v": STATUS_VERSION,
        "device_id": device_id,
        "state": "online",
        "version": version,
        "outbox_depth": outbox_depth,
        "oldest_undelivered_at": (None if oldest_undelivered_at is None
                                  else rfc3339(oldest_undelivered_at)),
        "readers": dict(health.readers),
        "scanners": dict(health.scanners),
        "at": rfc3339(at),
    }, signer)


def offline_status(*, device_id: str, version: str, reason: str, at: datetime | None,
                   signer: StatusSigner | None = None) -> bytes:
    message: dict[str, Any] = {"v": STATUS_VERSION, "device_id": device_id, "state": "offline",
                               "reason": reason, "version": version}
    if at is not None:
        message["at"] = rfc3339(at)
    return _encode(message, signer)

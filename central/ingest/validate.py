"""The validation pipeline: from MQTT bytes to an accepted message or a specific rejection.

Stage 1 (:func:`decode`, no database): topic, size (docs/protocol.md §9: 16 KiB), JSON,
schema (with the JSON path of the first problem), topic device = payload ``device_id``
(§2). Stage 2 (:func:`check_event`, :func:`check_status`, with the device registry): known and
not revoked, Ed25519 signature (§4.8), registered site = ``site_id``, clock skew, sealed box
(§4.7) for ``stay.*``.

Rejection reasons (the ``IngestRejection.reason`` column and the ``reason`` label of the
Prometheus counter): see :class:`Reason`. Details never carry personal data: schema messages
are scrubbed of the offending value, sealed-box failures say only why the box did not open.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.signing import VerifyKey

from central.ingest.crypto import BadSignatureError, SealedBoxError, open_sealed, verify_signature
from central.wire import MAX_PAYLOAD_BYTES, TOPIC_PREFIX, WireError, validate


class Reason(StrEnum):
    """Why the collector refused a message."""

    BAD_TOPIC = "bad-topic"
    OVERSIZE = "oversize"
    MALFORMED_JSON = "malformed-json"
    SCHEMA = "schema"
    TOPIC_DEVICE_MISMATCH = "topic-device-mismatch"
    UNKNOWN_DEVICE = "unknown-device"
    REVOKED_DEVICE = "revoked-device"
    BAD_SIGNATURE = "bad-signature"
    SITE_MISMATCH = "site-mismatch"
    REPLAY = "replay"
    CLOCK_SKEW = "clock-skew"
    SEALED_STAY_UNOPENABLE = "sealed-stay-unopenable"
    INTERNAL_ERROR = "internal-error"


@dataclass(frozen=True)
class Rejection:
    """A refused message: acknowledged, counted, logged with ``reason`` and ``detail``."""

    reason: Reason
    detail: str
    device_id: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One MQTT message as received (``mid``/``qos`` are needed for the manual PUBACK)."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 1
    retain: bool = False
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    generation: int = 0
    """Connection generation: a PUBACK is only sent on the connection that received it."""


@dataclass(frozen=True)
class Decoded:
    """Stage 1 passed: a schema-valid message from the topic's device."""

    kind: str
    """``event`` or ``status``."""
    device_id: str
    message: dict[str, Any]
    incoming: Incoming


@dataclass(frozen=True)
class DeviceView:
    """What stage 2 needs from the registry."""

    id: str
    site_id: str
    public_key: VerifyKey
    revoked: bool


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed every check; ``personal`` only for ``stay.*``."""

    message: dict[str, Any]
    occurred_at: datetime
    """UTC."""
    received_at: datetime
    personal: dict[str, Any] | None
    incoming: Incoming

    @property
    def device_id(self) -> str:
        return str(self.message["device_id"])

    @property
    def event_id(self) -> str:
        return str(self.message["event_id"])

    @property
    def seq(self) -> int:
        return int(self.message["seq"])


_QUOTED_HEAD = re.compile(r"^(?:'[^']*'|\"[^\"]*\")")
_DIGITS = re.compile(r"\d{9,}")


def scrub(text: str, limit: int = 300) -> str:
    """A schema message without the offending value (it could be personal) or long numbers."""
    text = _QUOTED_HEAD.sub("<value>", text)
    text = _DIGITS.sub("<digits>", text)
    return text[:limit]


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with offset (schema-checked) as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("time without offset")
    return value.astimezone(UTC)


def split_topic(topic: str) -> tuple[str, str] | None:
    """``checkin/v1/<device_id>/events|status`` → (device_id, "event"|"status")."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != TOPIC_PREFIX or parts[2] == "sites":
        return None
    kinds = {"events": "event", "status": "status"}
    if parts[3] not in kinds or not parts[2]:
        return None
    return parts[2], kinds[parts[3]]


class _FloatLiteral(ValueError):
    """A floating-point number (or NaN/Infinity) in a payload: none are allowed on the wire."""


def _refuse_float(_text: str) -> Any:
    raise _FloatLiteral


def decode(incoming: Incoming) -> Decoded | Rejection:
    """Stage 1: everything that can be checked without the database.

    Floating-point numbers (and ``NaN``/``Infinity``) are refused while parsing
    (docs/protocol.md §1: none anywhere; they could not be signed, §4.8), which spares the
    signature check a walk through the message.
    """
    where = split_topic(incoming.topic)
    if where is None:
        return Rejection(Reason.BAD_TOPIC, "not an events or status topic of wire v1")
    device_id, kind = where
    size = len(incoming.payload)
    if size > MAX_PAYLOAD_BYTES:
        return Rejection(Reason.OVERSIZE, f"{size} bytes > {MAX_PAYLOAD_BYTES}", device_id)
    try:
        obj = json.loads(incoming.payload.decode("utf-8"), parse_float=_refuse_float,
                         parse_constant=_refuse_float)
    except _FloatLiteral:
        return Rejection(Reason.SCHEMA, "$: floating-point numbers are not allowed anywhere "
                         "(docs/protocol.md §1)", device_id)
    except UnicodeDecodeError:
        return Rejection(Reason.MALFORMED_JSON, "payload is not UTF-8", device_id)
    except json.JSONDecodeError as exc:
        return Rejection(Reason.MALFORMED_JSON, f"{exc.msg} at {exc.pos}", device_id)
    except RecursionError:
        return Rejection(Reason.MALFORMED_JSON, "nested too deeply", device_id)
    if not isinstance(obj, dict):
        return Rejection(Reason.MALFORMED_JSON, "payload is not a JSON object", device_id)
    try:
        validate("event.v1" if kind == "event" else "status.v1", obj)
    except WireError as exc:
        return Rejection(Reason.SCHEMA, f"{exc.path}: {scrub(exc.reason)}", device_id)
    named = obj.get("device_id", device_id)
    if named != device_id:
        return Rejection(Reason.TOPIC_DEVICE_MISMATCH,
                         f"payload device_id {named!r} on the topic of {device_id!r}", device_id)
    return Decoded(kind, device_id, obj, incoming)


def _device_checks(decoded: Decoded, device: DeviceView | None,
                   signed: bool) -> Rejection | None:
    # decode() refused every floating-point number, so the canonical form needs no walk.
    if device is None:
        return Rejection(Reason.UNKNOWN_DEVICE, "device not in the registry", decoded.device_id)
    if device.revoked:
        return Rejection(Reason.REVOKED_DEVICE, "device revoked", decoded.device_id)
    if signed:
        try:
            verify_signature(decoded.message, device.public_key, float_free=True)
        except BadSignatureError as exc:
            return Rejection(Reason.BAD_SIGNATURE, str(exc), decoded.device_id)
    site = decoded.message.get("site_id")
    if site is not None and site != device.site_id:
        return Rejection(Reason.SITE_MISMATCH,
                         f"site_id {site!r}, registered site {device.site_id!r}",
                         decoded.device_id)
    return None


def check_event(decoded: Decoded, device: DeviceView | None, *, max_future_skew: timedelta,
                centre_key: X25519PrivateKey | None) -> ValidEvent | Rejection:
    """Stage 2 for an event."""
    rejected = _device_checks(decoded, device, signed=True)
    if rejected is not None:
        return rejected
    msg = decoded.message
    received = decoded.incoming.received_at.astimezone(UTC)
    occurred = parse_time(msg["occurred_at"])
    if occurred - received > max_future_skew:
        return Rejection(Reason.CLOCK_SKEW,
                         f"occurred_at {int((occurred - received).total_seconds())} s after "
                         f"receipt (limit {int(max_future_skew.total_seconds())} s)",
                         decoded.device_id)
    personal: dict[str, Any] | None = None
    if msg["kind"] in ("stay.start", "stay.end"):
        if centre_key is None:
            return Rejection(Reason.SEALED_STAY_UNOPENABLE, "collector has no centre key",
                             decoded.device_id)
        try:
            personal = open_sealed(msg["sealed"], centre_key, msg["event_id"],
                                   decoded.device_id)
            validate("stay-personal.v1", personal)
        except SealedBoxError as exc:
            return Rejection(Reason.SEALED_STAY_UNOPENABLE, str(exc), decoded.device_id)
        except WireError as exc:
            # Only the path: the reason could quote a name or an ID number.
            return Rejection(Reason.SEALED_STAY_UNOPENABLE,
                             f"plaintext breaks stay-personal.v1 at {exc.path}",
                             decoded.device_id)
    return ValidEvent(msg, occurred, received, personal, decoded.incoming)


def check_status(decoded: Decoded, device: DeviceView | None) -> Rejection | None:
    """Stage 2 for a status: a ``sig``, when present, must verify (§6; wills are unsigned)."""
    return _device_checks(decoded, device, signed="sig" in decoded.message)

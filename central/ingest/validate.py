"""The validation pipeline: from MQTT bytes to an accepted message or a specific rejection.

Stage 1 (:func:`decode`, no database): topic, size (docs/protocol.md §9: 16 KiB), JSON,
schema (with the JSON path of the first problem), topic device = payload ``device_id``
(§2). Stage 2 (:func:`check_event`, :func:`check_status`, with the device registry): known and
not revoked, Ed25519 signature (§4.8), registered site = ``site_id``, time bounds both ways
and the site kind (§4.10), sealed box (§4.7) for ``stay.*``, the subject (§4.7.1: a sealed
one opened, every one keyed with the centre subject key). Times and dates that match their
pattern but are no real instant (31 February, year 0, an offset past year 9999) are ``schema``
rejections naming the device, like integers too long to convert (``malformed-json``).

Rejection reasons (the ``IngestRejection.reason`` column and the ``reason`` label of the
Prometheus counter): see :class:`Reason`. Details never carry personal data: schema messages
are scrubbed of the offending value, sealed-box failures say only why the box did not open.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from nacl.signing import VerifyKey

from central.subjects import SubjectError, SubjectKeys
from wire import MAX_PAYLOAD_BYTES, WireError, validate
from wire.sealing import SealError, open_event_box, open_subject_box
from wire.signing import SignatureError, verify_signature
from wire.topics import split_topic


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
    TOO_OLD = "too-old"
    KIND_NOT_FOR_SITE = "kind-not-for-site"
    STAY_OWNER_MISMATCH = "stay-owner-mismatch"
    SEALED_STAY_UNOPENABLE = "sealed-stay-unopenable"
    SEALED_SUBJECT_UNOPENABLE = "sealed-subject-unopenable"
    DEAD_LETTER = "dead-letter"
    RATE_LIMITED = "rate-limited"
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
    site_kind: str | None = None
    """``heritage``, ``hospital`` or ``accommodation`` (None: not checked)."""
    revoked_at: datetime | None = None
    drain_until: datetime | None = None
    """A retired device (docs/operations.md §3): until then its events that occurred before
    ``revoked_at``, and its statuses, are still accepted (the backlog drains)."""

    def refuses(self, occurred: datetime | None, received: datetime) -> bool:
        """True when a message from this device is ``revoked-device``: revoked, and not a
        retired device's backlog (``occurred`` before the revocation, received before the end
        of the drain period; ``occurred`` None for a status)."""
        if not self.revoked:
            return False
        if self.drain_until is None or self.revoked_at is None or received >= self.drain_until:
            return True
        return occurred is not None and occurred >= self.revoked_at


@dataclass(frozen=True)
class ValidEvent:
    """An event that passed every check; ``personal`` only for ``stay.*``. ``message`` is the
    event as stored: its ``subject`` is the centre's (:mod:`central.subjects`) when the collector
    has the centre subject key, and a sealed subject's box is gone."""

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


class BadTime(ValueError):
    """A time the schema's pattern lets through that is no real instant: 31 February, year
    0000, or an offset that moves it out of the years 1…9999 (``0001-01-01T00:00+23:00``)."""


def parse_time(text: str) -> datetime:
    """An RFC 3339 time with offset (schema-checked) as an aware UTC datetime.

    Raises :class:`BadTime` (a :class:`ValueError`) for a string that matches the pattern but
    names no real instant; the result is always within the years 1…9999, which both databases
    store.
    """
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise BadTime("time without offset")
        return value.astimezone(UTC)
    except BadTime:
        raise
    except (ValueError, OverflowError) as exc:
        raise BadTime(str(exc)) from None


def parse_date(text: str) -> date:
    """A ``YYYY-MM-DD`` date (schema-checked); :class:`BadTime` for 31 February or year 0."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise BadTime(str(exc)) from None


SITE_KIND_EVENTS: dict[str, frozenset[str]] = {
    "heritage": frozenset({"entry", "exit"}),
    "hospital": frozenset({"visit", "visit.insurance", "stay.start", "stay.end"}),
    "accommodation": frozenset({"stay.start", "stay.end"}),
}
"""Which kinds a site of each kind can produce (docs/protocol.md §4.2), from the agent's flows:
a heritage gate (``HeritageGateFlow``) admits and lets out, a hospital reception
(``HospitalFlow``) records visits, admissions and discharges, an accommodation desk
(``AccommodationFlow``) checks guests in and out. A ``manual`` event is checked by what it
``counts_as``, a ``rejected`` one by what was ``attempted`` (when it says): so an
accommodation desk, which has no manual count, can send neither."""


def effective_kind(message: dict[str, Any]) -> str | None:
    """The kind the site-kind rule checks: ``kind``, ``counts_as`` of a manual event,
    ``attempted`` of a rejected one (None: a rejection that does not say)."""
    kind = str(message["kind"])
    details = message.get("details") or {}
    if kind == "manual":
        return str(details.get("counts_as"))
    if kind == "rejected":
        attempted = details.get("attempted")
        return None if attempted is None else str(attempted)
    return kind


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
    except ValueError:  # an integer literal over Python's 4300-digit conversion limit
        return Rejection(Reason.MALFORMED_JSON, "integer literal too long", device_id)
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
    bad = _bad_time(kind, obj)
    if bad is not None:
        return Rejection(Reason.SCHEMA, bad, device_id)
    return Decoded(kind, device_id, obj, incoming)


def _bad_time(kind: str, obj: dict[str, Any]) -> str | None:
    """The path of a time or date that matches its pattern but is no real one, or None."""
    if kind == "event":
        times = [("$.occurred_at", obj["occurred_at"])]
        dates = [("$.details.expected_departure", obj["details"].get("expected_departure"))]
    else:
        times = [("$.at", obj.get("at")),
                 ("$.oldest_undelivered_at", obj.get("oldest_undelivered_at"))]
        dates = []
    for path, text in times:
        try:
            if isinstance(text, str):
                parse_time(text)
        except BadTime:
            return f"{path}: not a real date and time within the years 1-9999"
    for path, text in dates:
        try:
            if isinstance(text, str):
                parse_date(text)
        except BadTime:
            return f"{path}: not a real date"
    return None


def _device_checks(decoded: Decoded, device: DeviceView | None,
                   signed: bool) -> Rejection | None:
    # decode() refused every floating-point number, so the canonical form needs no walk.
    if device is None:
        return Rejection(Reason.UNKNOWN_DEVICE, "device not in the registry", decoded.device_id)
    received = decoded.incoming.received_at.astimezone(UTC)
    occurred: datetime | None = None
    if decoded.kind != "status":
        try:
            occurred = parse_time(decoded.message["occurred_at"])
        except (KeyError, TypeError, ValueError):
            occurred = None
        if occurred is None:  # no real instant: never part of a backlog
            occurred = received
    if device.refuses(occurred, received):
        return Rejection(Reason.REVOKED_DEVICE, "device revoked" + (
            " (occurred after the revocation)" if device.drain_until is not None
            and device.revoked_at is not None and received < device.drain_until else ""),
            decoded.device_id)
    if signed:
        try:
            verify_signature(decoded.message, device.public_key, float_free=True)
        except SignatureError as exc:
            return Rejection(Reason.BAD_SIGNATURE, exc.reason, decoded.device_id)
    site = decoded.message.get("site_id")
    if site is not None and site != device.site_id:
        return Rejection(Reason.SITE_MISMATCH,
                         f"site_id {site!r}, registered site {device.site_id!r}",
                         decoded.device_id)
    return None


def _time_bounds(member: str, at: datetime, received: datetime, max_future_skew: timedelta,
                 max_age: timedelta | None, device_id: str) -> Rejection | None:
    """``at`` within [receipt − ``max_age``, receipt + ``max_future_skew``] (docs/protocol.md
    §4.10)."""
    if at - received > max_future_skew:
        return Rejection(Reason.CLOCK_SKEW,
                         f"{member} {int((at - received).total_seconds())} s after "
                         f"receipt (limit {int(max_future_skew.total_seconds())} s)",
                         device_id)
    if max_age is not None and received - at > max_age:
        return Rejection(Reason.TOO_OLD,
                         f"{member} {(received - at).days} days before receipt "
                         f"(limit {max_age.days} days)", device_id)
    return None


def stored_subject(msg: dict[str, Any], centre_key: X25519PrivateKey | None,
                   subjects: SubjectKeys | None) -> dict[str, Any] | Rejection:
    """The event with the subject the centre stores (docs/protocol.md §4.7.1).

    A sealed subject is opened (centre key), its legacy value computed (province key) and keyed
    with the centre subject key; a clear legacy subject is keyed the same way, so both land on
    the same stored value. Without the centre subject key a clear subject is kept as it came (a
    collector not yet upgraded) and a sealed one is refused. The opened ID number is never
    stored, returned or logged.
    """
    device_id = str(msg["device_id"])
    sealed = msg.get("subject_sealed")
    if sealed is not None:
        if centre_key is None or subjects is None or subjects.province is None:
            missing = ("keys.centre_private_key" if centre_key is None else
                       "keys.centre_subject_key" if subjects is None else "keys.subject_key")
            return Rejection(Reason.SEALED_SUBJECT_UNOPENABLE, f"collector has no {missing}",
                             device_id)
        try:
            ref = open_subject_box(sealed, centre_key, str(msg["event_id"]), device_id)
            subject = subjects.for_reference(ref)
        except SealError as exc:
            return Rejection(Reason.SEALED_SUBJECT_UNOPENABLE, exc.reason, device_id)
        except SubjectError:  # the box's pattern check makes this unreachable; no plaintext
            return Rejection(Reason.SEALED_SUBJECT_UNOPENABLE, "no subject for the reference",
                             device_id)
        del ref
        out = {k: v for k, v in msg.items() if k != "subject_sealed"}
        out["subject"] = subject
        return out
    if subjects is not None and msg.get("subject") is not None:
        return {**msg, "subject": subjects.stored(str(msg["subject"]))}
    return msg


def check_event(decoded: Decoded, device: DeviceView | None, *, max_future_skew: timedelta,
                centre_key: X25519PrivateKey | None,
                max_age: timedelta | None = None,
                subjects: SubjectKeys | None = None) -> ValidEvent | Rejection:
    """Stage 2 for an event."""
    rejected = _device_checks(decoded, device, signed=True)
    if rejected is not None:
        return rejected
    assert device is not None
    msg = decoded.message
    received = decoded.incoming.received_at.astimezone(UTC)
    occurred = parse_time(msg["occurred_at"])
    rejected = _time_bounds("occurred_at", occurred, received, max_future_skew, max_age,
                            decoded.device_id)
    if rejected is not None:
        return rejected
    kind = effective_kind(msg)
    allowed = SITE_KIND_EVENTS.get(device.site_kind or "")
    if allowed is not None and kind is not None and kind not in allowed:
        return Rejection(Reason.KIND_NOT_FOR_SITE,
                         f"{msg['kind']} ({kind}) at a {device.site_kind} site "
                         f"(allowed: {', '.join(sorted(allowed))})", decoded.device_id)
    personal: dict[str, Any] | None = None
    if msg["kind"] in ("stay.start", "stay.end"):
        if centre_key is None:
            return Rejection(Reason.SEALED_STAY_UNOPENABLE, "collector has no centre key",
                             decoded.device_id)
        try:
            personal = open_event_box(msg["sealed"], centre_key, msg["event_id"],
                                      decoded.device_id)
            validate("stay-personal.v1", personal)
        except SealError as exc:
            return Rejection(Reason.SEALED_STAY_UNOPENABLE, exc.reason, decoded.device_id)
        except WireError as exc:
            # Only the path: the reason could quote a name or an ID number.
            return Rejection(Reason.SEALED_STAY_UNOPENABLE,
                             f"plaintext breaks stay-personal.v1 at {exc.path}",
                             decoded.device_id)
    keyed = stored_subject(msg, centre_key, subjects)
    if isinstance(keyed, Rejection):
        return keyed
    return ValidEvent(keyed, occurred, received, personal, decoded.incoming)


def check_status(decoded: Decoded, device: DeviceView | None, *,
                 max_future_skew: timedelta | None = None,
                 max_age: timedelta | None = None) -> Rejection | None:
    """Stage 2 for a status: a ``sig``, when present, must verify (§6; wills are unsigned);
    ``at``, when present, within the same bounds as an event's ``occurred_at`` (a status dated
    9999 would otherwise hide every later heartbeat)."""
    rejected = _device_checks(decoded, device, signed="sig" in decoded.message)
    if rejected is not None or max_future_skew is None:
        return rejected
    at = decoded.message.get("at")
    if not isinstance(at, str):
        return None
    return _time_bounds("at", parse_time(at), decoded.incoming.received_at.astimezone(UTC),
                        max_future_skew, max_age, decoded.device_id)

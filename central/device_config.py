"""``central device-config``: one device's runtime configuration (docs/protocol.md §8).

The message is retained on ``checkin/v1/<device_id>/config`` (schema ``config.v1``): its
``settings`` are the whole set of overrides at that revision (the device lays them over its own
TOML configuration). To change one setting without resetting the others, :func:`publish` first
reads the retained message back (SUBSCRIBE, then a second SUBSCRIBE of the same topic with
retain handling 2 whose SUBACK arrives after any retained message of the first), keeps its
settings, changes the ones given and publishes the result retained at QoS 1, waiting for the
broker's PUBACK.

Revision: ``max(previous + 1, milliseconds since the epoch)``. Above the retained revision by
construction, and above any revision the device may hold even when the broker lost its retained
message (the device persists what it applied and ignores a revision that is not higher), as long
as the centre's clock does not go back.

The connection uses a collector certificate (the ``collector`` role may publish
``checkin/v1/+/config``); the broker makes the certificate CN the client id, so it must not be
the CN of a running ingest worker, whose session it would take over. The registry check (known,
not revoked, ``direction`` only at a heritage site) and the audit row are the caller's
(:mod:`central.cli`); this module holds the pure message building and the MQTT exchange.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from central.settings import BrokerSettings
from wire import WireError, config_topic, validate

SETTINGS = ("direction", "language", "name_display", "capacity_policy", "dedupe_window_s",
            "heartbeat_s")
"""What the centre may set (docs/configuration.md, "Set by the centre")."""


class DeviceConfigError(RuntimeError):
    """The configuration was not published; the message says why."""


@dataclass(frozen=True)
class Published:
    message: dict[str, Any]
    previous: dict[str, Any] | None
    """The retained message it replaced (None: there was none)."""


def next_revision(previous: int | None, now: datetime) -> int:
    """``max(previous + 1, milliseconds since the epoch)`` (module docstring)."""
    return max((previous or 0) + 1, int(now.timestamp() * 1000))


def merge_settings(previous: Mapping[str, Any], given: Mapping[str, Any],
                   reset: bool = False) -> dict[str, Any]:
    """The previous settings (none with ``reset``) with ``given`` laid over them."""
    unknown = sorted(set(given) - set(SETTINGS))
    if unknown:
        raise DeviceConfigError(f"not settable by the centre: {', '.join(unknown)}")
    merged = {} if reset else dict(previous)
    merged.update(given)
    return {name: merged[name] for name in SETTINGS if name in merged}


def config_message(device_id: str, revision: int, at: datetime,
                   settings: Mapping[str, Any]) -> dict[str, Any]:
    """A schema-valid ``config.v1`` message (raises :class:`DeviceConfigError` otherwise)."""
    message = {"v": 1, "device_id": device_id, "revision": revision,
               "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
               "settings": dict(settings)}
    try:
        validate("config.v1", message)
    except WireError as exc:
        raise DeviceConfigError(f"the message would not be valid: {exc}") from None
    return message


def parse_retained(payload: bytes, device_id: str) -> dict[str, Any] | None:
    """The retained message read back (None: none, or cleared with an empty payload)."""
    if not payload:
        return None
    try:
        message = json.loads(payload.decode("utf-8"))
        validate("config.v1", message)
    except (UnicodeDecodeError, ValueError) as exc:  # WireError and JSONDecodeError
        raise DeviceConfigError(f"the retained configuration is not valid ({exc}); give "
                                "--reset to replace it with exactly the settings given") from None
    if message["device_id"] != device_id:
        raise DeviceConfigError(f"the retained configuration names {message['device_id']!r}")
    return dict(message)


class _Exchange:
    """One short MQTT 5 session: read the retained message back, publish the new one."""

    def __init__(self, broker: BrokerSettings, cert: Path, key: Path, topic: str,
                 timeout: float) -> None:
        self.topic = topic
        self.timeout = timeout
        self.broker = broker
        self._cond = threading.Condition()
        self._failure: str | None = None
        self._connected = False
        self._subacks: dict[int, bool] = {}
        self._retained: bytes | None = None
        self._pubacks: dict[int, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if broker.tls:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(broker.ca) if broker.ca else None)
            try:
                ctx.load_cert_chain(str(cert), str(key))
            except (OSError, ssl.SSLError) as exc:
                raise DeviceConfigError(f"client certificate {cert}: {exc}") from None
            self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        with self._cond:
            if reason.is_failure:
                self._failure = f"the broker refused the connection: {reason}"
            self._connected = True
            self._cond.notify_all()

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
        with self._cond:
            self._subacks[mid] = not any(r.is_failure for r in reasons)
            self._cond.notify_all()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic and msg.retain:
            with self._cond:
                if self._retained is None:
                    self._retained = bytes(msg.payload)

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with self._cond:
            self._pubacks[mid] = int(getattr(reason, "value", reason))
            self._cond.notify_all()

    def _wait(self, predicate: Any, what: str) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._failure is not None or predicate(),
                                       self.timeout):
                raise DeviceConfigError(f"broker {self.broker.url}: no answer ({what})")
            if self._failure:
                raise DeviceConfigError(self._failure)

    def __enter__(self) -> _Exchange:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30,
                                clean_start=True)
        except (OSError, ssl.SSLError) as exc:
            raise DeviceConfigError(f"broker {self.broker.url}: {exc}") from None
        self.client.loop_start()
        try:
            self._wait(lambda: self._connected, "CONNACK")
        except DeviceConfigError:
            self.client.loop_stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def retained(self) -> bytes:
        """The retained payload on the topic (empty: none)."""
        _, first = self.client.subscribe(self.topic, options=SubscribeOptions(qos=1))
        # The broker answers in order: SUBACK, the retained message, then this fence's SUBACK.
        _, fence = self.client.subscribe(self.topic, options=SubscribeOptions(
            qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND))
        if first is None or fence is None:
            raise DeviceConfigError(f"broker {self.broker.url}: SUBSCRIBE not sent")
        self._wait(lambda: first in self._subacks and fence in self._subacks, "SUBACK")
        if not (self._subacks[first] and self._subacks[fence]):
            raise DeviceConfigError(f"this identity may not read {self.topic}: is it a "
                                    "collector at the broker (central broker-sync --collector)?")
        with self._cond:
            return self._retained or b""

    def publish(self, payload: bytes) -> None:
        info = self.client.publish(self.topic, payload, qos=1, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeviceConfigError(f"publish not sent: {mqtt.error_string(info.rc)}")
        self._wait(lambda: info.mid in self._pubacks, "PUBACK")
        code = self._pubacks[info.mid]
        if code >= 0x80:
            raise DeviceConfigError(f"the broker refused the configuration (reason code "
                                    f"0x{code:02x}): may this identity publish {self.topic}?")


def publish(broker: BrokerSettings, cert: Path, key: Path, device_id: str,
            given: Mapping[str, Any], *, reset: bool = False, now: datetime | None = None,
            timeout: float = 10.0) -> Published:
    """Publish ``device_id``'s configuration: the retained settings (none with ``reset``) with
    ``given`` changed; returns what was published. Raises :class:`DeviceConfigError`."""
    topic = config_topic(device_id)
    with _Exchange(broker, cert, key, topic, timeout) as exchange:
        raw = exchange.retained()
        try:
            previous = parse_retained(raw, device_id)
        except DeviceConfigError:
            if not reset:
                raise
            previous = None  # replaced whole; the revision comes from the clock
        settings = merge_settings(previous["settings"] if previous else {}, given, reset)
        now = now or datetime.now(UTC)
        message = config_message(device_id,
                                 next_revision(previous["revision"] if previous else None,
                                               now), now, settings)
        exchange.publish(json.dumps(message, separators=(",", ":")).encode("utf-8"))
    return Published(message, previous)

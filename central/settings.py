"""Collector settings, loaded from a TOML file (one frozen :class:`CentralSettings`).

Example (every key optional; the defaults are shown)::

    database_url = "sqlite:///var/central.sqlite3"

    [broker]
    url = "mqtts://127.0.0.1:8883"   # mqtt:// only on loopback (docs/protocol.md §1)
    ca = "/etc/central/ca.crt"
    cert = "/etc/central/collector.crt"
    key = "/etc/central/collector.key"
    client_id = "collector"            # = the certificate CN (use_identity_as_username)
    group = "ingest"                   # $share/<group>/... (MQTT 5 §4.8.2)
    session_expiry_s = 86400           # MQTT 5 §3.1.2.11.2
    receive_maximum = 1000             # MQTT 5 §3.1.2.11.3: unacknowledged QoS 1 in flight
    keepalive_s = 30

    [keys]
    centre_private_key = "/etc/central/centre-x25519.key"   # raw 32 bytes or PEM PKCS#8
    data_key = "/etc/central/data.key"                      # AES-256 key (central.at_rest)
    subject_key = "/etc/central/subject.key"  # optional: the province's subject key (person search)
    centre_subject_key = "/etc/central/centre-subject.key"  # optional: held by the centre only

    [ingest]
    max_future_skew_s = 600      # occurred_at later than receipt + this → "clock-skew"
    batch_size = 500             # a full batch only under a backlog; batch_ms bounds the wait
    batch_ms = 50
    heartbeat_s = 30             # when a status does not give its own heartbeat_s
    offline_after_heartbeats = 3 # docs/protocol.md §6: stale after 3 × heartbeat_s
    seq_gap_grace_s = 60         # a gap in a device's seq older than this raises an alarm
    publish_occupancy = true     # run the occupancy publisher in the ingest process
    metrics_port = 0             # Prometheus exporter; 0 = none

    [sites]
    close_time = "23:00"         # local (UTC+07:00) close-out time of a site without its own

    [retention]                  # days per data class (central.purge)
    events_days = 400
    stays_days = 730
    audit_days = 1095
    rejections_days = 90

    [web]
    trusted_proxy_hops = 0       # reverse proxies whose X-Forwarded-For/-Proto are believed

Every error names the offending key (``retention.events_days: must be a positive integer``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///var/central.sqlite3"
_TIME = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class SettingsError(ValueError):
    """A settings file that cannot be used; the message names the key."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


@dataclass(frozen=True)
class BrokerSettings:
    url: str = "mqtts://127.0.0.1:8883"
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    client_id: str = "collector"
    group: str = "ingest"
    session_expiry_s: int = 86400
    receive_maximum: int = 1000
    keepalive_s: int = 30

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


@dataclass(frozen=True)
class Retention:
    """How long each data class is kept (central.purge)."""

    events: timedelta = timedelta(days=400)
    stays: timedelta = timedelta(days=730)
    audit: timedelta = timedelta(days=1095)
    rejections: timedelta = timedelta(days=90)


@dataclass(frozen=True)
class CentralSettings:
    database_url: str = DEFAULT_DATABASE_URL
    broker: BrokerSettings = field(default_factory=BrokerSettings)
    centre_private_key: Path | None = None
    data_key: Path | None = None
    subject_key: Path | None = None
    """The province's subject key (the devices' HMAC key): enables the audited person search
    and computes a sealed subject's legacy value at ingest; unset, neither (docs/privacy.md
    §3). Enrolment no longer puts it into device bundles."""
    centre_subject_key: Path | None = None
    """The centre subject key (at least 16 bytes, no device holds it): the stored subject is
    keyed with it (:mod:`central.subjects`). Unset, the collector stores legacy subjects as they
    come and refuses sealed ones (``sealed-subject-unopenable``)."""
    max_future_skew: timedelta = timedelta(minutes=10)
    batch_size: int = 500
    batch_ms: int = 50
    heartbeat_s: int = 30
    offline_after_heartbeats: int = 3
    seq_gap_grace: timedelta = timedelta(seconds=60)
    """Workers sharing a subscription commit a device's events out of order, so a gap is an
    alarm only once it has lasted this long."""
    publish_occupancy: bool = True
    metrics_port: int = 0
    close_time: str = "23:00"
    retention: Retention = field(default_factory=Retention)
    web_trusted_proxy_hops: int = 0
    """Reverse proxies in front of ``central web`` (Werkzeug's ProxyFix ``x_for``/``x_proto``):
    the client address of the login limit and the audit log comes from the proxy's
    ``X-Forwarded-For``; 0 = none, the peer is the client and the header is ignored."""


def _take(table: dict[str, Any], prefix: str, allowed: set[str]) -> dict[str, Any]:
    for key in table:
        if key not in allowed:
            raise SettingsError(f"{prefix}{key}", "unknown key")
    return table


def _str(table: dict[str, Any], key: str, prefix: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{prefix}{key}", "must be a non-empty string")
    return value


def _int(table: dict[str, Any], key: str, prefix: str, default: int, *, low: int = 1,
         high: int = 10**9) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"{prefix}{key}", f"must be an integer from {low} to {high}")
    return value


def _path(table: dict[str, Any], key: str, prefix: str, base: Path) -> Path | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{prefix}{key}", "must be a file path")
    path = Path(value)
    return path if path.is_absolute() else base / path


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(key, "must be a table")
    return value


def settings_from_dict(data: dict[str, Any], base: Path = Path()) -> CentralSettings:
    """Build settings from parsed TOML; relative paths are relative to ``base``."""
    _take(data, "", {"database_url", "broker", "keys", "ingest", "sites", "retention", "web"})
    url = _str(data, "database_url", "", DEFAULT_DATABASE_URL)
    if not url.startswith(("sqlite", "postgresql")):
        raise SettingsError("database_url", "must be a sqlite:// or postgresql:// URL")
    b = _take(_table(data, "broker"), "broker.",
              {"url", "ca", "cert", "key", "client_id", "group", "session_expiry_s",
               "receive_maximum", "keepalive_s"})
    burl = _str(b, "url", "broker.", BrokerSettings.url)
    if urlsplit(burl).scheme not in ("mqtt", "mqtts"):
        raise SettingsError("broker.url", "must be mqtt://host:port or mqtts://host:port")
    group = _str(b, "group", "broker.", "ingest")
    if any(c in group for c in "/+#"):
        raise SettingsError("broker.group", "a share name cannot contain / + or #")
    broker = BrokerSettings(
        url=burl, ca=_path(b, "ca", "broker.", base), cert=_path(b, "cert", "broker.", base),
        key=_path(b, "key", "broker.", base),
        client_id=_str(b, "client_id", "broker.", "collector"), group=group,
        session_expiry_s=_int(b, "session_expiry_s", "broker.", 86400, low=60,
                              high=2**32 - 2),
        receive_maximum=_int(b, "receive_maximum", "broker.", 1000, high=65535),
        keepalive_s=_int(b, "keepalive_s", "broker.", 30, low=5, high=3600))
    if broker.tls and (broker.cert is None) != (broker.key is None):
        raise SettingsError("broker.key", "broker.cert and broker.key go together")
    k = _take(_table(data, "keys"), "keys.", {"centre_private_key", "data_key", "subject_key",
                                                  "centre_subject_key"})
    i = _take(_table(data, "ingest"), "ingest.",
              {"max_future_skew_s", "batch_size", "batch_ms", "heartbeat_s",
               "offline_after_heartbeats", "seq_gap_grace_s", "publish_occupancy",
               "metrics_port"})
    publish = i.get("publish_occupancy", True)
    if not isinstance(publish, bool):
        raise SettingsError("ingest.publish_occupancy", "must be true or false")
    s = _take(_table(data, "sites"), "sites.", {"close_time"})
    close_time = _str(s, "close_time", "sites.", "23:00")
    if not _TIME.match(close_time):
        raise SettingsError("sites.close_time", "must be HH:MM (24 h, local UTC+07:00)")
    r = _take(_table(data, "retention"), "retention.",
              {"events_days", "stays_days", "audit_days", "rejections_days"})
    retention = Retention(**{
        name: timedelta(days=_int(r, f"{name}_days", "retention.",
                                  getattr(Retention, name).days, high=36500))
        for name in ("events", "stays", "audit", "rejections")})
    return CentralSettings(
        database_url=url, broker=broker,
        centre_private_key=_path(k, "centre_private_key", "keys.", base),
        data_key=_path(k, "data_key", "keys.", base),
        subject_key=_path(k, "subject_key", "keys.", base),
        centre_subject_key=_path(k, "centre_subject_key", "keys.", base),
        max_future_skew=timedelta(seconds=_int(i, "max_future_skew_s", "ingest.", 600,
                                               low=0, high=86400)),
        batch_size=_int(i, "batch_size", "ingest.", 500, high=10000),
        batch_ms=_int(i, "batch_ms", "ingest.", 50, high=10000),
        heartbeat_s=_int(i, "heartbeat_s", "ingest.", 30, low=5, high=3600),
        offline_after_heartbeats=_int(i, "offline_after_heartbeats", "ingest.", 3, high=100),
        seq_gap_grace=timedelta(seconds=_int(i, "seq_gap_grace_s", "ingest.", 60, low=0,
                                             high=86400)),
        publish_occupancy=publish,
        metrics_port=_int(i, "metrics_port", "ingest.", 0, low=0, high=65535),
        close_time=close_time, retention=retention,
        web_trusted_proxy_hops=_int(_take(_table(data, "web"), "web.", {"trusted_proxy_hops"}),
                                    "trusted_proxy_hops", "web.", 0, low=0, high=10))


def load_settings(path: Path) -> CentralSettings:
    """Read a TOML settings file; :class:`SettingsError` names the key at fault."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(str(path), f"cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(str(path), f"not valid TOML ({exc})") from None
    return settings_from_dict(data, path.parent)

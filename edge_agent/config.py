"""The device's configuration: one TOML file loaded into frozen dataclasses (docs/configuration.md).

``load_config(path)`` (or ``parse_config(text, base_dir)``) returns a :class:`Config`; anything
wrong raises :class:`ConfigError` whose message starts with the dotted key
(``broker.url: must start with mqtt:// or mqtts://``). Unknown tables and keys are errors too, so
a misspelt key never silently falls back to a default.

Relative paths are resolved against the configuration file's folder. Key files are only named
here; :func:`load_keys` reads them (so ``edge-agent`` can check a configuration on a machine
without the keys).

Privacy defaults follow docs/design.md §4 and Decree 13/2023: the kiosk listens on loopback only,
the insurance gateway is reached over HTTPS unless it is on this machine.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

__all__ = [
    "BrokerConfig",
    "CapacityConfig",
    "CapacityPolicy",
    "ChipConfig",
    "CloneCheckSetting",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "Direction",
    "InsuranceAdapterKind",
    "InsuranceConfig",
    "KeysConfig",
    "KioskConfig",
    "LaneConfig",
    "Language",
    "LoadedKeys",
    "MetricsConfig",
    "NameDisplay",
    "OutboxConfig",
    "OutputsBackend",
    "OutputsConfig",
    "QrConfig",
    "QrExpiryPolicy",
    "SiteKind",
    "VneidConfig",
    "VneidVerifierKind",
    "load_config",
    "load_keys",
    "parse_config",
]

NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
"""Device and site ids: the certificate CN, a lower-case DNS label (docs/protocol.md §2)."""
RESERVED_DEVICE_IDS = frozenset({"sites"})
_E = TypeVar("_E", bound=StrEnum)


class ConfigError(ValueError):
    """An invalid configuration; ``key`` is the dotted key at fault (``"broker.url"``)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class SiteKind(StrEnum):
    HERITAGE_GATE = "heritage-gate"
    HOSPITAL_RECEPTION = "hospital-reception"
    ACCOMMODATION_DESK = "accommodation-desk"


class Direction(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    BOTH = "both"


class Language(StrEnum):
    VI = "vi"
    EN = "en"


class NameDisplay(StrEnum):
    """How much of the holder's name the kiosk shows (masked ID is always shown)."""

    FULL = "full"
    """``Nguyễn Thị Mai``"""
    GIVEN = "given"
    """``Mai`` (the given name, last word)"""
    INITIALS = "initials"
    """``N. T. M.``"""
    NONE = "none"


class CapacityPolicy(StrEnum):
    WARN = "warn"
    REFUSE = "refuse"


class CloneCheckSetting(StrEnum):
    """Mirrors :class:`edge_agent.reading.policy.CloneCheck` values."""

    NONE = "none"
    CA = "ca"
    BOTH = "both"


class OutputsBackend(StrEnum):
    NONE = "none"
    """No outputs fitted (a desk): calls are recorded in memory only."""
    SIMULATED = "simulated"
    GPIOZERO = "gpiozero"


class InsuranceAdapterKind(StrEnum):
    NONE = "none"
    HTTP = "http"
    SIM = "sim"


class VneidVerifierKind(StrEnum):
    NONE = "none"
    HTTP = "http"
    SIM = "sim"


class QrExpiryPolicy(StrEnum):
    """What a card QR whose derived expiry has passed, or whose issue date is in the future,
    gets: ``flag`` (accepted with a warning) or ``refuse`` (rejected)."""

    FLAG = "flag"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    id: str
    site_id: str
    site_kind: SiteKind
    direction: Direction | None
    """Heritage gates only (required there); None elsewhere."""
    language: Language = Language.VI
    name_display: NameDisplay = NameDisplay.FULL
    name: str = ""
    """A human label for dashboards (e.g. ``Cổng Ngọ Môn 1``); optional."""
    training: bool = False
    """Training mode: screens and verdicts as usual under a "ĐÀO TẠO / TRAINING" banner, every
    event marked ``"training": true`` (docs/protocol.md §4.13), never counted by the centre."""


@dataclass(frozen=True, slots=True)
class KeysConfig:
    signing_key: Path
    """Ed25519 private key, PKCS#8 PEM: signs every event (docs/design.md §3)."""
    centre_public_key: Path
    """X25519 public key, SubjectPublicKeyInfo PEM: seals stay.* personal data."""
    subject_key: Path | None = None
    """Deprecated: the province's HMAC key older agents computed ``subject`` with. This agent
    seals the ID number to the centre instead and keys its own dedupe with a device-local key
    (docs/privacy.md §3); a configured file is still checked, never used, and should be
    deleted from the device (docs/operations.md, retiring the province subject key)."""


@dataclass(frozen=True, slots=True)
class ChipConfig:
    dg2: bool = False
    trust_dir: Path | None = None
    clone_check: CloneCheckSetting = CloneCheckSetting.CA
    require_csca_chain: bool = False
    max_chunk: int = 0xDF
    after_qr: bool = True
    """Read the chip after a card QR when the QR's lane has a reader (scan-then-tap)."""
    tap_window_s: float = 4.0
    """How long a card QR waits for its tap before it is recorded alone."""
    can_pad: bool = True
    """Tap first: the kiosk offers a pad for the 6-digit CAN (last 6 digits of the ID)."""


@dataclass(frozen=True, slots=True)
class CapacityConfig:
    policy: CapacityPolicy = CapacityPolicy.WARN
    dedupe_window_s: int = 5


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    url: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    heartbeat_s: int = 30
    receipt_timeout_s: int = 60
    """Resend an event sent this long ago without the centre's receipt (docs/protocol.md
    §4.11); 0: the collector sends no receipts and a PUBACK settles (wire v1)."""

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: Path
    max_rows: int = 200_000
    max_bytes: int = 256 * 1024 * 1024
    retention_days: int = 30
    max_rejected: int = 1000
    """Undelivered ``rejected`` events kept (junk scans); beyond it they are counted only."""
    rejected_per_minute: int = 30
    """``rejected`` events stored per minute at most; the rest are counted only."""


@dataclass(frozen=True, slots=True)
class KioskConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    allow_remote: bool = False
    desk_pin: str | None = None
    """4-8 digits unlocking the desk page on the kiosk unit (None: the desk is not locked)."""


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    port: int = 0
    """0 disables the Prometheus endpoint."""


@dataclass(frozen=True, slots=True)
class InsuranceConfig:
    adapter: InsuranceAdapterKind = InsuranceAdapterKind.NONE
    url: str | None = None
    timeout_s: float = 2.0
    wait_s: float = 0.25
    """How long a visit waits for the answer before it is recorded as ``unknown`` and the
    look-up goes on in the background (edge_agent/insurance_checks.py)."""


@dataclass(frozen=True, slots=True)
class LaneConfig:
    """One visitor queue of a device: the readers and scanners it pairs, and at a gate the
    direction fixed for it (None: ``device.direction``, or the kiosk's choice at ``both``)."""

    name: str
    readers: tuple[str, ...] = ()
    scanners: tuple[str, ...] = ()
    direction: Direction | None = None


@dataclass(frozen=True, slots=True)
class OutputsConfig:
    """Relay, buzzer and LEDs (BCM pin numbers, gpiozero); docs/configuration.md [outputs]."""

    backend: OutputsBackend = OutputsBackend.NONE
    relay: int | None = None
    buzzer: int | None = None
    green: int | None = None
    red: int | None = None
    amber: int | None = None
    relay_active_high: bool = True
    relay_pulse_s: float = 1.0

    def pins(self) -> dict[str, Any]:
        """The mapping :class:`drivers.outputs.OutputPins` reads."""
        pins: dict[str, Any] = {k: getattr(self, k) for k in
                                ("relay", "buzzer", "green", "red", "amber")
                                if getattr(self, k) is not None}
        pins["relay_active_high"] = self.relay_active_high
        return pins


@dataclass(frozen=True, slots=True)
class VneidConfig:
    adapter: VneidVerifierKind = VneidVerifierKind.NONE
    url: str | None = None
    timeout_s: float = 0.4
    retries: int = 1
    deadline_s: float = 0.9
    breaker_failures: int = 3
    breaker_reset_s: float = 30.0


@dataclass(frozen=True, slots=True)
class QrConfig:
    expiry_policy: QrExpiryPolicy = QrExpiryPolicy.FLAG


@dataclass(frozen=True, slots=True)
class Config:
    device: DeviceConfig
    keys: KeysConfig
    broker: BrokerConfig
    outbox: OutboxConfig
    readers: tuple[str, ...] = ()
    scanners: tuple[str, ...] = ()
    chip: ChipConfig = ChipConfig()
    capacity: CapacityConfig = CapacityConfig()
    kiosk: KioskConfig = KioskConfig()
    metrics: MetricsConfig = MetricsConfig()
    insurance: InsuranceConfig = InsuranceConfig()
    lanes: tuple[LaneConfig, ...] = ()
    """Never empty after parsing: without ``[[lanes]]`` one lane holds every device."""
    outputs: OutputsConfig = OutputsConfig()
    vneid: VneidConfig = VneidConfig()
    qr: QrConfig = QrConfig()
    source: Path | None = None


# --------------------------------------------------------------------------------------------
# Typed access to one TOML table, naming the dotted key in every error.

class _Table:
    def __init__(self, data: dict[str, Any], prefix: str, allowed: set[str]) -> None:
        self.data = data
        self.prefix = prefix
        for key in data:
            if key not in allowed:
                raise ConfigError(self.key(key),
                                  f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def has(self, name: str) -> bool:
        return name in self.data

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                raise ConfigError(self.key(name), "is required")
            return None
        return self.data[name]

    def get_str(self, name: str, *, required: bool = False,
                default: str | None = None) -> str | None:
        value = self._get(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigError(self.key(name), f"must be a string, not {type(value).__name__}")
        if not value.strip():
            raise ConfigError(self.key(name), "must not be empty")
        return value

    def req_str(self, name: str) -> str:
        value = self.get_str(name, required=True)
        assert value is not None
        return value

    def get_bool(self, name: str, default: bool) -> bool:
        value = self._get(name, False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), "must be true or false")
        return value

    def get_int(self, name: str, default: int, low: int, high: int) -> int:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.key(name), f"must be an integer, not {type(value).__name__}")
        if not low <= value <= high:
            raise ConfigError(self.key(name), f"must be within {low}..{high}, got {value}")
        return value

    def get_float(self, name: str, default: float, low: float, high: float) -> float:
        value = self._get(name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.key(name), f"must be a number, not {type(value).__name__}")
        if not low <= float(value) <= high:
            raise ConfigError(self.key(name), f"must be within {low}..{high}, got {value}")
        return float(value)

    def enum(self, name: str, kind: type[_E], default: _E | None,
             *, required: bool = False) -> _E | None:
        value = self.get_str(name, required=required)
        if value is None:
            return default
        try:
            return kind(value)
        except ValueError:
            choices = " | ".join(member.value for member in kind)
            raise ConfigError(self.key(name), f"must be one of {choices}, got {value!r}") from None

    def path(self, name: str, base: Path, *, required: bool = False) -> Path | None:
        value = self.get_str(name, required=required)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base / path)

    def req_path(self, name: str, base: Path) -> Path:
        value = self.path(name, base, required=True)
        assert value is not None
        return value

    def uris(self, name: str) -> tuple[str, ...]:
        value = self._get(name, False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.key(name), "must be a list of strings")
        for index, uri in enumerate(value):
            if not uri.strip() or (":" not in uri and uri != "pcsc"):
                raise ConfigError(f"{self.key(name)}[{index}]",
                                  f"{uri!r} is not a reader or scanner URI (scheme:rest)")
        if len(set(value)) != len(value):
            raise ConfigError(self.key(name), "lists the same URI twice")
        return tuple(value)


def _table(root: dict[str, Any], name: str, allowed: set[str], *,
           required: bool = False) -> _Table:
    value = root.get(name)
    if value is None:
        if required:
            raise ConfigError(name, "table is required")
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return _Table(value, name, allowed)


_TABLES = {"device", "keys", "readers", "scanners", "chip", "capacity", "broker", "outbox",
           "kiosk", "metrics", "insurance", "lanes", "outputs", "vneid", "qr"}


def _name(table: _Table, key: str) -> str:
    value = table.req_str(key)
    if not NAME_PATTERN.fullmatch(value):
        raise ConfigError(table.key(key),
                          f"{value!r} must be lower-case letters, digits and inner hyphens, "
                          "at most 64 characters (an MQTT topic level and the certificate CN)")
    return value


def _device(root: dict[str, Any]) -> DeviceConfig:
    t = _table(root, "device", {"id", "site_id", "site_kind", "direction", "language",
                                "name_display", "name", "training"}, required=True)
    device_id = _name(t, "id")
    if device_id in RESERVED_DEVICE_IDS:
        raise ConfigError("device.id", f"{device_id!r} is reserved (topic checkin/v1/sites/...)")
    kind = t.enum("site_kind", SiteKind, None, required=True)
    assert kind is not None
    direction = t.enum("direction", Direction, None)
    if kind is SiteKind.HERITAGE_GATE and direction is None:
        raise ConfigError("device.direction",
                          "is required for a heritage-gate (entry | exit | both)")
    if kind is not SiteKind.HERITAGE_GATE and direction is not None:
        raise ConfigError("device.direction", f"applies to heritage-gate devices only, not {kind}")
    return DeviceConfig(
        id=device_id, site_id=_name(t, "site_id"), site_kind=kind, direction=direction,
        language=t.enum("language", Language, Language.VI) or Language.VI,
        name_display=t.enum("name_display", NameDisplay, NameDisplay.FULL) or NameDisplay.FULL,
        name=t.get_str("name", default="") or "",
        training=t.get_bool("training", False),
    )


def _broker(root: dict[str, Any], base: Path) -> BrokerConfig:
    t = _table(root, "broker", {"url", "ca", "cert", "key", "heartbeat_s", "receipt_timeout_s"},
               required=True)
    url = t.req_str("url")
    if not url.startswith(("mqtt://", "mqtts://")):
        raise ConfigError("broker.url", "must start with mqtt:// or mqtts://")
    parts = urlsplit(url)
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError("broker.url", "has an invalid port") from None
    if not parts.hostname:
        raise ConfigError("broker.url", "names no host")
    if parts.username or parts.password:
        raise ConfigError("broker.url", "must not carry credentials (the client certificate "
                          "is the device's identity)")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError("broker.url", "must be mqtt[s]://HOST[:PORT] without a path or query")
    ca, cert, key = t.path("ca", base), t.path("cert", base), t.path("key", base)
    if url.startswith("mqtts://"):
        for name, value in (("cert", cert), ("key", key)):
            if value is None:
                raise ConfigError(f"broker.{name}", "is required with mqtts:// (per-device "
                                  "client certificate, docs/design.md §4)")
    elif cert is not None or key is not None or ca is not None:
        raise ConfigError("broker.url", "ca/cert/key are given but the URL is mqtt:// "
                          "(plain TCP); use mqtts://")
    elif not _is_loopback(parts.hostname):
        raise ConfigError("broker.url", "plain mqtt:// is allowed only to a loopback broker; "
                          "use mqtts:// with a client certificate")
    return BrokerConfig(url=url, ca=ca, cert=cert, key=key,
                        heartbeat_s=t.get_int("heartbeat_s", 30, 5, 3600),
                        receipt_timeout_s=_receipt_timeout(t.get_int("receipt_timeout_s", 60, 0,
                                                                     86_400)))


def _receipt_timeout(value: int) -> int:
    if 0 < value < 5:
        raise ConfigError("broker.receipt_timeout_s", "is 0 (no receipts) or 5 … 86400")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kiosk(root: dict[str, Any]) -> KioskConfig:
    t = _table(root, "kiosk", {"host", "port", "allow_remote", "desk_pin"})
    host = t.get_str("host", default="127.0.0.1") or "127.0.0.1"
    allow_remote = t.get_bool("allow_remote", False)
    if not allow_remote and not _is_loopback(host):
        raise ConfigError("kiosk.host", f"{host!r} is not a loopback address; the kiosk shows "
                          "personal data and listens on 127.0.0.1 unless kiosk.allow_remote = true")
    pin = t.get_str("desk_pin")
    if pin is not None and not (4 <= len(pin) <= 8 and pin.isascii() and pin.isdigit()):
        raise ConfigError("kiosk.desk_pin", "must be 4 to 8 digits (a string: \"2468\")")
    return KioskConfig(host=host, port=t.get_int("port", 8080, 1, 65535),
                       allow_remote=allow_remote, desk_pin=pin)


def _insurance(root: dict[str, Any], kind: SiteKind) -> InsuranceConfig:
    t = _table(root, "insurance", {"adapter", "url", "timeout_s", "wait_s"})
    adapter = t.enum("adapter", InsuranceAdapterKind, InsuranceAdapterKind.NONE)
    assert adapter is not None
    url = t.get_str("url")
    timeout = t.get_float("timeout_s", 2.0, 0.1, 10.0)
    wait = t.get_float("wait_s", 0.25, 0.05, 0.9)
    if adapter is not InsuranceAdapterKind.NONE and kind is not SiteKind.HOSPITAL_RECEPTION:
        raise ConfigError("insurance.adapter", f"only hospital-reception devices look up "
                          f"insurance, this device is {kind}")
    if adapter is InsuranceAdapterKind.HTTP and url is None:
        raise ConfigError("insurance.url", "is required with adapter = \"http\"")
    if adapter is InsuranceAdapterKind.SIM and url is None:
        url = "http://127.0.0.1:8765"
    if url is not None:
        if adapter is InsuranceAdapterKind.NONE:
            raise ConfigError("insurance.url", "is set but insurance.adapter is \"none\"")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("insurance.url", "must be an http:// or https:// URL with a host")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ConfigError("insurance.url", "must be https:// (the look-up carries the ID "
                              "number, name and date of birth); http:// only to loopback")
    return InsuranceConfig(adapter=adapter, url=url, timeout_s=timeout, wait_s=wait)


def _lanes(root: dict[str, Any], device: DeviceConfig, readers: tuple[str, ...],
           scanners: tuple[str, ...]) -> tuple[LaneConfig, ...]:
    """``[[lanes]]``: every reader and scanner in exactly one lane; none given: one lane."""
    value = root.get("lanes")
    if value is None:
        return (LaneConfig(name="1", readers=readers, scanners=scanners),)
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise ConfigError("lanes", "must be an array of tables ([[lanes]])")
    lanes: list[LaneConfig] = []
    owner: dict[str, str] = {}
    for index, item in enumerate(value):
        t = _Table(item, f"lanes[{index}]", {"name", "readers", "scanners", "direction"})
        name = t.get_str("name", default=str(index + 1)) or str(index + 1)
        if any(lane.name == name for lane in lanes):
            raise ConfigError(t.key("name"), f"lane {name!r} is named twice")
        lane_readers, lane_scanners = t.uris("readers"), t.uris("scanners")
        if not lane_readers and not lane_scanners:
            raise ConfigError(t.key("readers"), "a lane needs a reader or a scanner")
        for key, uris, known in (("readers", lane_readers, readers),
                                 ("scanners", lane_scanners, scanners)):
            for uri in uris:
                if uri not in known:
                    raise ConfigError(t.key(key), f"{uri!r} is not listed in [{key}] uris")
                if uri in owner:
                    raise ConfigError(t.key(key), f"{uri!r} is already in lane {owner[uri]!r}")
                owner[uri] = name
        direction = t.enum("direction", Direction, None)
        if direction is not None and device.site_kind is not SiteKind.HERITAGE_GATE:
            raise ConfigError(t.key("direction"), "applies to heritage-gate devices only")
        if direction is not None and device.direction not in (Direction.BOTH, direction):
            raise ConfigError(t.key("direction"), f"{direction} at an {device.direction} gate; "
                              "set device.direction = \"both\" for lanes of either direction")
        lanes.append(LaneConfig(name=name, readers=lane_readers, scanners=lane_scanners,
                                direction=direction))
    missing = [uri for uri in (*readers, *scanners) if uri not in owner]
    if missing:
        raise ConfigError("lanes", f"{', '.join(missing)} in no lane (each reader and scanner "
                          "belongs to exactly one)")
    return tuple(lanes)


def _outputs(root: dict[str, Any]) -> OutputsConfig:
    pins = ("relay", "buzzer", "green", "red", "amber")
    t = _table(root, "outputs", {"backend", *pins, "relay_active_high", "relay_pulse_s"})
    backend = t.enum("backend", OutputsBackend, None)
    values: dict[str, int | None] = {}
    for pin in pins:
        values[pin] = t.get_int(pin, -1, 0, 27) if t.has(pin) else None
    used = [v for v in values.values() if v is not None]
    if len(used) != len(set(used)):
        raise ConfigError("outputs", "two outputs share a pin")
    if backend is None:
        backend = OutputsBackend.GPIOZERO if used else OutputsBackend.NONE
    if backend is OutputsBackend.GPIOZERO and not used:
        raise ConfigError("outputs.backend", "gpiozero needs at least one pin (BCM numbers)")
    return OutputsConfig(backend=backend, relay=values["relay"], buzzer=values["buzzer"],
                         green=values["green"], red=values["red"], amber=values["amber"],
                         relay_active_high=t.get_bool("relay_active_high", True),
                         relay_pulse_s=t.get_float("relay_pulse_s", 1.0, 0.1, 10.0))


def _vneid(root: dict[str, Any]) -> VneidConfig:
    t = _table(root, "vneid", {"adapter", "url", "timeout_s", "retries", "deadline_s",
                               "breaker_failures", "breaker_reset_s"})
    adapter = t.enum("adapter", VneidVerifierKind, VneidVerifierKind.NONE)
    assert adapter is not None
    url = t.get_str("url")
    deadline = t.get_float("deadline_s", 0.9, 0.1, 1.0)
    timeout = t.get_float("timeout_s", 0.4, 0.05, 1.0)
    if timeout > deadline:
        raise ConfigError("vneid.timeout_s", f"must not exceed vneid.deadline_s ({deadline})")
    if adapter is VneidVerifierKind.HTTP and url is None:
        raise ConfigError("vneid.url", "is required with adapter = \"http\"")
    if adapter is VneidVerifierKind.SIM and url is None:
        url = "http://127.0.0.1:8766"
    if url is not None:
        if adapter is VneidVerifierKind.NONE:
            raise ConfigError("vneid.url", "is set but vneid.adapter is \"none\"")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("vneid.url", "must be an http:// or https:// URL with a host")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ConfigError("vneid.url", "must be https:// (the token is a bearer secret and "
                              "the answer is personal data); http:// only to loopback")
    return VneidConfig(adapter=adapter, url=url, timeout_s=timeout,
                       retries=t.get_int("retries", 1, 0, 3), deadline_s=deadline,
                       breaker_failures=t.get_int("breaker_failures", 3, 1, 100),
                       breaker_reset_s=t.get_float("breaker_reset_s", 30.0, 1.0, 3600.0))


def _qr(root: dict[str, Any]) -> QrConfig:
    t = _table(root, "qr", {"expiry_policy"})
    return QrConfig(expiry_policy=t.enum("expiry_policy", QrExpiryPolicy, QrExpiryPolicy.FLAG)
                    or QrExpiryPolicy.FLAG)


def parse_config(text: str, base_dir: Path | str = ".", *, source: Path | None = None) -> Config:
    """Parse TOML text; relative paths are resolved against ``base_dir``."""
    base = Path(base_dir)
    try:
        root = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"not valid TOML: {exc}") from None
    for name, value in root.items():
        if name not in _TABLES:
            raise ConfigError(name, f"unknown table (allowed: {', '.join(sorted(_TABLES))})")
        if name == "lanes":
            continue  # an array of tables, checked by _lanes
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table ([" + name + "])")
    device = _device(root)

    k = _table(root, "keys", {"signing_key", "centre_public_key", "subject_key"}, required=True)
    keys = KeysConfig(signing_key=k.req_path("signing_key", base),
                      centre_public_key=k.req_path("centre_public_key", base),
                      subject_key=k.path("subject_key", base))

    readers = _table(root, "readers", {"uris"}).uris("uris")
    scanners = _table(root, "scanners", {"uris"}).uris("uris")
    if not readers and not scanners:
        raise ConfigError("readers.uris", "no card reader and no QR scanner: the device could "
                          "not check anyone in")

    c = _table(root, "chip", {"dg2", "trust_dir", "clone_check", "require_csca_chain",
                              "max_chunk", "after_qr", "tap_window_s", "can_pad"})
    trust_dir = c.path("trust_dir", base)
    require_chain = c.get_bool("require_csca_chain", False)
    if require_chain and trust_dir is None:
        raise ConfigError("chip.require_csca_chain", "needs chip.trust_dir (the CSCA certificates)")
    chip = ChipConfig(
        dg2=c.get_bool("dg2", False), trust_dir=trust_dir,
        clone_check=c.enum("clone_check", CloneCheckSetting, CloneCheckSetting.CA)
        or CloneCheckSetting.CA,
        require_csca_chain=require_chain, max_chunk=c.get_int("max_chunk", 0xDF, 16, 65536),
        after_qr=c.get_bool("after_qr", True),
        tap_window_s=c.get_float("tap_window_s", 4.0, 0.5, 60.0),
        can_pad=c.get_bool("can_pad", True))

    cap = _table(root, "capacity", {"policy", "dedupe_window_s"})
    capacity = CapacityConfig(
        policy=cap.enum("policy", CapacityPolicy, CapacityPolicy.WARN) or CapacityPolicy.WARN,
        dedupe_window_s=cap.get_int("dedupe_window_s", 5, 0, 3600))

    o = _table(root, "outbox", {"path", "max_rows", "max_bytes", "retention_days",
                                "max_rejected", "rejected_per_minute"}, required=True)
    outbox = OutboxConfig(path=o.req_path("path", base),
                          max_rows=o.get_int("max_rows", 200_000, 100, 100_000_000),
                          max_bytes=o.get_int("max_bytes", 256 * 1024 * 1024, 1024 * 1024, 1 << 40),
                          retention_days=o.get_int("retention_days", 30, 1, 3650),
                          max_rejected=o.get_int("max_rejected", 1000, 0, 1_000_000),
                          rejected_per_minute=o.get_int("rejected_per_minute", 30, 0, 6000))

    m = _table(root, "metrics", {"port"})
    kiosk = _kiosk(root)
    metrics = MetricsConfig(port=m.get_int("port", 0, 0, 65535))
    if metrics.port and metrics.port == kiosk.port:
        raise ConfigError("metrics.port", f"is the same as kiosk.port ({kiosk.port})")

    return Config(device=device, keys=keys, broker=_broker(root, base), outbox=outbox,
                  readers=readers, scanners=scanners, chip=chip, capacity=capacity,
                  kiosk=kiosk, metrics=metrics,
                  insurance=_insurance(root, device.site_kind), vneid=_vneid(root),
                  qr=_qr(root), lanes=_lanes(root, device, readers, scanners),
                  outputs=_outputs(root), source=source)


def load_config(path: Path | str) -> Config:
    """Read and check the TOML file at ``path``."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("", f"{file}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"{file}: cannot read ({exc})") from None
    return parse_config(text, file.resolve().parent, source=file)


@dataclass(frozen=True, slots=True)
class LoadedKeys:
    """The key material a configuration names, read and checked."""

    signing_key: Ed25519PrivateKey
    centre_public_key: X25519PublicKey
    subject_key: bytes | None
    """The deprecated province key when still configured (unused; see :class:`KeysConfig`)."""


def _read(path: Path, key: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def load_keys(keys: KeysConfig) -> LoadedKeys:
    """Read the three key files; errors name the ``keys.*`` key."""
    signing_pem = _read(keys.signing_key, "keys.signing_key")
    try:
        signing = serialization.load_pem_private_key(signing_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError("keys.signing_key",
                          f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(signing, Ed25519PrivateKey):
        raise ConfigError("keys.signing_key", "must be an Ed25519 private key")
    centre_pem = _read(keys.centre_public_key, "keys.centre_public_key")
    try:
        centre = serialization.load_pem_public_key(centre_pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError("keys.centre_public_key", f"not a PEM public key ({exc})") from None
    if not isinstance(centre, X25519PublicKey):
        raise ConfigError("keys.centre_public_key", "must be an X25519 public key")
    if keys.subject_key is None:
        return LoadedKeys(signing, centre, None)
    subject = _read(keys.subject_key, "keys.subject_key")
    if len(subject) < 16:
        raise ConfigError("keys.subject_key", f"holds {len(subject)} bytes, at least 16 needed")
    return LoadedKeys(signing, centre, subject)

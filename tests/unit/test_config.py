"""The device configuration (edge_agent.config, docs/configuration.md)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from edge_agent.config import (
    CapacityPolicy,
    CloneCheckSetting,
    ConfigError,
    Direction,
    InsuranceAdapterKind,
    Language,
    NameDisplay,
    QrExpiryPolicy,
    SiteKind,
    VneidVerifierKind,
    load_config,
    load_keys,
    parse_config,
)
from edge_agent.events.local_subject import StaticSubjects
from edge_agent.flows import FlowSettings, HospitalFlow, make_flow
from edge_agent.reading.policy import CloneCheck

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "agent.example.toml"

MINIMAL = """
[device]
id = "desk-01"
site_id = "bv-cho-ray"
site_kind = "hospital-reception"

[keys]
signing_key = "k/sign.pem"
centre_public_key = "k/centre.pem"
subject_key = "k/subject.key"

[readers]
uris = ["sim:/tmp/card"]

[broker]
url = "mqtt://127.0.0.1:1883"

[outbox]
path = "outbox.sqlite3"
"""


def with_(extra: str, base: str = MINIMAL) -> str:
    return base + "\n" + extra


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/etc/agent")
    return info.value


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.device.site_kind is SiteKind.HERITAGE_GATE
    assert config.device.direction is Direction.ENTRY
    assert config.device.name_display is NameDisplay.GIVEN
    assert config.broker.tls and config.broker.port == 8883
    assert config.keys.signing_key == EXAMPLE.parent / "keys" / "device-ed25519.pem"
    assert config.chip.max_chunk == 0xDF and config.chip.clone_check is CloneCheckSetting.CA
    assert config.kiosk.host == "127.0.0.1" and config.metrics.port == 9100
    assert config.source == EXAMPLE


def test_defaults_and_path_resolution() -> None:
    config = parse_config(MINIMAL, "/etc/agent")
    assert config.device.language is Language.VI
    assert config.device.name_display is NameDisplay.FULL
    assert config.device.direction is None
    assert config.capacity.policy is CapacityPolicy.WARN
    assert config.capacity.dedupe_window_s == 5
    assert config.broker.heartbeat_s == 30 and not config.broker.tls
    assert config.broker.receipt_timeout_s == 60
    assert config.outbox.path == Path("/etc/agent/outbox.sqlite3")
    assert config.keys.subject_key == Path("/etc/agent/k/subject.key")
    assert config.kiosk.port == 8080 and config.metrics.port == 0
    assert config.insurance.adapter is InsuranceAdapterKind.NONE
    assert config.readers == ("sim:/tmp/card",) and config.scanners == ()


def test_dataclasses_are_frozen() -> None:
    config = parse_config(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.device.id = "x"  # type: ignore[misc]


def test_clone_check_values_mirror_the_read_policy() -> None:
    assert {c.value for c in CloneCheckSetting} == {c.value for c in CloneCheck}


@pytest.mark.parametrize(("text", "key", "words"), [
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"', 'url = "tcp://broker:1883"'),
     "broker.url", "must start with mqtt:// or mqtts://"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://broker.example.vn"'),
     "broker.url", "loopback"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtts://broker.example.vn"'),
     "broker.cert", "required with mqtts://"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://u:p@127.0.0.1"'),
     "broker.url", "credentials"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"', 'url = "mqtt://127.0.0.1:99999"'),
     "broker.url", "port"),
    (with_("heartbeat_s = 60"), "outbox.heartbeat_s", "unknown key"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"',
                     'url = "mqtt://127.0.0.1:1883"\nheartbeat_s = 1'),
     "broker.heartbeat_s", "5..3600"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"',
                     'url = "mqtt://127.0.0.1:1883"\nreceipt_timeout_s = 2'),
     "broker.receipt_timeout_s", "0 (no receipts) or 5"),
    (MINIMAL.replace('url = "mqtt://127.0.0.1:1883"',
                     'url = "mqtt://127.0.0.1:1883"\nreceipt_timeout_s = -1'),
     "broker.receipt_timeout_s", "0..86400"),
    (with_("[capacity]\npolicy = \"block\""), "capacity.policy", "warn | refuse"),
    (with_("[capacity]\ndedupe_window_s = -1"), "capacity.dedupe_window_s", "0..3600"),
    (with_("[capacity]\ndedupe_window_s = \"5\""), "capacity.dedupe_window_s", "integer"),
    (with_("[capacity]\nwindow = 5"), "capacity.window", "unknown key"),
    (with_("[logging]\nlevel = \"debug\""), "logging", "unknown table"),
    (MINIMAL.replace('id = "desk-01"', 'id = "Desk 01"'), "device.id", "lower-case"),
    (MINIMAL.replace('id = "desk-01"', 'id = "sites"'), "device.id", "reserved"),
    (MINIMAL.replace('id = "desk-01"\n', ''), "device.id", "is required"),
    (MINIMAL.replace('site_kind = "hospital-reception"', 'site_kind = "museum"'),
     "device.site_kind", "heritage-gate | hospital-reception | accommodation-desk"),
    (MINIMAL.replace('site_kind = "hospital-reception"', 'site_kind = "heritage-gate"'),
     "device.direction", "required for a heritage-gate"),
    (MINIMAL.replace('site_kind = "hospital-reception"',
                     'site_kind = "hospital-reception"\ndirection = "entry"'),
     "device.direction", "heritage-gate devices only"),
    (MINIMAL.replace('site_id = "bv-cho-ray"', 'site_id = "bv-cho-ray"\nlanguage = "fr"'),
     "device.language", "vi | en"),
    (MINIMAL.replace('site_id = "bv-cho-ray"', 'site_id = "bv-cho-ray"\nname_display = "x"'),
     "device.name_display", "full | given | initials | none"),
    (with_("[kiosk]\nhost = \"0.0.0.0\""), "kiosk.host", "loopback"),
    (with_("[kiosk]\nport = 0"), "kiosk.port", "1..65535"),
    (with_("[metrics]\nport = 8080"), "metrics.port", "kiosk.port"),
    (with_("[chip]\nmax_chunk = 4"), "chip.max_chunk", "16..65536"),
    (with_("[chip]\nclone_check = \"aa\""), "chip.clone_check", "none | ca | both"),
    (with_("[chip]\nrequire_csca_chain = true"), "chip.require_csca_chain", "trust_dir"),
    (with_("[chip]\ndg2 = \"yes\""), "chip.dg2", "true or false"),
    (with_("[insurance]\nadapter = \"http\""), "insurance.url", "required"),
    (with_("[insurance]\nadapter = \"http\"\nurl = \"http://bhyt.example.vn\""),
     "insurance.url", "https://"),
    (with_("[insurance]\nurl = \"https://bhyt.example.vn\""), "insurance.url", "none"),
    (with_("[insurance]\nadapter = \"soap\""), "insurance.adapter", "none | http | sim"),
    (MINIMAL.replace('uris = ["sim:/tmp/card"]', 'uris = "pcsc"'), "readers.uris",
     "list of strings"),
    (MINIMAL.replace('uris = ["sim:/tmp/card"]', 'uris = []'), "readers.uris",
     "no card reader"),
    (MINIMAL.replace('uris = ["sim:/tmp/card"]', 'uris = ["pcsc", "pcsc"]'), "readers.uris",
     "twice"),
    (MINIMAL.replace('[outbox]\npath = "outbox.sqlite3"', '[outbox]\nmax_rows = 10'),
     "outbox.path", "is required"),
    (with_("max_bytes = 1"), "outbox.max_bytes", "within"),
    (MINIMAL.replace('signing_key = "k/sign.pem"\n', ''), "keys.signing_key", "required"),
    ("[device\n", "", "not valid TOML"),
    ("device = 3\n", "device", "must be a table"),
])
def test_errors_name_the_key(text: str, key: str, words: str) -> None:
    error = error_of(text)
    assert error.key == key, str(error)
    assert str(error).startswith(f"{key}: ") if key else True, str(error)
    assert words in str(error), str(error)


def test_broker_error_message_is_exact() -> None:
    error = error_of(MINIMAL.replace("mqtt://127.0.0.1:1883", "http://127.0.0.1"))
    assert str(error) == "broker.url: must start with mqtt:// or mqtts://"
    assert error.key == "broker.url"


def test_heritage_gate_and_kiosk_remote_when_allowed() -> None:
    text = MINIMAL.replace('site_kind = "hospital-reception"',
                           'site_kind = "heritage-gate"\ndirection = "both"')
    config = parse_config(with_("[kiosk]\nhost = \"0.0.0.0\"\nallow_remote = true", text))
    assert config.device.direction is Direction.BOTH and config.kiosk.allow_remote
    with pytest.raises(ConfigError, match=r"^insurance.adapter: only hospital"):
        parse_config(with_("[insurance]\nadapter = \"sim\"", text))


def test_sim_insurance_defaults_to_the_local_simulator() -> None:
    config = parse_config(with_("[insurance]\nadapter = \"sim\"\ntimeout_s = 1.5"))
    assert config.insurance.url == "http://127.0.0.1:8765" and config.insurance.timeout_s == 1.5


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config("/nonexistent/agent.toml")


def _write_keys(folder: Path) -> None:
    folder.mkdir()
    (folder / "sign.pem").write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / "centre.pem").write_bytes(X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (folder / "subject.key").write_bytes(b"\x01" * 32)


def test_load_keys(tmp_path: Path) -> None:
    _write_keys(tmp_path / "k")
    (tmp_path / "agent.toml").write_text(MINIMAL, encoding="utf-8")
    config = load_config(tmp_path / "agent.toml")
    keys = load_keys(config.keys)
    assert keys.subject_key == b"\x01" * 32  # deprecated: checked, not used by the flows
    local = StaticSubjects(b"\x02" * 32)
    flow = make_flow(config, local, clock=lambda: None,  # type: ignore[arg-type,return-value]
                     commit=lambda drafts: None)
    assert isinstance(flow, HospitalFlow)
    assert FlowSettings.from_config(config, local).site_id == "bv-cho-ray"


def test_the_province_subject_key_is_optional(tmp_path: Path) -> None:
    _write_keys(tmp_path / "k")
    text = "\n".join(line for line in MINIMAL.splitlines()
                     if not line.startswith("subject_key"))
    (tmp_path / "agent.toml").write_text(text, encoding="utf-8")
    config = load_config(tmp_path / "agent.toml")
    assert config.keys.subject_key is None
    assert load_keys(config.keys).subject_key is None


@pytest.mark.parametrize(("file", "content", "key", "words"), [
    ("subject.key", b"short", "keys.subject_key", "at least 16"),
    ("sign.pem", b"garbage", "keys.signing_key", "PEM"),
    ("centre.pem", None, "keys.centre_public_key", "X25519"),
    ("sign.pem", None, "keys.signing_key", "cannot read"),
])
def test_load_keys_errors_name_the_key(tmp_path: Path, file: str, content: bytes | None,
                                       key: str, words: str) -> None:
    _write_keys(tmp_path / "k")
    target = tmp_path / "k" / file
    if content is not None:
        target.write_bytes(content)
    elif file == "centre.pem":  # a key of the wrong type
        target.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    else:
        target.unlink()
    config = parse_config(MINIMAL, tmp_path)
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: .*{words}"):
        load_keys(config.keys)


def test_every_key_of_the_example_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = ""
    for raw in EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):
            table = line.strip("[]")
            assert f"[{table}]" in doc
        elif "=" in line:
            key = line.split("=", 1)[0].strip()
            assert f"`{table}.{key}`" in doc, f"{table}.{key} is not in docs/configuration.md"


def test_vneid_and_qr_tables() -> None:
    config = parse_config(MINIMAL, "/etc/agent")
    assert config.vneid.adapter is VneidVerifierKind.NONE and config.vneid.deadline_s == 0.9
    assert config.qr.expiry_policy is QrExpiryPolicy.FLAG
    config = parse_config(with_('[vneid]\nadapter = "sim"\n[qr]\nexpiry_policy = "refuse"'),
                          "/etc/agent")
    assert config.vneid.url == "http://127.0.0.1:8766"
    assert config.qr.expiry_policy is QrExpiryPolicy.REFUSE
    assert FlowSettings.from_config(config, b"k" * 32).qr_expiry is QrExpiryPolicy.REFUSE
    example = load_config(EXAMPLE)
    assert example.vneid.adapter is VneidVerifierKind.NONE
    assert example.qr.expiry_policy is QrExpiryPolicy.FLAG


@pytest.mark.parametrize(("extra", "message"), [
    ('[vneid]\nadapter = "http"', 'vneid.url: is required with adapter = "http"'),
    ('[vneid]\nadapter = "http"\nurl = "http://10.0.0.5/api"', "vneid.url: must be https://"),
    ('[vneid]\nurl = "https://x.vn"', 'vneid.url: is set but vneid.adapter is "none"'),
    ('[vneid]\ndeadline_s = 2.0', "vneid.deadline_s: must be within 0.1..1.0"),
    ('[vneid]\ntimeout_s = 0.8\ndeadline_s = 0.5', "vneid.timeout_s: must not exceed"),
    ('[qr]\nexpiry_policy = "ignore"', "qr.expiry_policy: must be one of flag | refuse"),
])
def test_vneid_and_qr_errors(extra: str, message: str) -> None:
    assert str(error_of(with_(extra))).startswith(message)


EXAMPLES = {"entry-gate": ("heritage-gate", "entry"), "exit-gate": ("heritage-gate", "exit"),
            "both-way-gate": ("heritage-gate", "both"),
            "hospital-reception": ("hospital-reception", None),
            "ward-admission": ("hospital-reception", None),
            "accommodation-desk": ("accommodation-desk", None)}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_shipped_site_examples_load_and_are_listed(name: str) -> None:
    config = load_config(ROOT / "deploy" / "examples" / f"{name}.toml")
    kind, direction = EXAMPLES[name]
    assert config.device.site_kind.value == kind
    assert (config.device.direction.value if config.device.direction else None) == direction
    assert f"`{name}.toml`" in (ROOT / "docs" / "configuration.md").read_text("utf-8")


def test_every_shipped_site_example_is_tested() -> None:
    shipped = {p.stem for p in (ROOT / "deploy" / "examples").glob("*.toml")}
    assert shipped == set(EXAMPLES)

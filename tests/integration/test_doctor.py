"""``edge-agent doctor``: each check reported, a failing one fails the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from firmware_sim.card import issue_cards
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import Broker, free_port, make_pki, running_broker


def write(tmp_path: Path, broker_url: str, tls: tuple[Path, Path, Path] | None) -> Path:
    issue_cards(tmp_path / "cards", 1, seed=3)
    write_device_keys(tmp_path)
    broker = f'url = "{broker_url}"'
    if tls:
        broker += f'\nca = "{tls[0]}"\ncert = "{tls[1]}"\nkey = "{tls[2]}"'
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[device]
id = "gate-01"
site_id = "hue-dai-noi"
site_kind = "heritage-gate"
direction = "entry"

{KEYS_TOML}
[readers]
uris = ["sim:{tmp_path / 'cards' / 'cards' / '0001'}"]

[chip]
trust_dir = "{tmp_path / 'cards' / 'trust'}"

[broker]
{broker}

[outbox]
path = "{tmp_path / 'outbox.sqlite3'}"
""", encoding="utf-8")
    return config


def doctor(config: Path) -> tuple[int, list[dict[str, object]]]:
    script = Path(sys.executable).with_name("edge-agent")
    done = subprocess.run([str(script), "doctor", "--config", str(config), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout)


def test_all_good_with_a_tls_broker(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", devices=("gate-01",))
    broker: Broker
    with running_broker(tmp_path / "broker", pki) as broker:
        code, results = doctor(write(tmp_path, broker.url, pki.tls("gate-01")))
    checks = {r["check"]: r for r in results}
    assert code == 0, results
    assert set(checks) >= {"keys", "trust store", "device certificate", "broker", "clock"}
    assert any(name.startswith("reader sim:") for name in checks)
    assert "CN=gate-01" in str(checks["device certificate"]["detail"])
    assert "TLS" in str(checks["broker"]["detail"])


def test_unreachable_broker_fails(tmp_path: Path) -> None:
    code, results = doctor(write(tmp_path, f"mqtt://127.0.0.1:{free_port()}", None))
    checks = {r["check"]: r for r in results}
    assert code == 1
    assert checks["broker"]["ok"] is False and checks["keys"]["ok"] is True

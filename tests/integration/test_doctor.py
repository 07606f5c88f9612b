"""``edge-agent doctor``: each check reported, a failing one fails the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from firmware_sim.card import issue_cards
from tests.integration.agent_setup import KEYS_TOML, write_device_keys
from tests.integration.broker_fixtures import (
    Broker,
    Recorder,
    free_port,
    make_pki,
    running_broker,
)


def write(tmp_path: Path, broker_url: str,
          tls: tuple[Path | None, Path, Path] | None) -> Path:
    issue_cards(tmp_path / "cards", 1, seed=3)
    write_device_keys(tmp_path)
    broker = f'url = "{broker_url}"'
    if tls:
        broker += f'\ncert = "{tls[1]}"\nkey = "{tls[2]}"'
        if tls[0] is not None:
            broker += f'\nca = "{tls[0]}"'
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


def doctor(config: Path, env: dict[str, str] | None = None
           ) -> tuple[int, list[dict[str, object]]]:
    script = Path(sys.executable).with_name("edge-agent")
    done = subprocess.run([str(script), "doctor", "--config", str(config), "--json"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_all_good_with_a_tls_broker(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", devices=("gate-01",))
    broker: Broker
    with running_broker(tmp_path / "broker", pki) as broker:
        code, results = doctor(write(tmp_path, broker.url, pki.tls("gate-01")))
    checks = {r["check"]: r for r in results}
    assert code == 0, results
    assert set(checks) >= {"keys", "trust store", "device certificate", "broker", "clock"}
    assert any(str(name).startswith("reader sim:") for name in checks)
    assert "CN=gate-01" in str(checks["device certificate"]["detail"])
    assert "TLS" in str(checks["broker"]["detail"])


def test_unreachable_broker_fails(tmp_path: Path) -> None:
    code, results = doctor(write(tmp_path, f"mqtt://127.0.0.1:{free_port()}", None))
    checks = {r["check"]: r for r in results}
    assert code == 1
    assert checks["broker"]["ok"] is False and checks["keys"]["ok"] is True


def test_broker_ca_defaults_to_the_system_store(tmp_path: Path) -> None:
    """``broker.ca`` left out (docs/configuration.md: "system store"): the broker is verified
    against OpenSSL's default verify paths. ``SSL_CERT_FILE`` points those paths at the test CA,
    as an operator's CA installed in /etc/ssl/certs would; without it the test CA is unknown
    and the handshake is refused (a report line, never a crash)."""
    pki = make_pki(tmp_path / "pki", devices=("gate-01",))
    _, cert, key = pki.tls("gate-01")
    with running_broker(tmp_path / "broker", pki) as broker:
        config = write(tmp_path, broker.url, (None, cert, key))
        assert "ca =" not in config.read_text()
        code, results = doctor(config, {"SSL_CERT_FILE": str(pki.ca)})
        checks = {r["check"]: r for r in results}
        assert code == 0, results
        assert "TLS" in str(checks["broker"]["detail"])
        _agent_publishes_its_status(broker, config, {"SSL_CERT_FILE": str(pki.ca)})
        code, results = doctor(config, {"SSL_CERT_FILE": str(tmp_path / "no-such.pem"),
                                        "SSL_CERT_DIR": str(tmp_path / "no-such-dir")})
    checks = {r["check"]: r for r in results}
    assert code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in str(checks["broker"]["detail"]), checks["broker"]


def _agent_publishes_its_status(broker: Broker, config: Path, env: dict[str, str]) -> None:
    """``edge-agent run`` on the same configuration connects and publishes its status."""
    with config.open("a", encoding="utf-8") as out:
        out.write(f"\n[kiosk]\nport = {free_port()}\n")
    recorder = Recorder(broker, ("checkin/v1/gate-01/status",)).start()
    script = Path(sys.executable).with_name("edge-agent")
    proc = subprocess.Popen([str(script), "run", "--config", str(config)],
                            env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert recorder.wait_for(lambda ms: any(m.json().get("state") == "online"
                                                for m in ms), 30), proc.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        recorder.stop()
    assert proc.returncode == 0, err
    assert "Traceback" not in err

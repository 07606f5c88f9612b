"""The README's main job in check mode: the whole system, exact counts at the centre."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.broker_fixtures import free_port


def test_demo_check_passes(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("cccd-demo")
    done = subprocess.run(
        [str(script), "--duration", "15", "--check", "--visitors", "40",
         "--port", str(free_port()), "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CHECK PASSED" in done.stdout
    assert "dashboard: http://127.0.0.1:" in done.stdout and "login: admin / " in done.stdout
    # Every kind of event the sites produce reached the centre.
    for kind in ("hue-dai-noi entry", "bv-trung-uong-hue visit", "bv-trung-uong-hue stay.start"):
        assert kind in done.stdout
    assert_private_tree(tmp_path / "demo")


def assert_private_tree(root: Path) -> None:
    """No file or folder of the work folder is open to group or others (the centre's X25519
    key, the web secret, the database and its -wal/-shm, device keys, outboxes, simulator PKI
    keys, logs…), and the secrets the security review read as another user are all there."""
    import os
    import stat

    open_to_others: list[str] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            seen.add(str(path.relative_to(root)))
            if stat.S_IMODE(mode) & 0o077:
                open_to_others.append(f"{path.relative_to(root)} {stat.S_IMODE(mode):o}")
    assert stat.S_IMODE(root.stat().st_mode) & 0o077 == 0
    assert open_to_others == [], open_to_others
    for secret in ("centre-x25519.key", "web-secret", "data.key", "central.sqlite3",
                   "pki/ca.key", "devices/gate-ngo-mon-1/keys/device-ed25519.pem",
                   "subject.key", "centre-subject.key",
                   "devices/gate-ngo-mon-1/tls/gate-ngo-mon-1.key", "cards/pki/csca.key.pem"):
        assert secret in seen, secret
    assert any(p.endswith("outbox.sqlite3") for p in seen), sorted(seen)[:50]


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    import signal
    import time

    script = Path(sys.executable).with_name("cccd-demo")
    workdir = tmp_path / "demo"
    proc = subprocess.Popen([str(script), "--visitors", "20", "--port", str(free_port()),
                             "--workdir", str(workdir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 180
    for line in proc.stdout:
        if "visitors are arriving" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0
    assert "[demo] stopped" in rest
    # Nothing the demo started is left running (every part's command line names the workdir).
    left = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True,
                          check=False)
    assert left.stdout.strip() == ""

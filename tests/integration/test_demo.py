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

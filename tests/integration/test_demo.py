"""The README's main job in check mode: the whole system, exact counts at the centre."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.broker_fixtures import free_port


def test_demo_check_passes(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("firmware-sim")
    done = subprocess.run(
        [str(script), "demo", "--duration", "15", "--check", "--visitors", "40",
         "--port", str(free_port()), "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "CHECK PASSED" in done.stdout
    assert "dashboard: http://127.0.0.1:" in done.stdout and "login: admin / " in done.stdout
    # Every kind of event the sites produce reached the centre.
    for kind in ("hue-dai-noi entry", "bv-trung-uong-hue visit", "bv-trung-uong-hue stay.start"):
        assert kind in done.stdout

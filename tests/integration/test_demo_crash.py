"""The README's main job through the broker crash with the collector down (docs/protocol.md
§4.11): every ingest worker SIGKILLed during the traffic, 12 s later the broker SIGKILLed before
any autosave, both started again with their own command lines; ``--check`` then demands the
centre's counts equal exactly what the gates accepted (bounded: 30 s of traffic)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.broker_fixtures import free_port


def test_demo_check_passes_through_ingest_then_broker_sigkill(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("cccd-demo")
    done = subprocess.run(
        [str(script), "--duration", "30", "--check", "--crash", "--visitors", "40",
         "--port", str(free_port()), "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=900, check=False)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    # Both crashes happened, in that order, during the traffic.
    killed_ingest = out.index("crash: SIGKILL ingest worker collector")
    killed_broker = out.index("crash: SIGKILL the broker")
    assert killed_ingest < killed_broker < out.index("traffic stopped")
    assert "MISMATCH" not in out
    assert "CHECK PASSED" in out

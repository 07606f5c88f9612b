"""The delivery benches still run end to end (tiny sizes): bench/ingest.py, bench/tap_receipt.py
and bench/outage_drain.py each exit 0 and print their markdown table. Only that they work is
asserted, never a figure (docs/performance.md has the figures and their commands)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.broker_fixtures import env_for_child, require_mosquitto

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float = 300) -> str:
    require_mosquitto()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env_for_child(),
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_ingest_bench_runs() -> None:
    out = run_bench("bench/ingest.py", "--events", "200", "--db", "sqlite", "--repeat", "1",
                    "--timeout", "120")
    assert "| sqlite | 2 | 200 |" in out


@pytest.mark.parametrize("taps", [5])
def test_tap_receipt_bench_runs(taps: int) -> None:
    out = run_bench("bench/tap_receipt.py", "--taps", str(taps), "--timeout", "60")
    assert f"| **tap → receipt** | {taps} |" in out


def test_outage_drain_bench_runs() -> None:
    out = run_bench("bench/outage_drain.py", "--devices", "6", "--outage-s", "120",
                    "--procs", "2", "--down-s", "2", "--timeout", "120")
    assert "| devices enrolled (certificates, broker roles, registry) | 6 " in out
    assert "**every event receipted in its outbox**" in out

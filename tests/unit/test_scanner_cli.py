"""``edge-agent scan`` argument and URI errors (no device needed)."""

from __future__ import annotations

import pytest

from edge_agent.cli import main


@pytest.mark.parametrize("uri", ["bogus:thing", "serial:", "serial:loop://?terminator=enter",
                                 "frames:/tmp?decoder=nope", "serial:loop://?colour=red"])
def test_bad_uri_exits_2_with_reason(capsys: pytest.CaptureFixture[str], uri: str) -> None:
    assert main(["scan", "--scanner", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge-agent: bad scanner URI") and err.count("\n") == 1


def test_missing_device_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--scanner", "serial:/dev/nonexistent-qr"]) == 1
    assert "cannot open serial scanner" in capsys.readouterr().err


def test_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--scanner", "serial:loop://", "--count", "0"]) == 2


def test_timeout_with_no_scan_is_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--scanner", "serial:loop://", "--timeout", "0.1"]) == 0
    assert capsys.readouterr().out == ""

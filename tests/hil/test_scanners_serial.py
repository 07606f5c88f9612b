"""Serial scanners through the real pyserial on a pseudo-terminal scanner (firmware_sim)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from drivers.code_scanner import Scan
from drivers.scanners.serial_scanner import SerialScanner
from drivers.uri import open_scanner
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from tests.hil.scanner_fixtures import pty_scanner, viet_payloads

__all__ = ["pty_scanner", "viet_payloads"]

Factory = Callable[..., PtySerialScanner]


def read_n(scanner: SerialScanner, n: int, timeout: float = 5.0) -> list[Scan]:
    scans: list[Scan] = []
    deadline = time.monotonic() + timeout
    while len(scans) < n and time.monotonic() < deadline:
        scan = scanner.read(timeout=0.1)
        if scan is not None:
            scans.append(scan)
    return scans


def open_on(sim: PtySerialScanner, options: str) -> SerialScanner:
    scanner = open_scanner(f"serial:{sim.path}?{options}")
    assert isinstance(scanner, SerialScanner)
    return scanner


@pytest.mark.parametrize(("name", "terminator"), [
    ("cr", b"\r"), ("lf", b"\n"), ("crlf", b"\r\n"), ("tab", b"\t"), ("0x03", b"\x03"),
])
def test_split_writes_vietnamese_byte_exact(pty_scanner: Factory, viet_payloads: list[bytes],
                                            name: str, terminator: bytes) -> None:
    sim = pty_scanner(terminator=terminator)
    with open_on(sim, f"baud=115200&terminator={name}") as scanner:
        for i, payload in enumerate(viet_payloads[:3]):
            sim.scan(payload, split=1 + 3 * i, delay=0.01)
        scans = read_n(scanner, 3)
        assert [s.payload for s in scans] == viet_payloads[:3]
        assert scans[0].text == viet_payloads[0].decode("utf-8")
        assert scans[0].source == f"serial:{sim.path}"
        assert scanner.health()["discards"] == 0


def test_prefix_suffix_noise_and_lost_terminator(pty_scanner: Factory,
                                                 viet_payloads: list[bytes]) -> None:
    sim = pty_scanner(terminator=b"\r\n", prefix=b"\x02", suffix=b"\x03")
    a, b, c = viet_payloads[:3]
    with open_on(sim, "terminator=crlf&prefix=%02&suffix=0x03&timeout=0.15") as scanner:
        sim.garbage(9)                       # line noise glued to the next frame
        sim.scan(a, split=3, delay=0.01)
        sim.scan(b, terminator=False)        # the terminator is lost: timeout ends it
        sim.pause(0.3)
        sim.write_raw(b"\x02truncated\r\n")  # no suffix: discarded
        sim.scan(c)
        scans = read_n(scanner, 3)
        assert [s.payload for s in scans] == [a, b, c]
        health = scanner.health()
        assert health["frames_ended_by_timeout"] == 1
        reasons = [d["reason"] for d in health["recent_discards"]]
        assert reasons == ["9 byte(s) of noise before the prefix",
                           "frame without the configured suffix"]


def test_over_long_garbage_is_discarded_then_resyncs(pty_scanner: Factory,
                                                     viet_payloads: list[bytes]) -> None:
    sim = pty_scanner(terminator=b"\r")
    with open_on(sim, "terminator=cr&max=512") as scanner:
        sim.garbage(2000)   # a scanner at the wrong baud rate spewing bytes...
        sim.scan(viet_payloads[0])  # ...glued to this frame: lost with the garbage
        sim.garbage(700)
        sim.pause(0.05)
        sim.garbage(700)
        sim.scan(viet_payloads[1])  # lost too: no way to tell where garbage ends
        sim.scan(viet_payloads[2])
        scans = read_n(scanner, 1)
        assert [s.payload for s in scans] == [viet_payloads[2]]
        reasons = {d["reason"] for d in scanner.health()["recent_discards"]}
        assert reasons <= {"over-long frame: more than 512 bytes without a terminator",
                           "rest of an over-long frame"}
        assert "over-long frame: more than 512 bytes without a terminator" in reasons
        assert scanner.health()["frames"] == 1


def test_no_terminator_frames_by_inter_character_timeout(pty_scanner: Factory,
                                                         viet_payloads: list[bytes]) -> None:
    sim = pty_scanner(terminator=b"")
    with open_on(sim, "terminator=none&timeout=0.1") as scanner:
        for payload in viet_payloads[:3]:
            sim.scan(payload, split=4, delay=0.01)
            sim.pause(0.25)
        scans = read_n(scanner, 3)
        assert [s.payload for s in scans] == viet_payloads[:3]
        assert scanner.health()["frames_ended_by_timeout"] == 3


def test_unplug_replug_reconnects_and_reports(pty_scanner: Factory,
                                              viet_payloads: list[bytes]) -> None:
    sim = pty_scanner(terminator=b"\r")
    with open_on(sim, "terminator=cr&reconnect=0.05") as scanner:
        sim.scan(viet_payloads[0])
        assert [s.payload for s in read_n(scanner, 1)] == [viet_payloads[0]]
        sim.write_raw(b"half a fra")
        sim.unplug()
        sim.wait_idle()
        assert scanner.read(timeout=0.3) is None
        health = scanner.health()
        assert health["state"] == "disconnected" and health["disconnects"] == 1
        sim.replug()
        sim.wait_idle()
        deadline = time.monotonic() + 3
        while scanner.health()["state"] != "ok" and time.monotonic() < deadline:
            scanner.read(timeout=0.05)
        health = scanner.health()
        assert health["state"] == "ok" and health["reconnects"] >= 1
        sim.scan(viet_payloads[1], split=2)
        assert [s.payload for s in read_n(scanner, 1)] == [viet_payloads[1]]

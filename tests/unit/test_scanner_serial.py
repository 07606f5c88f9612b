"""SerialScanner without hardware: URI parsing, pyserial's loop:// port, reconnect logic."""

from __future__ import annotations

from typing import Any

import pytest
import serial

from drivers.code_scanner import Scan, ScannerClosedError, ScannerConfigError
from drivers.scanners.serial_scanner import SerialScanner
from drivers.uri import UriError, open_scanner

VIET = "Nguyễn Thị Mai|Nữ|Đường C, TP. Hồ Chí Minh".encode()


def test_from_uri_parses_every_option() -> None:
    scanner = SerialScanner.from_uri(
        "loop://?baud=115200&terminator=crlf&prefix=%02&suffix=0x03&timeout=0.05&max=512"
        "&reconnect=0.2")
    try:
        assert scanner.baudrate == 115200
        f = scanner.framing
        assert (f.terminator, f.prefix, f.suffix, f.gap, f.max_length) == (
            b"\r\n", b"\x02", b"\x03", 0.05, 512)
        assert scanner.reconnect_interval == 0.2
        assert scanner.source == "serial:loop://"
    finally:
        scanner.close()


@pytest.mark.parametrize("uri", [
    "loop://?baud=fast", "loop://?terminator=enter", "loop://?timeout=-1", "loop://?speed=9600",
    "loop://?baud", "loop://?prefix=0xZZ", "loop://?max=0", "loop://?baud=1&baud=2",
])
def test_bad_options_are_config_errors(uri: str) -> None:
    with pytest.raises(ScannerConfigError):
        SerialScanner.from_uri(uri)


def test_open_scanner_dispatch_and_errors() -> None:
    scanner = open_scanner("serial:loop://?terminator=lf")
    assert isinstance(scanner, SerialScanner)
    scanner.close()
    with pytest.raises(UriError):
        open_scanner("usb:whatever")
    with pytest.raises(UriError):
        open_scanner("serial:")


def test_loopback_round_trip_utf8_byte_exact() -> None:
    with SerialScanner.from_uri("loop://?terminator=cr&prefix=%5DQ1") as scanner:
        assert isinstance(scanner, SerialScanner)
        scanner._serial.write(b"]Q1" + VIET + b"\r")
        scan = scanner.read(timeout=1)
        assert isinstance(scan, Scan)
        assert scan.payload == VIET
        assert scan.text == VIET.decode()
        assert scan.at.tzinfo is not None
        assert scanner.read(timeout=0.05) is None
        health = scanner.health()
        assert health["state"] == "ok" and health["frames"] == 1
    with pytest.raises(ScannerClosedError):
        scanner.read(0)
    assert scanner.health()["state"] == "closed"


def test_scans_iterator_stops_on_event() -> None:
    import threading

    stop = threading.Event()
    scanner = SerialScanner.from_uri("loop://?terminator=lf")
    scanner._serial.write(b"one\ntwo\n")
    got = []
    for scan in scanner.scans(stop, poll=0.02):
        got.append(scan.payload)
        if len(got) == 2:
            stop.set()
    assert got == [b"one", b"two"]
    scanner.close()
    assert list(scanner.scans()) == []


class FlakyPort:
    """Gives one chunk, then fails like an unplugged USB-CDC device."""

    def __init__(self, chunks: list[bytes | Exception]) -> None:
        self.chunks = chunks
        self.closed = False

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, n: int) -> bytes:
        if not self.chunks:
            return b""
        item = self.chunks.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


def test_unplug_mid_frame_reports_and_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    ports: list[Any] = [
        FlakyPort([b"half-a-fr", serial.SerialException("device reports readiness to read "
                                                       "but returned no data")]),
        serial.SerialException("could not open port: No such file or directory"),
        FlakyPort([b"whole\r"]),
    ]

    def connect(self: SerialScanner) -> Any:
        item = ports.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    monkeypatch.setattr(SerialScanner, "_connect", connect)
    scanner = SerialScanner("/dev/ttyFAKE", reconnect_interval=0.01)
    scan = scanner.read(timeout=1)
    assert scan is not None and scan.payload == b"whole"   # not b"half-a-frwhole"
    health = scanner.health()
    assert health["disconnects"] == 1
    assert health["recent_discards"][0]["reason"] == "device disconnected mid-frame"
    assert health["state"] == "ok" and health["reconnects"] == 1
    assert "could not open port" in health["last_error"]
    scanner.close()


def test_unopenable_port_is_unavailable() -> None:
    from drivers.code_scanner import ScannerUnavailableError

    with pytest.raises(ScannerUnavailableError):
        SerialScanner.from_uri("/dev/does-not-exist-scanner")

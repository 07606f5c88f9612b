"""Camera dedupe: one scan per appearance, K frames / T seconds of absence, two codes, none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.code_scanner import ScannerConfigError, ScannerExhaustedError
from drivers.scanners.camera import DEFAULT_DECODER, Dedupe, FrameScanner, FramesScanner
from drivers.scanners.decoders import Decoded, QrDecoder, make_decoder

A, B = "Nguyễn Thị Mai".encode(), "Trần Văn Đức".encode()


def test_same_code_over_consecutive_frames_is_one_scan() -> None:
    d = Dedupe(k_frames=3, t_seconds=10)
    out = [d.update(frame, i * 0.03) for i, frame in enumerate([[A], [A], [A], [A]])]
    assert out == [[A], [], [], []]


def test_short_dropout_does_not_rescan_but_k_frames_of_absence_does() -> None:
    d = Dedupe(k_frames=3, t_seconds=10)
    seq = [[A], [], [], [A], [], [], [], [A]]
    out = [d.update(frame, i * 0.03) for i, frame in enumerate(seq)]
    assert out == [[A], [], [], [], [], [], [], [A]]


def test_t_seconds_of_absence_rescans_at_low_frame_rate() -> None:
    d = Dedupe(k_frames=100, t_seconds=1.0)
    assert d.update([A], 0.0) == [A]
    assert d.update([], 1.2) == []
    assert d.update([A], 2.4) == [A]
    # Present in every frame: never rescanned, however slow the frames.
    assert d.update([A], 5.0) == []


def test_two_codes_in_one_frame_are_two_scans_and_duplicates_collapse() -> None:
    d = Dedupe()
    assert d.update([A, B], 0.0) == [A, B]
    assert d.update([B, A], 0.03) == []
    assert d.update([A, A], 0.06) == []
    assert d.update([], 0.09) == []
    assert d.in_view == {A, B}


def test_dedupe_validation() -> None:
    with pytest.raises(ScannerConfigError):
        Dedupe(k_frames=0)
    with pytest.raises(ScannerConfigError):
        Dedupe(t_seconds=0)


class ScriptedDecoder(QrDecoder):
    name = "scripted"

    def __init__(self, script: list[list[Decoded]]) -> None:
        self.script = script

    def decode(self, image: Any) -> list[Decoded]:
        return self.script.pop(0)


class ListScanner(FrameScanner):
    def __init__(self, frames: int, decoder: QrDecoder) -> None:
        super().__init__(decoder)
        self.left = frames
        self.source = "test"

    def grab(self) -> Any:
        if not self.left:
            raise ScannerExhaustedError("done")
        self.left -= 1
        return np.zeros((4, 4), np.uint8)


def test_frame_scanner_orders_left_to_right_and_ends() -> None:
    decoder = ScriptedDecoder([
        [Decoded(B, (300.0, 10.0)), Decoded(A, (20.0, 10.0))],
        [Decoded(A, (25.0, 10.0))],
        [],
    ])
    scanner = ListScanner(3, decoder)
    assert [s.payload for s in scanner.scans()] == [A, B]
    health = scanner.health()
    assert health["frames"] == 3 and health["frames_with_codes"] == 2
    assert health["detections"] == 3 and health["scans"] == 2
    assert health["state"] == "exhausted"
    with pytest.raises(ScannerExhaustedError):
        scanner.read(0)


def test_default_decoder_and_factory() -> None:
    assert DEFAULT_DECODER == "zxing"
    assert make_decoder("zbar").name == "zbar"
    assert make_decoder("zbar-default").name == "zbar-default"
    with pytest.raises(ScannerConfigError):
        make_decoder("tesseract")


def test_frames_uri_options(tmp_path: Path) -> None:
    scanner = FramesScanner.from_uri(f"{tmp_path}?decoder=zbar&k=5&t=0.5")
    assert scanner.decoder.name == "zbar"
    assert (scanner.dedupe.k_frames, scanner.dedupe.t_seconds) == (5, 0.5)
    assert list(scanner.scans()) == []          # empty folder: exhausted at once
    for uri in [f"{tmp_path}?decoder=opencv", f"{tmp_path}?k=0", f"{tmp_path}?zoom=2"]:
        with pytest.raises(ScannerConfigError):
            FramesScanner.from_uri(uri)

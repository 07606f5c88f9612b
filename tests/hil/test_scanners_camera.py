"""Camera frames carrying QR codes through the real zbar (binary mode) and zxing-cpp."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from drivers.scanners.camera import DEFAULT_DECODER, FramesScanner
from drivers.scanners.decoders import ZbarDecoder, make_decoder
from drivers.uri import open_scanner
from firmware_sim.frames import (
    CodeParams,
    FrameParams,
    Manifest,
    render_frame,
    write_sequence,
)
from tests.hil.scanner_fixtures import MANGLED_BY_DEFAULT, frame_corpus, viet_payloads

__all__ = ["frame_corpus", "viet_payloads"]

DECODERS = ["zxing", "zbar"]


@pytest.mark.parametrize("decoder", DECODERS)
def test_vietnamese_payload_byte_exact(decoder: str, viet_payloads: list[bytes]) -> None:
    dec = make_decoder(decoder)
    for i, payload in enumerate([*viet_payloads, MANGLED_BY_DEFAULT]):
        frame = render_frame(FrameParams(codes=(CodeParams(payload, module_px=4,
                                                           angle_deg=12.0 * i),),
                                         noise_sigma=4, seed=i))
        assert [d.payload for d in dec.decode(frame)] == [payload]


def test_zbar_default_mode_mangles_what_binary_mode_keeps() -> None:
    frame = render_frame(FrameParams(codes=(CodeParams(MANGLED_BY_DEFAULT),)))
    binary = ZbarDecoder(binary=True).decode(frame)
    guessed = ZbarDecoder(binary=False).decode(frame)
    assert [d.payload for d in binary] == [MANGLED_BY_DEFAULT]
    assert len(guessed) == 1 and guessed[0].payload != MANGLED_BY_DEFAULT
    assert "ﾃ" in guessed[0].payload.decode("utf-8", errors="replace")  # Shift-JIS katakana


@pytest.mark.parametrize("decoder", DECODERS)
def test_sequence_dedupe_two_codes_and_empty_frames(tmp_path: Path, decoder: str,
                                                    viet_payloads: list[bytes]) -> None:
    a, b = viet_payloads[:2]
    write_sequence(tmp_path, [[a], [a], [a], [], [], [], [a, b], [b], [b], []], seed=3)
    with open_scanner(f"frames:{tmp_path}?decoder={decoder}&k=3") as scanner:
        scans = list(scanner.scans())
        health = scanner.health()
    assert [s.payload for s in scans] == [a, a, b]
    assert health["frames"] == 10 and health["frames_with_codes"] == 6
    assert health["decoder"] == decoder and health["state"] == "exhausted"
    assert scans[0].source == f"frames:{tmp_path}#{decoder}"


def test_frame_with_no_code_yields_nothing(tmp_path: Path) -> None:
    write_sequence(tmp_path, [[], []])
    for decoder in DECODERS:
        with FramesScanner(tmp_path, decoder) as scanner:
            assert list(scanner.scans()) == []


@pytest.mark.parametrize("decoder", DECODERS)
def test_generated_corpus_exact_or_nothing(decoder: str,
                                           frame_corpus: tuple[Path, Manifest]) -> None:
    folder, manifest = frame_corpus
    dec = make_decoder(decoder)
    expected = found = 0
    for entry in manifest.frames:
        image = cv2.imread(str(folder / entry["file"]), cv2.IMREAD_GRAYSCALE)
        assert image is not None
        want = {bytes.fromhex(h) for h in entry["payloads_hex"]}
        got = [d.payload for d in dec.decode(image)]
        assert set(got) <= want, f"{entry['file']}: mangled or phantom payload"
        expected += len(want)
        found += len(set(got))
    assert expected >= 25
    rate = found / expected
    assert rate >= (0.8 if decoder == "zxing" else 0.5), rate


def test_default_decoder_is_the_benchmark_winner() -> None:
    assert DEFAULT_DECODER == "zxing"


def test_camera_scanner_on_a_video_file(tmp_path: Path, viet_payloads: list[bytes]) -> None:
    """CameraScanner's VideoCapture path, fed by an MJPEG file instead of a device."""
    a, b = viet_payloads[4:6]
    plan = [[a]] * 4 + [[]] * 4 + [[b]] * 3 + [[]] * 3
    paths = write_sequence(tmp_path / "png", plan, seed=5)
    video = tmp_path / "gate.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (640, 480),
                             False)
    assert writer.isOpened()
    for path in paths:
        writer.write(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    writer.release()
    scanner = open_scanner(f"camera:{video}?decoder=zxing&k=3&t=5")
    try:
        scans = [scanner.read(timeout=5), scanner.read(timeout=5)]
        health = scanner.health()
    finally:
        scanner.close()
    assert [s.payload if s else None for s in scans] == [a, b]
    assert health["driver"] == "camera" and health["frames"] >= 9


def test_camera_that_does_not_exist_is_unavailable() -> None:
    from drivers.code_scanner import ScannerUnavailableError

    with pytest.raises(ScannerUnavailableError):
        open_scanner("camera:/nonexistent/video0")

"""Camera scanners: frames from a camera (or a folder of images) decoded into scans.

URIs:

- ``camera:0`` (OpenCV device index), ``camera:/dev/video0``, ``camera:rtsp://...`` through
  ``cv2.VideoCapture``; ``camera:picamera2`` through picamera2 (Raspberry Pi camera stack), when
  it is importable;
- ``frames:DIR``: the images of a folder (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.pgm``) in
  name order, one frame each; the scanner is exhausted after the last one.

Options (``?key=value&...``): ``decoder`` = ``zxing`` (default, see ``bench/qr_decode.py``) or
``zbar`` (zbar in binary mode); ``k`` (frames, default 3) and ``t`` (seconds, default 1.0) of
absence after which a code that left the view counts again; camera only: ``width``,
``height``, ``fps`` requested from the device; frames only: ``fps`` to replay at that rate
(default 0: as fast as decoded).

A code that stays in view over many frames is one scan; it scans again only after it has been
out of view for ``k`` consecutive frames or ``t`` seconds, whichever comes first
(:class:`Dedupe`). Two different codes in one frame are two scans (in reading order, left to
right); the same payload twice in one frame is one. A frame without a code yields nothing.
"""

from __future__ import annotations

import abc
import importlib
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.code_scanner import (
    CodeScanner,
    Scan,
    ScannerClosedError,
    ScannerConfigError,
    ScannerExhaustedError,
    ScannerUnavailableError,
    utc_now,
)
from drivers.scanners.decoders import DECODERS, Decoded, QrDecoder, make_decoder
from drivers.scanners.options import float_value, int_value, reject_unknown, split_uri

#: Chosen by ``bench/qr_decode.py``: zxing-cpp decodes more of the corpus and is ~7x faster.
DEFAULT_DECODER = "zxing"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff")


@dataclass
class _Seen:
    last_frame: int
    last_time: float


class Dedupe:
    """Turns per-frame detections into scans: one scan per appearance of a payload.

    A payload is *in view* from the frame it is first decoded in until it has been missing for
    ``k_frames`` consecutive frames or ``t_seconds`` (whichever comes first); only its first
    frame in view produces a scan. Missing a frame or two (motion blur) does not re-scan.
    """

    def __init__(self, k_frames: int = 3, t_seconds: float = 1.0) -> None:
        if k_frames < 1 or t_seconds <= 0:
            raise ScannerConfigError("dedupe needs k >= 1 frames and t > 0 seconds")
        self.k_frames = k_frames
        self.t_seconds = t_seconds
        self._frame = -1
        self._in_view: dict[bytes, _Seen] = {}

    @property
    def in_view(self) -> set[bytes]:
        """Payloads currently counted as in view."""
        return set(self._in_view)

    def update(self, payloads: list[bytes], now: float) -> list[bytes]:
        """Feed the payloads decoded in the next frame (taken at ``now``, monotonic seconds);
        return those that are new scans, in the given order, without repeats."""
        self._frame += 1
        for payload, seen in list(self._in_view.items()):
            present = payload in payloads
            absent_frames = self._frame - seen.last_frame - (1 if present else 0)
            if absent_frames >= self.k_frames or (
                not present and now - seen.last_time >= self.t_seconds
            ):
                del self._in_view[payload]
        new = []
        for payload in payloads:
            if payload not in self._in_view:
                new.append(payload)
            self._in_view[payload] = _Seen(self._frame, now)
        return new


class FrameScanner(CodeScanner):
    """Shared loop of the camera scanners: grab a frame, decode it, dedupe, queue scans."""

    kind = "frames"

    def __init__(self, decoder: QrDecoder | str = DEFAULT_DECODER, *, k_frames: int = 3,
                 t_seconds: float = 1.0) -> None:
        self.decoder = make_decoder(decoder) if isinstance(decoder, str) else decoder
        self.dedupe = Dedupe(k_frames, t_seconds)
        self._pending: deque[Scan] = deque()
        self._closed = False
        self._exhausted = False
        self._state = "ok"
        self.frames = 0
        self.frames_with_codes = 0
        self.detections = 0
        self.scans_out = 0
        self.grab_failures = 0
        self._decode_ms: deque[float] = deque(maxlen=100)
        self._last_error: str | None = None

    @abc.abstractmethod
    def grab(self) -> npt.NDArray[np.uint8] | None:
        """The next frame, or None when none is ready yet; raises
        :class:`ScannerExhaustedError` at the end of a finite source."""

    def _source_close(self) -> None:
        """Release the frame source."""

    def process(self, frame: npt.NDArray[Any], now: float | None = None) -> list[Scan]:
        """Decode one frame and return the scans it starts (also used by replays and tests)."""
        started = time.perf_counter()
        found: list[Decoded] = self.decoder.decode(frame)
        self._decode_ms.append((time.perf_counter() - started) * 1000)
        self.frames += 1
        if found:
            self.frames_with_codes += 1
            self.detections += len(found)
        found.sort(key=lambda d: (d.center or (0.0, 0.0))[0])
        payloads = list(dict.fromkeys(d.payload for d in found))
        stamp = time.monotonic() if now is None else now
        at = utc_now()
        scans = [Scan(p, self.source, at) for p in self.dedupe.update(payloads, stamp)]
        self.scans_out += len(scans)
        return scans

    def read(self, timeout: float | None = None) -> Scan | None:
        """The next scan within ``timeout`` seconds (None: wait), or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise ScannerClosedError(f"{self.source} is closed")
            if self._pending:
                return self._pending.popleft()
            if self._exhausted:
                raise ScannerExhaustedError(f"{self.source}: no more frames")
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                frame = self.grab()
            except ScannerExhaustedError:
                self._exhausted = True
                self._state = "exhausted"
                continue
            if frame is None:
                time.sleep(0.005)
                continue
            self._pending.extend(self.process(frame))

    def close(self) -> None:
        """Release the source and the decoder."""
        if not self._closed:
            self._closed = True
            self._state = "closed"
            self._source_close()
            self.decoder.close()

    def health(self) -> dict[str, Any]:
        """State, frame and detection counters, decode time, the last error."""
        times = sorted(self._decode_ms)
        return {
            "driver": self.kind,
            "source": self.source,
            "state": self._state,
            "decoder": self.decoder.name,
            "frames": self.frames,
            "frames_with_codes": self.frames_with_codes,
            "detections": self.detections,
            "scans": self.scans_out,
            "in_view": len(self.dedupe.in_view),
            "grab_failures": self.grab_failures,
            "decode_ms_median": times[len(times) // 2] if times else None,
            "last_error": self._last_error,
        }


def _common_options(options: dict[str, str]) -> dict[str, Any]:
    decoder = options.get("decoder", DEFAULT_DECODER)
    if decoder not in DECODERS:
        raise ScannerConfigError(f"decoder {decoder!r}: expected one of {', '.join(DECODERS)}")
    return {
        "decoder": decoder,
        "k_frames": int_value(options.get("k", "3"), "k", 1),
        "t_seconds": float_value(options.get("t", "1.0"), "t", 0.001),
    }


class FramesScanner(FrameScanner):
    """A folder of images replayed as camera frames, in name order (URI ``frames:DIR``)."""

    kind = "frames"

    def __init__(self, folder: str | Path, decoder: QrDecoder | str = DEFAULT_DECODER, *,
                 k_frames: int = 3, t_seconds: float = 1.0, fps: float = 0.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ScannerUnavailableError(f"frames folder {self.folder} does not exist")
        self.files = sorted(p for p in self.folder.iterdir()
                            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        self.fps = fps
        self._index = 0
        self._next_at = 0.0
        super().__init__(decoder, k_frames=k_frames, t_seconds=t_seconds)
        self.source = f"frames:{self.folder}#{self.decoder.name}"

    @classmethod
    def from_uri(cls, rest: str) -> FramesScanner:
        """``DIR?decoder=zxing|zbar&k=3&t=1.0&fps=0``."""
        folder, options = split_uri(rest)
        reject_unknown(options, {"decoder", "k", "t", "fps"}, "frames")
        if not folder:
            raise ScannerConfigError("frames: needs a folder (frames:DIR)")
        return cls(folder, fps=float_value(options.get("fps", "0"), "fps"),
                   **_common_options(options))

    def grab(self) -> npt.NDArray[np.uint8] | None:
        """The next image of the folder (grey)."""
        import cv2  # noqa: PLC0415 - OpenCV only when frames are read

        if self._index >= len(self.files):
            raise ScannerExhaustedError(f"{self.source}: no more frames")
        if self.fps > 0:
            now = time.monotonic()
            if now < self._next_at:
                return None
            self._next_at = max(now, self._next_at) + 1.0 / self.fps
        path = self.files[self._index]
        self._index += 1
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            self.grab_failures += 1
            self._last_error = f"unreadable image {path.name}"
            return None
        return np.asarray(image, dtype=np.uint8)

    def health(self) -> dict[str, Any]:
        """See :meth:`FrameScanner.health`; adds the position in the folder."""
        return {**super().health(), "files": len(self.files), "position": self._index}


class CameraScanner(FrameScanner):
    """A live camera through OpenCV ``VideoCapture``, or picamera2 (``camera:picamera2``).

    A camera that stops giving frames (unplugged USB camera) is reopened every second while
    :meth:`read` is called; :meth:`health` reports ``disconnected`` meanwhile.
    """

    kind = "camera"

    def __init__(self, device: str, decoder: QrDecoder | str = DEFAULT_DECODER, *,
                 k_frames: int = 3, t_seconds: float = 1.0, width: int | None = None,
                 height: int | None = None, fps: float | None = None) -> None:
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self._cap: Any = None
        self._picam: Any = None
        self._failures_in_row = 0
        self._next_reopen = 0.0
        self.reconnects = 0
        super().__init__(decoder, k_frames=k_frames, t_seconds=t_seconds)
        self.source = f"camera:{device}#{self.decoder.name}"
        try:
            self._open()
        except ScannerUnavailableError:
            self.decoder.close()
            raise

    @classmethod
    def from_uri(cls, rest: str) -> CameraScanner:
        """``INDEX|PATH|URL|picamera2?decoder=..&k=..&t=..&width=..&height=..&fps=..``."""
        device, options = split_uri(rest)
        reject_unknown(options, {"decoder", "k", "t", "width", "height", "fps"}, "camera")
        if not device:
            raise ScannerConfigError("camera: needs a device (camera:0, camera:picamera2)")
        width = int_value(options["width"], "width", 1) if "width" in options else None
        height = int_value(options["height"], "height", 1) if "height" in options else None
        fps = float_value(options["fps"], "fps", 0.1) if "fps" in options else None
        return cls(device, width=width, height=height, fps=fps, **_common_options(options))

    def _open(self) -> None:
        if self.device == "picamera2":
            self._open_picamera2()
            return
        import cv2  # noqa: PLC0415 - OpenCV only when a camera is opened

        target: int | str = int(self.device) if self.device.isdigit() else self.device
        cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise ScannerUnavailableError(f"cannot open camera {self.device}")
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap
        self._state = "ok"

    def _open_picamera2(self) -> None:
        try:
            picamera2 = importlib.import_module("picamera2")  # Raspberry Pi only
        except ImportError as exc:
            raise ScannerUnavailableError(f"picamera2 is not importable: {exc}") from exc
        try:
            cam = picamera2.Picamera2()
            size = (self.width or 1280, self.height or 720)
            cam.configure(cam.create_video_configuration(main={"size": size, "format": "YUV420"}))
            cam.start()
        except Exception as exc:  # picamera2 raises assorted runtime errors
            raise ScannerUnavailableError(f"cannot start picamera2: {exc}") from exc
        self._picam = cam
        self._state = "ok"

    def grab(self) -> npt.NDArray[np.uint8] | None:
        """The next frame; after repeated failures the camera is closed and reopened."""
        if self._cap is None and self._picam is None:
            if time.monotonic() < self._next_reopen:
                return None
            try:
                self._open()
                self.reconnects += 1
            except ScannerUnavailableError as exc:
                self._last_error = str(exc)
                self._next_reopen = time.monotonic() + 1.0
                return None
        frame: Any
        if self._picam is not None:
            try:
                yuv = self._picam.capture_array("main")
            except Exception as exc:  # picamera2 raises assorted runtime errors
                self._failed(str(exc))
                return None
            frame = yuv[: self.height or 720]  # the Y plane of YUV420 is the grey image
        else:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                self._failed("camera returned no frame")
                return None
        self._failures_in_row = 0
        out: npt.NDArray[np.uint8] = frame
        return out

    def _failed(self, reason: str) -> None:
        self.grab_failures += 1
        self._failures_in_row += 1
        self._last_error = reason
        if self._failures_in_row >= 10:
            self._source_close()
            self._state = "disconnected"
            self._next_reopen = time.monotonic() + 1.0

    def _source_close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._picam is not None:
            try:
                self._picam.stop()
                self._picam.close()
            except Exception:  # noqa: S110 - best effort on shutdown
                pass
            self._picam = None

    def health(self) -> dict[str, Any]:
        """See :meth:`FrameScanner.health`; adds reconnects."""
        return {**super().health(), "device": self.device, "reconnects": self.reconnects}

"""QR decoders for camera frames, behind one small interface: raw payload bytes out.

- :class:`ZxingDecoder`: zxing-cpp; the payload is the result's ``.bytes`` (the bytes of the
  symbol, before any character-set interpretation).
- :class:`ZbarDecoder`: zbar through pyzbar's ctypes wrapper, with ``ZBAR_CFG_BINARY`` set on
  the QR symbology (``binary=True``, the default), so zbar hands over the bytes instead of
  guessing a character set. zbar's guess (``binary=False``, kept for the benchmark) turns many
  UTF-8 Vietnamese payloads into Shift-JIS text re-encoded as UTF-8: "Lý" comes out "Lﾃｽ".

Both take a grey ``uint8`` image (height x width); a colour image is converted first.
:func:`make_decoder` builds one by name (``zxing``, ``zbar``, ``zbar-default``).
"""

from __future__ import annotations

import abc
import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from drivers.code_scanner import ScannerConfigError, ScannerUnavailableError

GreyImage = npt.NDArray[np.uint8]

# zbar.h (0.23+): enum zbar_config_e { ENABLE, ADD_CHECK, EMIT_CHECK, ASCII, BINARY, NUM, ... }.
# pyzbar 0.1.9's ZBarConfig predates ZBAR_CFG_BINARY (its CFG_NUM = 4 is the old numbering).
ZBAR_CFG_ENABLE = 0
ZBAR_CFG_BINARY = 4
ZBAR_QRCODE = 64
_FOURCC_Y800 = 0x30303859  # 'Y800': 8-bit grey


@dataclass(frozen=True, slots=True)
class Decoded:
    """One code found in a frame: its payload bytes and the centre of its outline (pixels)."""

    payload: bytes
    center: tuple[float, float] | None = None


def to_grey(image: npt.NDArray[Any]) -> GreyImage:
    """A contiguous 8-bit grey image from grey, BGR or BGRA input."""
    if image.ndim == 3:
        import cv2  # noqa: PLC0415 - only for colour frames

        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = image.astype(np.uint8)
    grey: GreyImage = np.ascontiguousarray(image)
    return grey


class QrDecoder(abc.ABC):
    """Finds QR codes in a frame and returns their raw payloads."""

    name: str = "decoder"

    @abc.abstractmethod
    def decode(self, image: npt.NDArray[Any]) -> list[Decoded]:
        """Every readable QR code in ``image``, in no particular order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources (optional)."""


class ZxingDecoder(QrDecoder):
    """zxing-cpp (``zxingcpp.read_barcodes``), QR and Micro QR only, payload from ``.bytes``."""

    name = "zxing"

    def __init__(self) -> None:
        try:
            import zxingcpp  # noqa: PLC0415 - optional native dependency
        except ImportError as exc:
            raise ScannerUnavailableError(f"zxing-cpp is not installed: {exc}") from exc
        self._zx = zxingcpp
        self._formats = zxingcpp.BarcodeFormats(
            [zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode])

    def decode(self, image: npt.NDArray[Any]) -> list[Decoded]:
        """See :meth:`QrDecoder.decode`."""
        results = self._zx.read_barcodes(to_grey(image), formats=self._formats)
        found = []
        for barcode in results:
            if not barcode.valid:
                continue
            pos = barcode.position
            points = [pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left]
            center = (sum(p.x for p in points) / 4, sum(p.y for p in points) / 4)
            found.append(Decoded(bytes(barcode.bytes), center))
        return found


class ZbarDecoder(QrDecoder):
    """zbar through pyzbar's ctypes wrapper, QR only, binary mode unless ``binary=False``.

    pyzbar's own ``decode()`` creates a scanner per call and offers no way to set
    ``ZBAR_CFG_BINARY``; this keeps one ``zbar_image_scanner`` configured once and drives it
    with the same wrapper functions.
    """

    def __init__(self, binary: bool = True) -> None:
        try:
            from pyzbar import wrapper  # noqa: PLC0415 - optional native dependency
        except (ImportError, OSError) as exc:  # OSError: libzbar0 missing
            raise ScannerUnavailableError(f"pyzbar / libzbar is not available: {exc}") from exc
        self._w = wrapper
        self.binary = binary
        self.name = "zbar" if binary else "zbar-default"
        self._scanner = wrapper.zbar_image_scanner_create()
        if not self._scanner:
            raise ScannerUnavailableError("zbar_image_scanner_create failed")
        # Only QR: disable every symbology (symbology 0 = all), then enable QR.
        wrapper.zbar_image_scanner_set_config(self._scanner, 0, ZBAR_CFG_ENABLE, 0)
        wrapper.zbar_image_scanner_set_config(self._scanner, ZBAR_QRCODE, ZBAR_CFG_ENABLE, 1)
        if binary:
            status = wrapper.zbar_image_scanner_set_config(
                self._scanner, ZBAR_QRCODE, ZBAR_CFG_BINARY, 1)
            if status != 0:
                self.close()
                raise ScannerUnavailableError(
                    "this libzbar does not support ZBAR_CFG_BINARY (zbar 0.23 or later needed)")

    def decode(self, image: npt.NDArray[Any]) -> list[Decoded]:
        """See :meth:`QrDecoder.decode`."""
        if not self._scanner:
            raise ScannerUnavailableError("zbar decoder is closed")
        w = self._w
        grey = to_grey(image)
        height, width = grey.shape
        pixels = grey.tobytes()
        zimage = w.zbar_image_create()
        if not zimage:
            raise ScannerUnavailableError("zbar_image_create failed")
        try:
            w.zbar_image_set_format(zimage, _FOURCC_Y800)
            w.zbar_image_set_size(zimage, width, height)
            buffer = ctypes.c_char_p(pixels)  # keeps a reference, no copy
            w.zbar_image_set_data(zimage, ctypes.cast(buffer, ctypes.c_void_p), len(pixels), None)
            if w.zbar_scan_image(self._scanner, zimage) < 0:
                raise ScannerUnavailableError("zbar rejected the image format")
            found = []
            symbol = w.zbar_image_first_symbol(zimage)
            while symbol:
                data = ctypes.string_at(w.zbar_symbol_get_data(symbol),
                                        w.zbar_symbol_get_data_length(symbol))
                n = w.zbar_symbol_get_loc_size(symbol)
                center = None
                if n:
                    xs = [w.zbar_symbol_get_loc_x(symbol, i) for i in range(n)]
                    ys = [w.zbar_symbol_get_loc_y(symbol, i) for i in range(n)]
                    center = (sum(xs) / n, sum(ys) / n)
                found.append(Decoded(bytes(data), center))
                symbol = w.zbar_symbol_next(symbol)
            return found
        finally:
            w.zbar_image_destroy(zimage)

    def close(self) -> None:
        """Destroy the zbar scanner."""
        if self._scanner:
            self._w.zbar_image_scanner_destroy(self._scanner)
            self._scanner = None

    def __del__(self) -> None:
        self.close()


DECODERS = ("zxing", "zbar", "zbar-default")


def make_decoder(name: str) -> QrDecoder:
    """``zxing`` (zxing-cpp), ``zbar`` (zbar, binary mode) or ``zbar-default`` (zbar's
    character-set guess; for comparisons only, it mangles UTF-8)."""
    if name == "zxing":
        return ZxingDecoder()
    if name == "zbar":
        return ZbarDecoder(binary=True)
    if name == "zbar-default":
        return ZbarDecoder(binary=False)
    raise ScannerConfigError(f"unknown decoder {name!r} (expected one of {', '.join(DECODERS)})")

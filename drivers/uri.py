"""Reader and scanner URIs that a site's configuration names (DESIGN.md §2.2).

Card readers: ``sim:CARD_DIR`` (in-process simulator), ``pcsc`` / ``pcsc:NAME`` (PC/SC through
pyscard; NAME matches a reader name or its prefix), ``nfc:usb``, ``nfc:tty:DEVICE:pn532``,
``nfc:udp:HOST:PORT`` (nfcpy device paths).

Code scanners: ``serial:/dev/ttyACM0?baud=9600&terminator=cr``, ``evdev:/dev/input/eventN``,
``camera:0`` (OpenCV device index), ``frames:DIR`` (a folder of images, for tests and replays).

Each driver module is imported only when a URI names it, so a site without a given stack
installed still starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivers.card_reader import CardReader, ReaderUnavailableError

if TYPE_CHECKING:
    from drivers.code_scanner import CodeScanner


class UriError(ValueError):
    """A reader or scanner URI that names no known driver or is malformed."""


def open_reader(uri: str) -> CardReader:
    """Open the card reader a URI names."""
    scheme, _, rest = uri.partition(":")
    if scheme == "sim":
        if not rest:
            raise UriError("sim: needs a card directory (sim:CARD_DIR)")
        from drivers.sim import SimCardReader

        try:
            return SimCardReader(rest)
        except (OSError, ValueError) as exc:
            raise ReaderUnavailableError(f"cannot load simulated card {rest}: {exc}") from exc
    if scheme == "pcsc":
        from drivers.pcsc import PcscReader

        return PcscReader(rest or None)
    if scheme == "nfc":
        if not rest:
            raise UriError("nfc: needs a device path (nfc:usb, nfc:tty:DEV:pn532, nfc:udp:H:P)")
        from drivers.nfc import NfcReader

        return NfcReader(rest)
    raise UriError(f"unknown reader URI {uri!r} (expected sim:DIR, pcsc[:NAME] or nfc:...)")


def open_scanner(uri: str) -> CodeScanner:
    """Open the code scanner a URI names."""
    scheme, _, rest = uri.partition(":")
    if not rest:
        raise UriError(f"scanner URI {uri!r} needs a device after '{scheme}:'")
    if scheme == "serial":
        from drivers.scanners.serial_scanner import SerialScanner

        return SerialScanner.from_uri(rest)
    if scheme == "evdev":
        from drivers.scanners.evdev_scanner import EvdevScanner

        return EvdevScanner.from_uri(rest)
    if scheme == "camera":
        from drivers.scanners.camera import CameraScanner

        return CameraScanner.from_uri(rest)
    if scheme == "frames":
        from drivers.scanners.camera import FramesScanner

        return FramesScanner.from_uri(rest)
    raise UriError(f"unknown scanner URI {uri!r} (expected serial:, evdev:, camera: or frames:)")

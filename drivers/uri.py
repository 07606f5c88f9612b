"""Reader and scanner URIs that a site's configuration names (docs/design.md §2.2).

Card readers: ``pcsc`` / ``pcsc:NAME`` (PC/SC through pyscard; NAME matches a reader name or its
prefix), ``nfc:usb``, ``nfc:tty:DEVICE:pn532``, ``nfc:udp:HOST:PORT`` (nfcpy device paths). Any
other scheme is provided by an installed package through the entry-point group
``cccd_checkin.card_readers`` (:data:`READER_ENTRY_POINTS`): the entry point's name is the scheme
and its object is called with the rest of the URI and returns a :class:`CardReader`. The
simulator registers ``sim:CARD_DIR`` (the in-process simulated card) this way, so drivers never
import the simulator (docs/design.md §2).

Code scanners: ``serial:/dev/ttyACM0?baud=9600&terminator=cr``, ``evdev:/dev/input/eventN``,
``camera:0`` (OpenCV device index), ``frames:DIR`` (a folder of images, for tests and replays).

Each driver module is imported only when a URI names it, so a site without a given stack
installed still starts.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from drivers.card_reader import CardReader, ReaderUnavailableError

if TYPE_CHECKING:
    from drivers.code_scanner import CodeScanner


READER_ENTRY_POINTS = "cccd_checkin.card_readers"
BUILT_IN_READERS = ("pcsc", "nfc")


class UriError(ValueError):
    """A reader or scanner URI that names no known driver or is malformed."""


def open_reader(uri: str) -> CardReader:
    """Open the card reader a URI names (a built-in scheme, else a registered one)."""
    scheme, _, rest = uri.partition(":")
    if scheme == "pcsc":
        from drivers.pcsc import PcscReader

        return PcscReader(rest or None)
    if scheme == "nfc":
        if not rest:
            raise UriError("nfc: needs a device path (nfc:usb, nfc:tty:DEV:pn532, nfc:udp:H:P)")
        from drivers.nfc import NfcReader

        return NfcReader(rest)
    return _registered_reader(uri, scheme, rest)


def _registered_reader(uri: str, scheme: str, rest: str) -> CardReader:
    """A reader whose scheme an installed package registers in :data:`READER_ENTRY_POINTS`."""
    found = list(entry_points(group=READER_ENTRY_POINTS, name=scheme)) if scheme else []
    if not found:
        registered = sorted({ep.name for ep in entry_points(group=READER_ENTRY_POINTS)}
                            - set(BUILT_IN_READERS))
        known = ", ".join([*BUILT_IN_READERS, *registered])
        raise UriError(f"unknown reader URI {uri!r}: no installed package provides the reader "
                       f"scheme {scheme!r} (entry-point group {READER_ENTRY_POINTS}; "
                       f"known schemes: {known})")
    if len(found) > 1:
        values = ", ".join(sorted(ep.value for ep in found))
        raise UriError(f"reader scheme {scheme!r} is provided more than once ({values})")
    try:
        factory = found[0].load()
    except (ImportError, AttributeError) as exc:
        raise ReaderUnavailableError(
            f"reader scheme {scheme!r}: cannot load {found[0].value}: {exc}") from exc
    reader = factory(rest)
    if not isinstance(reader, CardReader):
        raise ReaderUnavailableError(
            f"reader scheme {scheme!r}: {found[0].value} returned {type(reader).__name__}, "
            "not a CardReader")
    return reader


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

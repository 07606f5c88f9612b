"""Reader and scanner URIs that a site's configuration names (DESIGN.md §2.2).

Card readers: ``sim:CARD_DIR`` (in-process simulator), ``pcsc`` / ``pcsc:NAME`` (PC/SC through
pyscard), ``nfc:usb``, ``nfc:tty:DEVICE:pn532``, ``nfc:udp:HOST:PORT`` (nfcpy).
"""

from __future__ import annotations

from drivers.card_reader import CardReader, ReaderUnavailableError


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
    raise UriError(f"unknown reader URI {uri!r} (expected sim:DIR, pcsc[:NAME] or nfc:...)")

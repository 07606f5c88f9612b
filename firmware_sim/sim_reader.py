"""The in-process simulated reader behind ``CardReader`` (reader URI ``sim:CARD_DIR``).

It lives with the simulated chip, on the simulator side: ``drivers`` never imports
``firmware_sim``. The ``sim`` scheme reaches :func:`drivers.uri.open_reader` through the entry
point ``sim`` of the group ``cccd_checkin.card_readers`` declared in pyproject.toml
(:func:`open_uri`). The reader only moves bytes to the chip, like a real one would. With
``realtime`` it sleeps the chip's modelled time after each exchange, so a read takes as long as
it would on a real contactless link; ``card_cpu_s`` accumulates the CPU the simulated card itself
used, so benchmarks can report the reader side alone.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from drivers.card_reader import (
    CardEvent,
    CardLostError,
    CardPresence,
    CardReader,
    NoCardError,
    PresenceListener,
    ReaderUnavailableError,
)
from drivers.uri import UriError
from firmware_sim.card import TagLost, load_card
from firmware_sim.card.errors import PersonalisationError


class SimCardReader(CardReader):
    """A reader with one simulated card that is in the field unless it was just lost."""

    def __init__(self, card_dir: str | Path, *, timing: Any = None, faults: Any = None,
                 realtime: bool = True, chip: Any = None) -> None:
        self.card_dir = Path(card_dir)
        self.name = f"sim:{self.card_dir}"
        self.chip = chip if chip is not None else load_card(self.card_dir, faults=faults,
                                                            timing=timing)
        self.realtime = realtime
        self.card_cpu_s = 0.0
        self.card_time_s = 0.0
        self._present = threading.Event()
        self._present.set()
        self._powered = False
        self._listeners: list[PresenceListener] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: PresenceListener) -> None:
        self._listeners.append(listener)

    def _notify(self, event: CardEvent) -> None:
        for listener in self._listeners:
            listener(event, self.name)

    @property
    def present(self) -> bool:
        return self._present.is_set()

    def present_card(self) -> None:
        """Put the card (back) into the field."""
        if not self.present:
            self._present.set()
            self._notify(CardEvent.INSERTED)

    def remove_card(self) -> None:
        """Take the card out of the field."""
        if self.present:
            with self._lock:
                self._present.clear()
                self._powered = False
                self.chip.power_off()
            self._notify(CardEvent.REMOVED)

    def connect(self, timeout: float | None = None) -> CardPresence:
        # A tag lost by a fault stays in the field (a hand that wobbled); a removed card is
        # waited for until ``timeout``.
        if not self._present.wait(timeout):
            raise NoCardError("no card in the field")
        with self._lock:
            atr: bytes = self.chip.power_on()
            self._powered = True
            return CardPresence(atr=atr, reader_name=self.name)

    def transmit(self, apdu: bytes) -> bytes:
        with self._lock:
            if not self._powered:
                raise CardLostError("card not powered")
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                response: bytes = self.chip.process(apdu)
            except TagLost as exc:
                self._powered = False
                self.card_cpu_s += time.process_time() - cpu
                raise CardLostError(f"tag lost: {exc}") from None
            self.card_cpu_s += time.process_time() - cpu
            delay = float(self.chip.last_delay_s)
            self.card_time_s += delay
            # The modelled time includes the card's own computing: sleep only the remainder.
            remaining = delay - (time.perf_counter() - wall)
        if self.realtime and remaining > 0:
            time.sleep(remaining)
        return response

    def disconnect(self) -> None:
        with self._lock:
            if self._powered:
                self.chip.power_off()
            self._powered = False


def open_uri(card_dir: str) -> SimCardReader:
    """The ``sim`` reader scheme (entry point of ``cccd_checkin.card_readers``): ``sim:CARD_DIR``.

    Raises :class:`~drivers.uri.UriError` without a directory and
    :class:`~drivers.card_reader.ReaderUnavailableError` when the card cannot be loaded.
    """
    if not card_dir:
        raise UriError("sim: needs a card directory (sim:CARD_DIR)")
    try:
        return SimCardReader(card_dir)
    except (PersonalisationError, OSError, ValueError) as exc:
        raise ReaderUnavailableError(f"cannot load simulated card {card_dir}: {exc}") from exc


"""Presentations at one device as a pure state machine: scans, taps and CANs in, actions out.

Sans-IO (after h11): no threads, no clock, no drivers. The agent feeds what its reader and
scanner threads saw (:meth:`Presentations.scanned`, :meth:`~Presentations.card_present`,
:meth:`~Presentations.card_removed`, :meth:`~Presentations.can_entered`,
:meth:`~Presentations.read_finished`, :meth:`~Presentations.tick`), each with the monotonic time
``now``; every call returns the :data:`Action` s to carry out, in order:

- :class:`DecideQr` — run the QR alone through the site's flow (QR assurance);
- :class:`ReadChip` — read the card lying on ``reader`` with the keys given (the QR's CAN and
  BAC keys, or the CAN typed on the kiosk pad), then call ``read_finished``;
- :class:`Prompt` — what the lane's kiosk shows while it waits (tap, CAN pad, idle).

Rules (docs/design.md §2.1 "Flows"; CAN and BAC keys from the card: docs/cccd.md §2):

1. A chip read is *expected* after a card QR only when the QR's lane has a reader and
   ``chip_after_qr`` is set. Otherwise the QR is decided at once — no waiting.
2. When expected, the QR arms the lane for ``tap_window_s``. A card already lying on one of the
   lane's readers (not read yet) is read at once with the QR's keys; a card tapped within the
   window is read; when the window closes, the QR is decided alone.
3. Tap first: a card on a reader of an idle lane waits for its keys. With ``can_pad`` the kiosk
   offers a 6-digit pad (the CAN: the last 6 digits of the ID number, docs/cccd.md §2); a CAN or
   a card QR then reads the card. A CAN may also be typed before the tap (armed like a QR; it
   expires silently: it is not a visit).
4. Consecutive visitors are never merged or dropped: a second card QR while the first is armed
   decides the first as QR-only, then arms the second; a QR scanned while a chip is being read
   waits in a one-place queue and is handled when the read finishes (a third QR decides the
   queued one as QR-only first). A QR that is not a card QR with keys (VNeID, junk) is always
   decided at once; it does not disturb an armed lane.
5. One read per presentation: a card that was read stays *consumed* until it leaves the field.
6. Lanes are independent. Each scanner and each reader belongs to exactly one lane (the
   configuration's ``[[lanes]]``; without it, one lane holds every reader and scanner).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from edge_agent.cccd import CccdError, QrFormat, QrIdentity, mask_id, parse_qr
from edge_agent.config import Direction

__all__ = [
    "Action", "DecideQr", "Lane", "PresentationError", "PresentationSettings", "Presentations",
    "Prompt", "PromptKind", "ReadChip", "card_qr_with_keys", "is_can",
]


class PresentationError(ValueError):
    """A lane layout the machine cannot serve (a device in two lanes, an unknown device)."""


class PromptKind(StrEnum):
    IDLE = "idle"
    """Nothing pending on the lane."""
    TAP = "tap"
    """A QR (or CAN) is armed: tap the card."""
    CAN = "can"
    """A card lies on the reader without keys: type the CAN or scan the QR."""
    BAD_CAN = "bad-can"
    """The pad's input was not 6 digits."""
    SCAN_FIRST = "scan-first"
    """A card without keys and no CAN pad: scan the card's QR code."""


@dataclass(frozen=True, slots=True)
class Lane:
    """One visitor queue: its readers and scanners, and the direction at a gate (None: the
    device's direction or the one chosen on the kiosk)."""

    name: str
    readers: tuple[str, ...] = ()
    scanners: tuple[str, ...] = ()
    direction: Direction | None = None


@dataclass(frozen=True, slots=True)
class PresentationSettings:
    tap_window_s: float = 4.0
    """How long a card QR waits for its chip (only when a chip read is expected)."""
    chip_after_qr: bool = True
    """Policy: read the chip after a card QR when the lane has a reader."""
    can_pad: bool = True
    """Offer the CAN pad when a card is tapped without keys."""

    def __post_init__(self) -> None:
        if not 0 < self.tap_window_s <= 120:
            raise PresentationError("tap_window_s must be within (0, 120]")


@dataclass(frozen=True, slots=True)
class DecideQr:
    lane: str
    payload: bytes | str


@dataclass(frozen=True, slots=True)
class ReadChip:
    """Read the card on ``reader``: with ``qr`` (its keys; ``payload`` the raw QR) or ``can``."""

    lane: str
    reader: str
    qr: QrIdentity | None = None
    payload: bytes | str | None = None
    can: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    lane: str
    kind: PromptKind
    masked_id: str | None = None


Action = DecideQr | ReadChip | Prompt
Classifier = Callable[[bytes | str], QrIdentity | None]


def card_qr_with_keys(payload: bytes | str) -> QrIdentity | None:
    """The card QR in ``payload`` when it carries chip keys (a CAN), else None (VNeID, junk,
    a personal QR): those are decided alone by the flow."""
    try:
        qr = parse_qr(payload)
    except CccdError:
        return None
    if qr.format is QrFormat.PERSONAL_QR or not qr.can:
        return None
    return qr


def is_can(text: str) -> bool:
    """Six ASCII digits (the CAN printed on the card: last 6 digits of the ID number)."""
    return len(text) == 6 and text.isascii() and text.isdigit()


@dataclass(slots=True)
class _Armed:
    at: float
    qr: QrIdentity | None = None
    payload: bytes | str | None = None
    can: str | None = None


@dataclass(slots=True)
class _LaneState:
    lane: Lane
    armed: _Armed | None = None
    reading: str | None = None
    """The reader whose chip is being read."""
    queued: bytes | str | None = None
    queued_qr: QrIdentity | None = None
    waiting_keys: str | None = None
    """A reader whose card lies there without keys (tap first)."""
    present: set[str] = field(default_factory=set)
    consumed: set[str] = field(default_factory=set)


class Presentations:
    """The presentation state of every lane of one device. Not thread-safe: the agent calls it
    under one lock and carries out the returned actions outside it."""

    def __init__(self, lanes: Sequence[Lane], settings: PresentationSettings | None = None,
                 *, classify: Classifier = card_qr_with_keys) -> None:
        self.settings = settings or PresentationSettings()
        self._classify = classify
        self._lanes: dict[str, _LaneState] = {}
        self._of_reader: dict[str, str] = {}
        self._of_scanner: dict[str, str] = {}
        for lane in lanes:
            if lane.name in self._lanes:
                raise PresentationError(f"lane {lane.name!r} is defined twice")
            self._lanes[lane.name] = _LaneState(lane)
            for reader in lane.readers:
                if reader in self._of_reader:
                    raise PresentationError(f"reader {reader!r} is in two lanes")
                self._of_reader[reader] = lane.name
            for scanner in lane.scanners:
                if scanner in self._of_scanner:
                    raise PresentationError(f"scanner {scanner!r} is in two lanes")
                self._of_scanner[scanner] = lane.name
        if not self._lanes:
            raise PresentationError("no lane")

    # -- queries ------------------------------------------------------------------------------

    @property
    def lanes(self) -> tuple[Lane, ...]:
        return tuple(state.lane for state in self._lanes.values())

    def lane_of_reader(self, reader: str) -> Lane:
        return self._state(self._of_reader, reader, "reader").lane

    def lane_of_scanner(self, scanner: str) -> Lane:
        return self._state(self._of_scanner, scanner, "scanner").lane

    def lane(self, name: str) -> Lane:
        if name not in self._lanes:
            raise PresentationError(f"no lane {name!r}")
        return self._lanes[name].lane

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`tick` has something to do (an armed QR or CAN expires)."""
        times = [s.armed.at + self.settings.tap_window_s for s in self._lanes.values()
                 if s.armed is not None]
        return min(times) if times else None

    def pending(self, lane: str) -> bool:
        """Whether anything is armed, queued, being read or waiting for keys on ``lane``."""
        s = self._lanes[lane]
        return bool(s.armed or s.reading or s.queued is not None or s.waiting_keys)

    # -- events -------------------------------------------------------------------------------

    def scanned(self, scanner: str, payload: bytes | str, now: float) -> list[Action]:
        """A code read by ``scanner``."""
        s = self._state(self._of_scanner, scanner, "scanner")
        return self._qr(s, payload, self._classify(payload), now)

    def card_present(self, reader: str, now: float) -> list[Action]:
        """A card entered the field of ``reader`` (the reader is connected to it)."""
        s = self._state(self._of_reader, reader, "reader")
        actions: list[Action] = []
        if reader in s.present:
            return actions
        s.present.add(reader)
        s.consumed.discard(reader)
        if s.reading is not None:
            return actions  # another reader of the lane is busy; this card waits its turn
        if s.armed is not None:
            return self._read_armed(s, reader)
        if s.waiting_keys is None:
            s.waiting_keys = reader
            kind = PromptKind.CAN if self.settings.can_pad else PromptKind.SCAN_FIRST
            actions.append(Prompt(s.lane.name, kind))
        return actions

    def card_removed(self, reader: str, now: float) -> list[Action]:
        """The card left ``reader`` (or the reader went away)."""
        s = self._state(self._of_reader, reader, "reader")
        s.present.discard(reader)
        s.consumed.discard(reader)
        actions: list[Action] = []
        if s.waiting_keys == reader:
            s.waiting_keys = self._unread(s)
            if s.waiting_keys is None and s.armed is None and s.reading is None:
                actions.append(Prompt(s.lane.name, PromptKind.IDLE))
        return actions

    def can_entered(self, lane: str, can: str, now: float) -> list[Action]:
        """Six digits typed on the lane's kiosk pad."""
        if lane not in self._lanes:
            raise PresentationError(f"no lane {lane!r}")
        s = self._lanes[lane]
        if not is_can(can):
            return [Prompt(lane, PromptKind.BAD_CAN)]
        if s.reading is not None:
            return []  # a read is running; the pad is not shown then
        if s.waiting_keys is not None:
            reader, s.waiting_keys = s.waiting_keys, None
            return self._start_read(s, ReadChip(lane, reader, can=can))
        actions: list[Action] = []
        if s.armed is not None and s.armed.payload is not None:
            actions.append(DecideQr(lane, s.armed.payload))
        s.armed = _Armed(at=now, can=can)
        actions.append(Prompt(lane, PromptKind.TAP))
        return actions

    def read_finished(self, reader: str, now: float) -> list[Action]:
        """The agent finished the :class:`ReadChip` on ``reader`` (whatever its result)."""
        s = self._state(self._of_reader, reader, "reader")
        if s.reading != reader:
            return []
        s.reading = None
        actions: list[Action] = []
        if s.queued is not None:
            payload, qr = s.queued, s.queued_qr
            s.queued = s.queued_qr = None
            actions += self._qr(s, payload, qr, now)
        if s.armed is None and s.reading is None:
            s.waiting_keys = self._unread(s)
            if s.waiting_keys is not None:
                kind = PromptKind.CAN if self.settings.can_pad else PromptKind.SCAN_FIRST
                actions.append(Prompt(s.lane.name, kind))
        return actions

    def tick(self, now: float) -> list[Action]:
        """Time passed: an armed QR whose window closed is decided alone; a CAN expires."""
        actions: list[Action] = []
        for s in self._lanes.values():
            armed = s.armed
            if armed is None or now - armed.at < self.settings.tap_window_s:
                continue
            s.armed = None
            if armed.payload is not None:
                actions.append(DecideQr(s.lane.name, armed.payload))
            else:
                actions.append(Prompt(s.lane.name, PromptKind.IDLE))
        return actions

    # -- internals ----------------------------------------------------------------------------

    def _state(self, index: dict[str, str], device: str, what: str) -> _LaneState:
        name = index.get(device)
        if name is None:
            raise PresentationError(f"{what} {device!r} is in no lane")
        return self._lanes[name]

    def _unread(self, s: _LaneState) -> str | None:
        """A reader of the lane with a card that was not read yet."""
        for reader in s.lane.readers:
            if reader in s.present and reader not in s.consumed:
                return reader
        return None

    def _chip_expected(self, s: _LaneState) -> bool:
        return bool(s.lane.readers) and self.settings.chip_after_qr

    def _qr(self, s: _LaneState, payload: bytes | str, qr: QrIdentity | None,
            now: float) -> list[Action]:
        name = s.lane.name
        if qr is None or not self._chip_expected(s):
            return [DecideQr(name, payload)]
        if s.reading is not None:
            actions: list[Action] = []
            if s.queued is not None:
                actions.append(DecideQr(name, s.queued))
            s.queued, s.queued_qr = payload, qr
            return actions
        if s.waiting_keys is not None:
            reader, s.waiting_keys = s.waiting_keys, None
            return self._start_read(s, ReadChip(name, reader, qr=qr, payload=payload))
        actions = []
        if s.armed is not None and s.armed.payload is not None:
            actions.append(DecideQr(name, s.armed.payload))  # the previous visitor, QR-only
        s.armed = _Armed(at=now, qr=qr, payload=payload)
        unread = self._unread(s)
        if unread is not None:
            return actions + self._read_armed(s, unread)
        actions.append(Prompt(name, PromptKind.TAP, mask_id(qr.id_text)))
        return actions

    def _read_armed(self, s: _LaneState, reader: str) -> list[Action]:
        armed = s.armed
        assert armed is not None
        s.armed = None
        if s.waiting_keys == reader:
            s.waiting_keys = None
        return self._start_read(s, ReadChip(s.lane.name, reader, qr=armed.qr,
                                            payload=armed.payload, can=armed.can))

    def _start_read(self, s: _LaneState, action: ReadChip) -> list[Action]:
        s.reading = action.reader
        s.consumed.add(action.reader)
        return [action]

"""What the kiosk shows, and the fan-out of its changes to every open page (server-sent events)."""

from __future__ import annotations

import json
import queue
import secrets
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class VerdictView:
    """One presentation's outcome as the gatekeeper sees it. The ID is already masked."""

    accepted: bool
    title: str
    message: str = ""
    masked_id: str | None = None
    name: str | None = None
    reason: str | None = None
    warning: bool = False
    assurance: str | None = None
    """How sure the verdict is: ``chip-anchored`` | ``chip-signed`` | ``qr`` | ``vneid-qr`` |
    ``manual`` (docs/protocol.md §4.3); the kiosk shows it in distinct words and colours."""
    photo: str | None = None
    """URL of the chip's face image (DG2) for the gatekeeper to compare, while shown."""
    recorded: bool = False
    """The presentation committed events to the outbox (an accepted verdict may record none:
    a repeat inside the dedupe window, a person only selected at a desk)."""
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole screen."""

    device_name: str = ""
    site_name: str = ""
    direction: str = ""
    """``entry`` | ``exit`` at a gate (at a both-way gate: the one chosen on the kiosk)."""
    choose_direction: bool = False
    """A both-way gate: the kiosk shows the VÀO / RA choice."""
    can_lane: str | None = None
    """A card lies on this lane's reader without keys: the kiosk shows the CAN pad."""
    language: str = "vi"
    training: bool = False
    """Training mode: the kiosk and desk show the "ĐÀO TẠO / TRAINING" banner."""
    verdict: VerdictView | None = None
    site_kind: str = ""
    entries_today: int = 0
    exits_today: int = 0
    visits_today: int = 0
    open_stays: int = 0
    """Hospital in-patients or accommodation guests this device checked in and not out."""
    occupancy: int | None = None
    capacity: int | None = None
    occupancy_estimated: bool = False
    online: bool = False
    backlog: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class KioskState:
    """Thread-safe screen state; every change is pushed to each subscriber's queue."""

    MAX_QUEUE = 64

    def __init__(self, **initial: Any) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot(**initial)
        self._subscribers: set[queue.Queue[str]] = set()
        self._photo: tuple[str, bytes, str] | None = None

    @property
    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot

    def update(self, **changes: Any) -> Snapshot:
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)
            message = json.dumps(self._snapshot.to_json(), ensure_ascii=False)
            for subscriber in list(self._subscribers):
                try:
                    subscriber.put_nowait(message)
                except queue.Full:  # a page that stopped reading: drop it, it will reconnect
                    self._subscribers.discard(subscriber)
            return self._snapshot

    def show(self, verdict: VerdictView) -> Snapshot:
        return self.update(verdict=verdict)

    SHOWN_MIME = frozenset({"image/jpeg", "image/png"})
    """Face image types a browser displays (a JPEG 2000 face is not shown)."""

    def keep_photo(self, image: bytes | None, mime: str | None) -> str | None:
        """Hold the face image of the verdict about to be shown (only this one, in memory,
        behind a fresh unguessable URL); None clears it. Returns the URL."""
        with self._lock:
            if not image or mime not in self.SHOWN_MIME:
                self._photo = None
                return None
            token = secrets.token_urlsafe(16)
            self._photo = (token, image, mime or "")
            return f"/photo/{token}"

    def photo(self, token: str) -> tuple[bytes, str] | None:
        with self._lock:
            if self._photo is None or not secrets.compare_digest(self._photo[0], token):
                return None
            return self._photo[1], self._photo[2]

    def subscribe(self) -> queue.Queue[str]:
        subscriber: queue.Queue[str] = queue.Queue(self.MAX_QUEUE)
        with self._lock:
            self._subscribers.add(subscriber)
            subscriber.put_nowait(json.dumps(self._snapshot.to_json(), ensure_ascii=False))
        return subscriber

    def unsubscribe(self, subscriber: queue.Queue[str]) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

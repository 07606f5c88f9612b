"""The visitor-traffic generator: synthetic visitors at simulated gates and desks.

Each gate or desk of the demo (the ``demo`` package, outside the simulator: it also sets up the
collector) is an agent process with real driver stacks; this generator owns
the hardware they talk to: a contactless tag on nfcpy's UDP transport (the card on the reader)
and a pseudo-terminal serial QR scanner. A visitor scans the card's QR and, where the gate has a
chip reader, taps the card; the generator waits for the gate's verdict on its kiosk page
(``/state``) before the next visitor, and records what it generated so the centre's counts can
be checked exactly.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from firmware_sim.bridges.nfc_udp import UdpTagBridge
from firmware_sim.bridges.serial_scanner import PtySerialScanner
from firmware_sim.card import load_card

log = logging.getLogger(__name__)

NOT_A_VISIT = frozenset({"selected-for-stay", "in-patient", "visited-today"})
"""Reasons of an accepted hospital-desk verdict that recorded no visit (the person was only
selected for an admission or discharge: a second card the same day, an in-patient)."""


@dataclass(frozen=True)
class Visitor:
    """A synthetic person holding an issued simulated card."""

    card_dir: Path
    qr: str
    id_number: str


def visitors_from(cards_root: Path) -> list[Visitor]:
    """The visitors of ``firmware-sim issue`` output (``cards_root/cards/NNNN``)."""
    people = []
    for folder in sorted((cards_root / "cards").iterdir()):
        info = json.loads((folder / "card.json").read_text("utf-8"))
        people.append(Visitor(folder, info["qr"], info["person"]["id_number"]))
    return people


class CardSlot(Protocol):
    """Where the generator puts a visitor's card: a reader's field, through some bridge."""

    def put(self, card_dir: Path) -> None:
        """The next card to present (the field is empty)."""

    def present_card(self) -> None: ...

    def remove_card(self) -> None: ...


class UdpSlot:
    """A contactless tag on nfcpy's UDP transport as a card slot."""

    def __init__(self, bridge: UdpTagBridge) -> None:
        self.bridge = bridge
        self.path = bridge.path

    def put(self, card_dir: Path) -> None:
        self.bridge.swap_card(load_card(card_dir))

    def present_card(self) -> None:
        self.bridge.present_card()

    def remove_card(self) -> None:
        self.bridge.remove_card()


@dataclass
class Station:
    """One gate or desk: its simulated hardware and its kiosk."""

    name: str
    site_id: str
    role: str
    """``entry``, ``exit`` (heritage gates), ``reception`` (hospital visit), ``ward``
    (admission desk)."""
    kiosk_port: int
    scanner: PtySerialScanner
    tag: CardSlot | None = None
    removal_gap_s: float = 1.2
    """A card taken away stays away this long: the reader polls for presence (nfcpy, about
    every 0.5 s) and must see the field empty before the next card, as at a real gate."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.kiosk_port}/state",
                                        timeout=2) as response:
                data: dict[str, Any] = json.loads(response.read())
                return data
        except (OSError, ValueError):
            return None

    def verdict_after(self, before: Any, timeout: float) -> dict[str, Any] | None:
        """The first verdict shown after ``before`` (None on time-out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            verdict = state.get("verdict") if state else None
            if verdict and verdict != before:
                return dict(verdict)
            time.sleep(0.02)
        return None

    def desk(self, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.kiosk_port}/desk/{action}",
            data=json.dumps(fields).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-Kiosk-Desk": "1"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                data: dict[str, Any] = json.loads(response.read())
                return data
        except urllib.error.HTTPError as exc:
            return {"accepted": False, "error": exc.read().decode("utf-8", "replace")}


class TrafficGenerator:
    """Runs visitors through the stations until stopped; ``generated`` is the ground truth."""

    def __init__(self, stations: list[Station], visitors: list[Visitor], *, seed: int = 1,
                 verdict_timeout: float = 15.0) -> None:
        self.stations = stations
        self.visitors = visitors
        self.rng = random.Random(seed)
        self.verdict_timeout = verdict_timeout
        self.generated: Counter[tuple[str, str]] = Counter()
        """(site_id, kind) → events the gates accepted: entry, exit, visit, stay.start."""
        self.failures: list[str] = []
        self.by_station: Counter[str] = Counter()
        """Accepted presentations per station (to see every gate really worked)."""
        self.inside: dict[str, list[Visitor]] = {}
        self.admitted: dict[str, str] = {}
        """ID number → the station that admitted the patient (open stays are per device)."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool_lock = threading.Lock()
        self._free = list(visitors)
        self.rng.shuffle(self._free)

    # -- the visitor's actions --------------------------------------------------------------------

    def _take(self) -> Visitor | None:
        with self._pool_lock:
            return self._free.pop() if self._free else None

    def _give_back(self, visitor: Visitor) -> None:
        with self._pool_lock:
            self._free.insert(0, visitor)

    def present(self, station: Station, visitor: Visitor) -> dict[str, Any] | None:
        """Scan the QR; tap the card where the station has a chip reader. The final verdict."""
        with station.lock:
            before = (station.state() or {}).get("verdict")
            station.scanner.scan(visitor.qr.encode("utf-8"))
            verdict = station.verdict_after(before, self.verdict_timeout)
            if verdict is None or station.tag is None:
                return verdict
            if verdict.get("title") != "Mời chạm thẻ":
                return verdict  # the QR itself was refused
            station.tag.put(visitor.card_dir)
            station.tag.present_card()
            final = station.verdict_after(verdict, self.verdict_timeout)
            station.tag.remove_card()
            time.sleep(station.removal_gap_s)
            return final

    def _record(self, station: Station, kind: str, verdict: dict[str, Any] | None,
                visitor: Visitor) -> bool:
        if verdict is not None and verdict.get("accepted") and \
                verdict.get("reason") in NOT_A_VISIT:
            return True  # a hospital desk selected the person: accepted, nothing recorded
        # what the agent committed, warnings or not (an accepted verdict with a warning, such as
        # an insurance answer still pending or a near-full site, is recorded all the same)
        if verdict is not None and verdict.get("accepted") and verdict.get("recorded"):
            self.generated[(station.site_id, kind)] += 1
            self.by_station[station.name] += 1
            return True
        detail = verdict.get("reason") if verdict else "no verdict"
        self.failures.append(f"{station.name}: {kind} of ****{visitor.id_number[-4:]} "
                             f"not accepted ({detail})")
        return False

    def step(self, station: Station) -> None:
        """One visitor at one station."""
        if station.role == "exit":
            inside = self.inside.setdefault(station.site_id, [])
            with self._pool_lock:
                visitor = inside.pop(self.rng.randrange(len(inside))) if inside else None
            if visitor is None:
                return
            self._record(station, "exit", self.present(station, visitor), visitor)
            self._give_back(visitor)
            return
        visitor = self._take()
        if visitor is None:
            return
        verdict = self.present(station, visitor)
        if self.admitted.get(visitor.id_number) == station.name:
            # At the desk that admitted them, an in-patient's card records no visit (the kiosk
            # says so); the desk discharges.
            if verdict is None or verdict.get("reason") != "in-patient":
                detail = verdict.get("reason") if verdict else "no verdict"
                self.failures.append(f"{station.name}: in-patient ****{visitor.id_number[-4:]} "
                                     f"not recognised ({detail})")
            else:
                self._desk(station, "discharge", "stay.end", {}, visitor)
            self._give_back(visitor)
            return
        if station.role == "entry":
            if self._record(station, "entry", verdict, visitor):
                with self._pool_lock:
                    self.inside.setdefault(station.site_id, []).append(visitor)
                return
        elif station.role == "reception":
            self._record(station, "visit", verdict, visitor)
        elif station.role == "ward" and self._record(station, "visit", verdict, visitor):
            departure = (date.today() + timedelta(days=self.rng.randrange(1, 6)))
            self._desk(station, "admit", "stay.start",
                       {"room": f"Khoa {self.rng.choice('ABC')}",
                        "expected_departure": departure.isoformat()}, visitor)
        self._give_back(visitor)

    def _desk(self, station: Station, action: str, kind: str, fields: dict[str, str],
              visitor: Visitor) -> None:
        """Admit or discharge the patient the station's last presentation selected."""
        result = station.desk(action, fields)
        if result.get("accepted"):
            self.generated[(station.site_id, kind)] += 1
            if action == "admit":
                self.admitted[visitor.id_number] = station.name
            else:
                self.admitted.pop(visitor.id_number, None)
        else:
            self.failures.append(f"{station.name}: {action} refused ({result.get('title')})")

    # -- running ----------------------------------------------------------------------------------

    def _loop(self, station: Station, pause: tuple[float, float]) -> None:
        while not self._stop.is_set():
            try:
                self.step(station)
            except Exception:  # one station's trouble must not stop the others
                log.exception("traffic at %s", station.name)
            self._stop.wait(self.rng.uniform(*pause))

    def start(self, pause: tuple[float, float] = (0.2, 1.0)) -> None:
        for station in self.stations:
            thread = threading.Thread(target=self._loop, args=(station, pause),
                                      name=f"traffic {station.name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.verdict_timeout * 2 + 5)

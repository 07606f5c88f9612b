"""Gate outputs: buzzer, three LEDs (green, red, amber) and the turnstile relay.

One interface, :class:`Outputs`: ``signal(verdict)`` shows a check-in verdict (``accept``: green
and one short beep; ``reject``: red and three beeps; ``warn``: amber and two beeps), and
``pulse_relay(seconds)`` opens the turnstile for a moment. Backends:

- :class:`SimulatedOutputs` records every call with its time (tests, the demo, sites without
  GPIO);
- :class:`GpioOutputs` drives Raspberry Pi pins through gpiozero, used when gpiozero is
  importable and pins are configured; never required.

:func:`open_outputs` picks one from a configuration mapping. Nothing here knows about cards.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

from drivers.code_scanner import utc_now

Verdict = Literal["accept", "reject", "warn"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
LedColour = Literal["green", "red", "amber"]


class OutputError(Exception):
    """An output failure (base class)."""


class OutputConfigError(OutputError, ValueError):
    """A bad verdict, duration or pin configuration."""


class OutputUnavailableError(OutputError):
    """The output backend cannot be used (gpiozero missing, pins busy)."""


@dataclass(frozen=True, slots=True)
class SignalPattern:
    """How a verdict is shown: which LED, for how long, and the beeps."""

    led: LedColour
    led_seconds: float
    beeps: int
    beep_seconds: float = 0.08
    gap_seconds: float = 0.08


PATTERNS: dict[str, SignalPattern] = {
    "accept": SignalPattern("green", 1.5, 1, beep_seconds=0.12),
    "reject": SignalPattern("red", 2.0, 3),
    "warn": SignalPattern("amber", 2.0, 2),
}
MAX_RELAY_SECONDS = 10.0


def check_verdict(verdict: str) -> Verdict:
    """``verdict`` as a :data:`Verdict`, or :class:`OutputConfigError`."""
    if verdict not in VERDICTS:
        raise OutputConfigError(f"unknown verdict {verdict!r} (expected {', '.join(VERDICTS)})")
    return cast(Verdict, verdict)


def check_relay_seconds(seconds: float) -> float:
    """A relay pulse must be positive and at most :data:`MAX_RELAY_SECONDS` (a stuck-open
    turnstile is a safety problem)."""
    if not 0 < seconds <= MAX_RELAY_SECONDS:
        raise OutputConfigError(f"relay pulse {seconds} s outside (0, {MAX_RELAY_SECONDS}]")
    return float(seconds)


class Outputs(abc.ABC):
    """Buzzer, LEDs and relay of one gate."""

    name: str = "outputs"

    @abc.abstractmethod
    def signal(self, verdict: Verdict) -> None:
        """Show a verdict (LED and beeps, see :data:`PATTERNS`); returns at once."""

    @abc.abstractmethod
    def pulse_relay(self, seconds: float = 1.0) -> None:
        """Close the relay for ``seconds`` (turnstile release); returns at once."""

    @abc.abstractmethod
    def all_off(self) -> None:
        """Every LED, the buzzer and the relay off."""

    def health(self) -> dict[str, Any]:
        """JSON-able state of the backend."""
        return {"driver": self.name}

    def close(self) -> None:
        """Turn everything off and release the pins."""
        self.all_off()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class OutputEvent:
    """One recorded call: ``kind`` is ``signal``, ``relay`` or ``off``."""

    kind: str
    detail: str
    seconds: float | None
    at: datetime


@dataclass
class SimulatedOutputs(Outputs):
    """Records calls instead of driving pins; the relay state follows the pulse durations."""

    name: str = "simulated"
    events: list[OutputEvent] = field(default_factory=list)
    _relay_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def signal(self, verdict: Verdict) -> None:
        """Record the verdict and its pattern's LED."""
        check_verdict(verdict)
        with self._lock:
            self.events.append(OutputEvent("signal", verdict, PATTERNS[verdict].led_seconds,
                                           utc_now()))

    def pulse_relay(self, seconds: float = 1.0) -> None:
        """Record the pulse; :attr:`relay_closed` is True for ``seconds``."""
        seconds = check_relay_seconds(seconds)
        with self._lock:
            self._relay_until = time.monotonic() + seconds
            self.events.append(OutputEvent("relay", "pulse", seconds, utc_now()))

    def all_off(self) -> None:
        """Record the switch-off; the relay opens."""
        with self._lock:
            self._relay_until = 0.0
            self.events.append(OutputEvent("off", "all", None, utc_now()))

    @property
    def relay_closed(self) -> bool:
        """Whether a pulse is in progress."""
        return time.monotonic() < self._relay_until

    def calls(self) -> list[tuple[str, str]]:
        """``(kind, detail)`` of every call so far, for assertions."""
        with self._lock:
            return [(e.kind, e.detail) for e in self.events]

    def health(self) -> dict[str, Any]:
        """Event count and relay state."""
        return {"driver": self.name, "events": len(self.events),
                "relay_closed": self.relay_closed}


@dataclass(frozen=True, slots=True)
class OutputPins:
    """BCM pin numbers of the gate outputs (None: not fitted)."""

    green: int | None = None
    red: int | None = None
    amber: int | None = None
    buzzer: int | None = None
    relay: int | None = None
    relay_active_high: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutputPins:
        """From ``{"green": 17, "red": 27, "amber": 22, "buzzer": 23, "relay": 24}``."""
        known = {"green", "red", "amber", "buzzer", "relay", "relay_active_high"}
        unknown = set(config) - known
        if unknown:
            raise OutputConfigError(f"unknown output pin(s): {', '.join(sorted(unknown))}")
        pins: dict[str, Any] = {}
        for key in ("green", "red", "amber", "buzzer", "relay"):
            value = config.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 0 <= value <= 27):
                raise OutputConfigError(f"pin {key}={value!r}: expected a BCM pin 0-27")
            pins[key] = value
        used = [v for v in pins.values() if v is not None]
        if len(used) != len(set(used)):
            raise OutputConfigError("two outputs share a pin")
        return cls(**pins, relay_active_high=bool(config.get("relay_active_high", True)))

    @property
    def any(self) -> bool:
        """Whether any output is fitted."""
        return any(p is not None for p in (self.green, self.red, self.amber, self.buzzer,
                                           self.relay))


class GpioOutputs(Outputs):
    """gpiozero LEDs, buzzer and relay; blinking and pulses run in gpiozero's background
    threads, so every call returns at once."""

    name = "gpiozero"

    def __init__(self, pins: OutputPins) -> None:
        try:
            import gpiozero  # noqa: PLC0415 - optional, Raspberry Pi only
        except ImportError as exc:
            raise OutputUnavailableError(f"gpiozero is not importable: {exc}") from exc
        self.pins = pins
        try:
            self._leds: dict[str, Any] = {
                colour: gpiozero.LED(pin)
                for colour, pin in (("green", pins.green), ("red", pins.red),
                                    ("amber", pins.amber)) if pin is not None
            }
            self._buzzer = gpiozero.Buzzer(pins.buzzer) if pins.buzzer is not None else None
            self._relay = (gpiozero.OutputDevice(pins.relay, active_high=pins.relay_active_high,
                                                 initial_value=False)
                           if pins.relay is not None else None)
        except Exception as exc:  # gpiozero raises its own GPIOZeroError family
            raise OutputUnavailableError(f"cannot claim output pins: {exc}") from exc

    def signal(self, verdict: Verdict) -> None:
        """The verdict's LED for its duration (others off) and its beeps."""
        pattern = PATTERNS[check_verdict(verdict)]
        for colour, led in self._leds.items():
            if colour != pattern.led:
                led.off()
        led = self._leds.get(pattern.led)
        if led is not None:
            led.blink(on_time=pattern.led_seconds, off_time=0, n=1, background=True)
        if self._buzzer is not None:
            self._buzzer.beep(on_time=pattern.beep_seconds, off_time=pattern.gap_seconds,
                              n=pattern.beeps, background=True)

    def pulse_relay(self, seconds: float = 1.0) -> None:
        """Close the relay for ``seconds`` (gpiozero's background blink, n=1)."""
        seconds = check_relay_seconds(seconds)
        if self._relay is None:
            raise OutputUnavailableError("no relay pin configured")
        self._relay.blink(on_time=seconds, off_time=0, n=1, background=True)

    def all_off(self) -> None:
        """Everything off."""
        for led in self._leds.values():
            led.off()
        if self._buzzer is not None:
            self._buzzer.off()
        if self._relay is not None:
            self._relay.off()

    def close(self) -> None:
        """Switch off and release the pins."""
        self.all_off()
        for device in (*self._leds.values(), self._buzzer, self._relay):
            if device is not None:
                device.close()

    def health(self) -> dict[str, Any]:
        """Configured pins and the relay state."""
        return {"driver": self.name, "pins": {k: getattr(self.pins, k) for k in
                                              ("green", "red", "amber", "buzzer", "relay")},
                "relay_closed": bool(self._relay.value) if self._relay is not None else None}


def open_outputs(config: Mapping[str, Any] | None = None) -> Outputs:
    """The gpiozero backend when pins are configured and gpiozero imports, else simulated.

    ``config``: ``{"backend": "auto" | "gpiozero" | "simulated", "pins": {...}}``; asking for
    ``gpiozero`` explicitly raises :class:`OutputUnavailableError` when it cannot be used.
    """
    config = config or {}
    backend = config.get("backend", "auto")
    if backend not in {"auto", "gpiozero", "simulated"}:
        raise OutputConfigError(f"unknown outputs backend {backend!r}")
    pins = OutputPins.from_config(config.get("pins", {}))
    if backend == "simulated" or (backend == "auto" and not pins.any):
        return SimulatedOutputs()
    try:
        return GpioOutputs(pins)
    except OutputUnavailableError:
        if backend == "gpiozero":
            raise
        return SimulatedOutputs()

"""Gate outputs: the simulated backend, pin configuration, the gpiozero backend on a fake
gpiozero module."""

from __future__ import annotations

import sys
import time
import types
from typing import Any

import pytest

from drivers.outputs import (
    PATTERNS,
    GpioOutputs,
    OutputConfigError,
    OutputPins,
    OutputUnavailableError,
    SimulatedOutputs,
    open_outputs,
)


def test_simulated_records_calls_and_relay_state() -> None:
    out = SimulatedOutputs()
    out.signal("accept")
    out.signal("warn")
    out.pulse_relay(0.05)
    assert out.relay_closed
    assert out.calls() == [("signal", "accept"), ("signal", "warn"), ("relay", "pulse")]
    assert out.events[2].seconds == 0.05 and out.events[0].at.tzinfo is not None
    time.sleep(0.07)
    assert not out.relay_closed
    out.close()
    assert out.calls()[-1] == ("off", "all")
    assert out.health()["events"] == 4


@pytest.mark.parametrize("verdict", ["ok", "", "ACCEPT"])
def test_bad_verdict(verdict: str) -> None:
    with pytest.raises(OutputConfigError):
        SimulatedOutputs().signal(verdict)  # type: ignore[arg-type]


@pytest.mark.parametrize("seconds", [0, -1, 10.5])
def test_relay_duration_bounds(seconds: float) -> None:
    with pytest.raises(OutputConfigError):
        SimulatedOutputs().pulse_relay(seconds)


def test_patterns_cover_every_verdict() -> None:
    assert {p.led for p in PATTERNS.values()} == {"green", "red", "amber"}
    assert [PATTERNS[v].beeps for v in ("accept", "warn", "reject")] == [1, 2, 3]


def test_pins_from_config() -> None:
    pins = OutputPins.from_config({"green": 17, "red": 27, "relay": 24,
                                   "relay_active_high": False})
    assert (pins.green, pins.red, pins.amber, pins.relay) == (17, 27, None, 24)
    assert not pins.relay_active_high and pins.any
    assert not OutputPins.from_config({}).any
    for bad in ({"green": 17, "red": 17}, {"green": 40}, {"blue": 3}, {"relay": "24"},
                {"relay": True}):
        with pytest.raises(OutputConfigError):
            OutputPins.from_config(bad)


class FakeDevice:
    def __init__(self, pin: int, **kwargs: Any) -> None:
        self.pin = pin
        self.kwargs = kwargs
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.value = 0

    def on(self) -> None:
        self.calls.append(("on", {}))

    def off(self) -> None:
        self.value = 0
        self.calls.append(("off", {}))

    def blink(self, **kwargs: Any) -> None:
        self.value = 1
        self.calls.append(("blink", kwargs))

    def beep(self, **kwargs: Any) -> None:
        self.calls.append(("beep", kwargs))

    def close(self) -> None:
        self.calls.append(("close", {}))


@pytest.fixture
def fake_gpiozero(monkeypatch: pytest.MonkeyPatch) -> Any:
    module: Any = types.ModuleType("gpiozero")
    module.LED = module.Buzzer = module.OutputDevice = FakeDevice
    monkeypatch.setitem(sys.modules, "gpiozero", module)
    return module


def test_gpiozero_backend(fake_gpiozero: Any) -> None:
    out = open_outputs({"pins": {"green": 17, "red": 27, "amber": 22, "buzzer": 23,
                                 "relay": 24, "relay_active_high": False}})
    assert isinstance(out, GpioOutputs)
    out.signal("reject")
    red, green = out._leds["red"], out._leds["green"]
    assert red.calls[-1] == ("blink", {"on_time": 2.0, "off_time": 0, "n": 1,
                                       "background": True})
    assert green.calls[-1] == ("off", {})
    assert out._buzzer is not None and out._buzzer.calls[-1][1]["n"] == 3
    out.pulse_relay(1.5)
    assert out._relay is not None
    assert out._relay.kwargs == {"active_high": False, "initial_value": False}
    assert out._relay.calls[-1] == ("blink", {"on_time": 1.5, "off_time": 0, "n": 1,
                                              "background": True})
    assert out.health()["relay_closed"] is True
    out.close()
    assert out._relay.calls[-1] == ("close", {})


def test_open_outputs_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # import fails
    assert isinstance(open_outputs(), SimulatedOutputs)
    assert isinstance(open_outputs({"pins": {"relay": 24}}), SimulatedOutputs)
    with pytest.raises(OutputUnavailableError):
        open_outputs({"backend": "gpiozero", "pins": {"relay": 24}})
    with pytest.raises(OutputConfigError):
        open_outputs({"backend": "pwm"})


def test_relay_without_pin(fake_gpiozero: Any) -> None:
    out = GpioOutputs(OutputPins(green=17))
    with pytest.raises(OutputUnavailableError):
        out.pulse_relay(1)

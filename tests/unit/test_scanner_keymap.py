"""Keyboard-wedge key mapping (US layout, Shift, Caps Lock, Alt codes, Ctrl+Shift+U) and the
EvdevScanner loop on a fake evdev device (no real input device needed)."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import evdev.ecodes as ec
import pytest

from drivers.code_scanner import ScannerConfigError
from drivers.scanners import keymap as km
from drivers.scanners.keymap import KeyMapper, alt_code_char

# Reverse US layout for building key sequences in tests.
_CHAR_TO_KEY: dict[str, tuple[int, bool]] = {}
for _code, (_low, _high) in km.US_LAYOUT.items():
    if _code < 55:
        _CHAR_TO_KEY.setdefault(_low, (_code, False))
        _CHAR_TO_KEY.setdefault(_high, (_code, True))
_CHAR_TO_KEY[" "] = (km.KEY_SPACE, False)


def tap(code: int) -> list[tuple[int, int]]:
    return [(code, 1), (code, 0)]


def type_ascii(text: str) -> list[tuple[int, int]]:
    events: list[tuple[int, int]] = []
    for char in text:
        code, shifted = _CHAR_TO_KEY[char]
        if shifted:
            events.append((km.KEY_LEFTSHIFT, 1))
        events += tap(code)
        if shifted:
            events.append((km.KEY_LEFTSHIFT, 0))
    return events


def alt_code(digits: str) -> list[tuple[int, int]]:
    kp = {v: k for k, v in km.KEYPAD_DIGITS.items()}
    return [(km.KEY_LEFTALT, 1), *[e for d in digits for e in tap(kp[d])], (km.KEY_LEFTALT, 0)]


def unicode_hex(char: str) -> list[tuple[int, int]]:
    events = [(km.KEY_LEFTCTRL, 1), (km.KEY_LEFTSHIFT, 1), *tap(km.KEY_U),
              (km.KEY_LEFTSHIFT, 0), (km.KEY_LEFTCTRL, 0)]
    return events + type_ascii(f"{ord(char):x}") + tap(km.KEY_SPACE)


def run(mapper: KeyMapper, events: list[tuple[int, int]]) -> list[str]:
    lines = []
    for code, value in events:
        line = mapper.feed(code, value)
        if line is not None:
            lines.append(line)
    return lines


def test_key_codes_match_the_kernel_table() -> None:
    for name in ["KEY_ENTER", "KEY_KPENTER", "KEY_LEFTSHIFT", "KEY_RIGHTSHIFT", "KEY_LEFTALT",
                 "KEY_RIGHTALT", "KEY_LEFTCTRL", "KEY_RIGHTCTRL", "KEY_CAPSLOCK", "KEY_SPACE",
                 "KEY_TAB", "KEY_BACKSPACE", "KEY_U", "KEY_KP0", "KEY_KP1", "KEY_KP5", "KEY_KP9",
                 "KEY_KPDOT", "KEY_KPSLASH", "KEY_NUMLOCK"]:
        assert getattr(km, name) == getattr(ec, name), name
    assert km.US_LAYOUT[ec.KEY_A] == ("a", "A")
    assert km.US_LAYOUT[ec.KEY_SLASH] == ("/", "?")
    assert km.US_LAYOUT[ec.KEY_APOSTROPHE] == ("'", '"')
    assert km.US_LAYOUT[ec.KEY_0] == ("0", ")")


def test_ascii_card_payload_with_shift_and_enter() -> None:
    text = "079303001234||NGUYEN THI MAI|15052003|Nu|1 Duong C, Q.B|20082021"
    mapper = KeyMapper()
    assert run(mapper, type_ascii(text) + tap(km.KEY_ENTER)) == [text]
    assert mapper.unmapped_keys == 0 and mapper.non_ascii_chars == 0


def test_every_printable_ascii_character_round_trips() -> None:
    text = "".join(chr(c) for c in range(32, 127))
    assert run(KeyMapper(), type_ascii(text) + tap(km.KEY_KPENTER)) == [text]


def test_caps_lock_inverts_letters_only() -> None:
    events = tap(km.KEY_CAPSLOCK) + type_ascii("aB1!") + tap(km.KEY_ENTER)
    assert run(KeyMapper(), events) == ["Ab1!"]


def test_right_shift_auto_repeat_and_backspace() -> None:
    events = [(km.KEY_RIGHTSHIFT, 1), (ec.KEY_X, 1), (ec.KEY_X, 2), (ec.KEY_X, 0),
              (km.KEY_RIGHTSHIFT, 0), *tap(ec.KEY_Y), *tap(km.KEY_BACKSPACE),
              *tap(km.KEY_ENTER)]
    assert run(KeyMapper(), events) == ["XX"]


def test_keypad_digits_without_alt_type_digits() -> None:
    kp = {v: k for k, v in km.KEYPAD_DIGITS.items()}
    events = [e for d in "0791" for e in tap(kp[d])] + tap(km.KEY_KPDOT) + tap(km.KEY_ENTER)
    assert run(KeyMapper(), events) == ["0791."]


def test_alt_numpad_unicode_codes_carry_vietnamese() -> None:
    name = "Nguyễn Thị Mai"
    events: list[tuple[int, int]] = []
    for char in name:
        events += type_ascii(char) if char.isascii() else alt_code(str(ord(char)))
    mapper = KeyMapper()
    assert run(mapper, events + tap(km.KEY_ENTER)) == [name]
    assert mapper.non_ascii_chars == 2


@pytest.mark.parametrize(("digits", "char"), [
    ("0233", "é"), ("0128", "€"), ("130", "é"), ("7877", "ễ"), ("65", "A"), ("1114112", "\ufffd"),
])
def test_alt_code_tables(digits: str, char: str) -> None:
    assert alt_code_char(digits) == char


def test_ctrl_shift_u_hex_entry() -> None:
    events = type_ascii("N") + unicode_hex("ữ") + type_ascii("|") + unicode_hex("Đ")
    events += [(km.KEY_LEFTCTRL, 1), (km.KEY_LEFTSHIFT, 1), *tap(km.KEY_U),
               (km.KEY_LEFTSHIFT, 0), (km.KEY_LEFTCTRL, 0), *type_ascii("1ec5"),
               *tap(km.KEY_ENTER)]  # Enter commits the last character and ends the line
    assert run(KeyMapper(), events) == ["Nữ|Đễ"]


def test_unmapped_and_shortcut_keys_are_counted_not_typed() -> None:
    mapper = KeyMapper()
    events = type_ascii("ab") + tap(ec.KEY_102ND) + tap(ec.KEY_F5)
    events += [(km.KEY_LEFTCTRL, 1), *tap(ec.KEY_C), (km.KEY_LEFTCTRL, 0)]
    assert run(mapper, events + tap(km.KEY_ENTER)) == ["ab"]
    assert mapper.unmapped_keys == 3


def test_tab_end_key_and_flush() -> None:
    mapper = KeyMapper(end_keys=frozenset({km.KEY_TAB}))
    assert run(mapper, type_ascii("abc") + tap(km.KEY_TAB) + type_ascii("de")) == ["abc"]
    assert mapper.flush() == "de"
    assert mapper.flush() is None


def test_overflow_drops_text() -> None:
    mapper = KeyMapper(max_length=4)
    assert run(mapper, type_ascii("abcdef") + tap(km.KEY_ENTER)) == ["ef"]
    assert mapper.overflows == 1


# -- EvdevScanner on a fake python-evdev -------------------------------------------------------

@dataclass
class FakeEvent:
    type: int
    code: int
    value: int


class FakeDevice:
    instances: ClassVar[list[FakeDevice]] = []
    script: ClassVar[list[list[tuple[int, int]] | OSError]] = []

    def __init__(self, path: str) -> None:
        if path == "/dev/input/missing":
            raise FileNotFoundError(2, "No such file or directory", path)
        self.path = path
        self.name = "Fake Scanner Keyboard"
        self.grabbed = False
        self.closed = False
        self._r, self._w = os.pipe()
        os.write(self._w, b"x")
        FakeDevice.instances.append(self)

    @property
    def fd(self) -> int:
        return self._r

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def read(self) -> Iterator[FakeEvent]:
        if not FakeDevice.script:
            raise BlockingIOError
        item = FakeDevice.script.pop(0)
        if isinstance(item, OSError):
            raise item
        return iter([FakeEvent(1, c, v) for c, v in item] + [FakeEvent(0, 0, 0)])

    def close(self) -> None:
        self.closed = True
        os.close(self._r)
        os.close(self._w)


@pytest.fixture
def fake_evdev(monkeypatch: pytest.MonkeyPatch) -> type[FakeDevice]:
    module: Any = types.ModuleType("evdev")
    module.InputDevice = FakeDevice
    monkeypatch.setitem(sys.modules, "evdev", module)
    FakeDevice.instances = []
    FakeDevice.script = []
    return FakeDevice


def test_evdev_scanner_grabs_maps_and_reconnects(fake_evdev: type[FakeDevice]) -> None:
    from drivers.scanners.evdev_scanner import EvdevScanner

    fake_evdev.script = [
        type_ascii("HELLO") + tap(km.KEY_ENTER) + type_ascii("par"),
        type_ascii("tial"),
        OSError(19, "No such device"),
        type_ascii("again") + tap(km.KEY_ENTER),
    ]
    scanner = EvdevScanner.from_uri("/dev/input/event7?grab=1&reconnect=0.01")
    first = fake_evdev.instances[0]
    assert first.grabbed
    scan = scanner.read(timeout=1)
    assert scan is not None and scan.payload == b"HELLO" and scan.source == "evdev:/dev/input/event7"
    scan = scanner.read(timeout=1)
    assert scan is not None and scan.payload == b"again"   # "partial" dropped on unplug
    health = scanner.health()
    assert health["disconnects"] == 1 and health["reconnects"] == 1
    assert health["state"] == "ok" and "Vietnamese" in health["note"]
    scanner.close()
    assert not fake_evdev.instances[-1].grabbed and fake_evdev.instances[-1].closed


def test_evdev_scanner_inter_key_timeout(fake_evdev: type[FakeDevice]) -> None:
    from drivers.scanners.evdev_scanner import EvdevScanner

    fake_evdev.script = [type_ascii("no-enter")]
    scanner = EvdevScanner.from_uri("/dev/input/event7?timeout=0.05&grab=0")
    assert not fake_evdev.instances[0].grabbed
    scan = scanner.read(timeout=1)
    assert scan is not None and scan.payload == b"no-enter"
    scanner.close()


def test_evdev_uri_errors(fake_evdev: type[FakeDevice]) -> None:
    from drivers.code_scanner import ScannerUnavailableError
    from drivers.scanners.evdev_scanner import EvdevScanner

    with pytest.raises(ScannerConfigError):
        EvdevScanner.from_uri("/dev/input/event1?grab=maybe")
    with pytest.raises(ScannerConfigError):
        EvdevScanner.from_uri("/dev/input/event1?end=space")
    with pytest.raises(ScannerUnavailableError):
        EvdevScanner.from_uri("/dev/input/missing")

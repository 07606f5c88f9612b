"""Key events of a keyboard-wedge scanner → text, for a US keyboard layout.

A keyboard-wedge scanner "types" each code as key presses followed by ENTER. What arrives is key
codes (Linux ``input-event-codes.h``), not characters: :class:`KeyMapper` tracks Shift, Caps Lock,
Ctrl and Alt and maps the keys of the US layout to ASCII.

Keyboard wedges cannot type Vietnamese reliably: a scanner emulating a US keyboard has no key for
"ễ", so it drops such characters, types a wrong letter or a '?', depending on the model, and
nothing in the key stream says so. Two scanner output modes carry non-ASCII text and are decoded
here:

- **Alt + numeric keypad**: Alt held while keypad digits are typed, the character is entered
  when Alt is released. ``Alt 0nnn`` (leading zero) is Windows-1252 byte nnn, ``Alt nnn`` below
  256 is code page 437, and larger numbers are a Unicode code point (the "Unicode Alt code" mode
  several scanners offer, e.g. ``Alt 7877`` for "ễ");
- **Unicode hex entry** (GTK / IBus): Ctrl+Shift+U, hex digits, then Space or Enter.

Anything else that is not ASCII is lost on the way; :attr:`KeyMapper.unmapped_keys` counts keys
that have no meaning in the US layout. For Vietnamese payloads configure the scanner as a
USB-CDC (virtual serial) device, or in one of the two modes above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Linux key codes (include/uapi/linux/input-event-codes.h); stable kernel ABI.
KEY_ESC, KEY_BACKSPACE, KEY_TAB, KEY_ENTER = 1, 14, 15, 28
KEY_LEFTCTRL, KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_LEFTALT = 29, 42, 54, 56
KEY_SPACE, KEY_CAPSLOCK, KEY_NUMLOCK = 57, 58, 69
KEY_KPENTER, KEY_RIGHTCTRL, KEY_RIGHTALT = 96, 97, 100
KEY_U = 22
KEY_KP0, KEY_KP1, KEY_KP2, KEY_KP3, KEY_KP4 = 82, 79, 80, 81, 75
KEY_KP5, KEY_KP6, KEY_KP7, KEY_KP8, KEY_KP9 = 76, 77, 71, 72, 73
KEY_KPASTERISK, KEY_KPMINUS, KEY_KPPLUS, KEY_KPDOT, KEY_KPSLASH = 55, 74, 78, 83, 98

KEY_DOWN, KEY_UP, KEY_REPEAT = 1, 0, 2

#: key code → (unshifted, shifted) on the US layout.
US_LAYOUT: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"),
    7: ("6", "^"), 8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"),
    12: ("-", "_"), 13: ("=", "+"),
    16: ("q", "Q"), 17: ("w", "W"), 18: ("e", "E"), 19: ("r", "R"), 20: ("t", "T"),
    21: ("y", "Y"), 22: ("u", "U"), 23: ("i", "I"), 24: ("o", "O"), 25: ("p", "P"),
    26: ("[", "{"), 27: ("]", "}"),
    30: ("a", "A"), 31: ("s", "S"), 32: ("d", "D"), 33: ("f", "F"), 34: ("g", "G"),
    35: ("h", "H"), 36: ("j", "J"), 37: ("k", "K"), 38: ("l", "L"),
    39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"), 43: ("\\", "|"),
    44: ("z", "Z"), 45: ("x", "X"), 46: ("c", "C"), 47: ("v", "V"), 48: ("b", "B"),
    49: ("n", "N"), 50: ("m", "M"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"),
    KEY_SPACE: (" ", " "),
    KEY_KPASTERISK: ("*", "*"), KEY_KPMINUS: ("-", "-"), KEY_KPPLUS: ("+", "+"),
    KEY_KPDOT: (".", "."), KEY_KPSLASH: ("/", "/"),
}
KEYPAD_DIGITS: dict[int, str] = {
    KEY_KP0: "0", KEY_KP1: "1", KEY_KP2: "2", KEY_KP3: "3", KEY_KP4: "4",
    KEY_KP5: "5", KEY_KP6: "6", KEY_KP7: "7", KEY_KP8: "8", KEY_KP9: "9",
}
_SHIFTS = {KEY_LEFTSHIFT, KEY_RIGHTSHIFT}
_CTRLS = {KEY_LEFTCTRL, KEY_RIGHTCTRL}
_ALTS = {KEY_LEFTALT, KEY_RIGHTALT}
_IGNORED = {KEY_NUMLOCK, KEY_ESC, 125, 126}  # NumLock, Esc, Meta keys
_HEX = set("0123456789abcdef")


def alt_code_char(digits: str) -> str:
    """The character of an Alt+keypad sequence (see the module docstring)."""
    value = int(digits)
    if digits.startswith("0") and value < 256:
        return bytes([value]).decode("cp1252", errors="replace")
    if value < 256:
        return bytes([value]).decode("cp437")
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        return "\ufffd"
    return chr(value)


@dataclass
class KeyMapper:
    """Feeds key events, returns each completed line (the text typed before ENTER).

    ``end_keys`` end a frame (ENTER and keypad ENTER by default; add ``KEY_TAB`` for scanners
    configured with a Tab suffix). ``max_length`` characters without an end key are dropped.
    """

    end_keys: frozenset[int] = frozenset({KEY_ENTER, KEY_KPENTER})
    max_length: int = 4096
    text: list[str] = field(default_factory=list)
    shift: set[int] = field(default_factory=set)
    ctrl: set[int] = field(default_factory=set)
    alt: set[int] = field(default_factory=set)
    caps_lock: bool = False
    alt_digits: str = ""
    hex_entry: str | None = None  # collecting Ctrl+Shift+U digits when not None
    unmapped_keys: int = 0
    non_ascii_chars: int = 0
    overflows: int = 0

    @property
    def pending(self) -> str:
        """Text typed so far in the current frame."""
        return "".join(self.text)

    def reset(self) -> None:
        """Forget the partial frame and every held modifier (device lost)."""
        self.text.clear()
        self.shift.clear()
        self.ctrl.clear()
        self.alt.clear()
        self.alt_digits = ""
        self.hex_entry = None

    def flush(self) -> str | None:
        """End the current frame without an end key (inter-key timeout); None if empty."""
        self._commit_hex()
        line = self.pending
        self.text.clear()
        return line or None

    def _type(self, char: str) -> None:
        if len(self.text) >= self.max_length:
            self.overflows += 1
            self.text.clear()
        if not char.isascii():
            self.non_ascii_chars += 1
        self.text.append(char)

    def _commit_hex(self) -> None:
        if self.hex_entry is None:
            return
        digits, self.hex_entry = self.hex_entry, None
        if digits:
            value = int(digits, 16)
            ok = value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF
            self._type(chr(value) if ok else "\ufffd")

    def feed(self, code: int, value: int) -> str | None:
        """One ``EV_KEY`` event (``value`` 1 = down, 0 = up, 2 = auto-repeat)."""
        if code in _SHIFTS or code in _CTRLS or code in _ALTS:
            held = self.shift if code in _SHIFTS else self.ctrl if code in _CTRLS else self.alt
            if value == KEY_UP:
                held.discard(code)
                if code in _ALTS and not self.alt and self.alt_digits:
                    digits, self.alt_digits = self.alt_digits, ""
                    self._type(alt_code_char(digits))
            else:
                held.add(code)
            return None
        if value == KEY_UP:
            return None
        if code == KEY_CAPSLOCK:
            self.caps_lock = not self.caps_lock
            return None
        if self.alt and code in KEYPAD_DIGITS:
            self.alt_digits += KEYPAD_DIGITS[code]
            return None
        if self.ctrl and self.shift and code == KEY_U:
            self._commit_hex()
            self.hex_entry = ""
            return None
        if self.hex_entry is not None:
            char = (KEYPAD_DIGITS.get(code) or US_LAYOUT.get(code, ("", ""))[0]).lower()
            if len(char) == 1 and char in _HEX:
                self.hex_entry += char
                return None
            self._commit_hex()
            if code == KEY_SPACE:
                return None
        if code in self.end_keys:
            line = self.pending
            self.text.clear()
            return line
        if code == KEY_BACKSPACE:
            if self.text:
                self.text.pop()
            return None
        if code == KEY_TAB:
            self._type("\t")
            return None
        if code in KEYPAD_DIGITS:
            self._type(KEYPAD_DIGITS[code])
            return None
        if code in US_LAYOUT:
            if self.ctrl or self.alt:
                self.unmapped_keys += 1  # a shortcut, not text
                return None
            low, high = US_LAYOUT[code]
            upper = bool(self.shift)
            if low.isalpha() and self.caps_lock:
                upper = not upper
            self._type(high if upper else low)
            return None
        if code not in _IGNORED:
            self.unmapped_keys += 1
        return None

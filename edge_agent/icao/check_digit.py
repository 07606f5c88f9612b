"""The MRZ check digit (ICAO 9303-3 §4.9): weights 7-3-1, ``<`` = 0, A = 10 … Z = 35."""

from __future__ import annotations

_VALUES = {**{str(d): d for d in range(10)},
           **{chr(ord("A") + i): 10 + i for i in range(26)}, "<": 0}
_WEIGHTS = (7, 3, 1)


def check_digit(text: str) -> str:
    """The check digit of ``text``; ValueError for a character outside 0-9, A-Z and ``<``."""
    total = 0
    for i, char in enumerate(text):
        value = _VALUES.get(char)
        if value is None:
            raise ValueError(f"character {char!r} is not allowed in an MRZ field")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


def mrz_information(document_number: str, date_of_birth: str, date_of_expiry: str) -> str:
    """The MRZ information that keys BAC and PACE-MRZ (ICAO 9303-11 §9.7.2): each of the three
    fields followed by its check digit, the document number padded with ``<`` to 9."""
    number = document_number.ljust(9, "<")
    return (number + check_digit(number) + date_of_birth + check_digit(date_of_birth)
            + date_of_expiry + check_digit(date_of_expiry))

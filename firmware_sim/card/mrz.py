"""TD1 MRZ of the CCCD (ICAO 9303-5 §4.2; layout per docs/cccd.md §3) and the BAC MRZ
information."""

from __future__ import annotations

import unicodedata
from datetime import date

_VALUES = {**{str(d): d for d in range(10)}, "<": 0}
_VALUES.update({chr(ord("A") + i): 10 + i for i in range(26)})
NO_EXPIRY = "991231"


def check_digit(text: str) -> str:
    """ICAO 9303-3 §4.9 check digit, weights 7-3-1."""
    total = sum(_VALUES[c] * (7, 3, 1)[i % 3] for i, c in enumerate(text))
    return str(total % 10)


def yymmdd(d: date) -> str:
    """Date as YYMMDD."""
    return d.strftime("%y%m%d")


def ascii_name(name: str) -> str:
    """Upper-case ASCII transliteration of a Vietnamese name (diacritics dropped, Đ → D)."""
    name = name.replace("Đ", "D").replace("đ", "d")
    folded = unicodedata.normalize("NFD", name)
    return "".join(c for c in folded if not unicodedata.combining(c)).upper()


def td1(id_number: str, dob: date, sex: str, expiry: str, full_name: str,
        birth: str | None = None) -> list[str]:
    """The three 30-character lines: document number = last 9 digits of the ID number, the full
    12-digit ID as optional data, its own check digit at line-1 position 30 (docs/cccd.md §3).
    ``birth`` overrides the printed date of birth (``55<<<<`` when only the year is known)."""
    doc = id_number[-9:]
    line1 = "IDVNM" + doc + check_digit(doc) + id_number + "<<" + check_digit(id_number)
    birth = birth or yymmdd(dob)
    mrz_sex = "M" if sex == "Nam" else "F"
    line2 = birth + check_digit(birth) + mrz_sex + expiry + check_digit(expiry) + "VNM" + "<" * 11
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    line2 += check_digit(composite)
    words = ascii_name(full_name).split()
    line3 = (words[0] + "<<" + "<".join(words[1:]))[:30].ljust(30, "<")
    return [line1, line2, line3]


def mrz_information(lines: list[str]) -> str:
    """BAC/PACE MRZ information: document number + check, DOB + check, expiry + check."""
    l1, l2 = lines[0], lines[1]
    return l1[5:15] + l2[0:7] + l2[8:15]

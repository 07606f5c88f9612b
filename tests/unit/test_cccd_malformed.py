"""Malformed input: each case is rejected with its exact reason (and nothing else is raised)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge_agent.cccd import (
    CccdError,
    parse_dg13,
    parse_id_number,
    parse_qr,
    parse_td1,
    read_code,
)
from edge_agent.icao.tlv import encode_tlv
from tests.synthetic import dg13_bytes, field, printable, utf8

E = "079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A|20082021"
L1, L2, L3 = ("IDVNM3030012342079303001234<<2", "0305152F2805151VNM<<<<<<<<<<<0",
              "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<")
good = dg13_bytes([field(1, printable("079303001234")), field(2, utf8("Nguyễn Thị Mai"))])

PARSERS: dict[str, Callable[[Any], object]] = {
    "id": parse_id_number,
    "qr": parse_qr,
    "mrz": lambda lines: parse_td1(*lines),
    "dg13": lambda data: parse_dg13(data, strict=True),
    "code": read_code,
}
B = ("DN4797930012345|4e677579e1bb856e|15/05/2003|2|3120c490|79 - 001|01/01/2025|31/12/2025|"
     "20/12/2024|4|-||01/01/2020|a1b2-c3d4|$")

CASES = [
    ("id", "07930300123",
     'ID number id_number: must be 12 digits, got 11 characters'),
    ("id", "0793030012345",
     'ID number id_number: must be 12 digits, got 13 characters'),
    ("id", "07930300123A",
     'ID number id_number: must contain digits only'),
    ("id", "０７９３０３００１２３４",
     'ID number id_number: must contain digits only'),
    ("qr", b"",
     'QR payload: payload is empty'),
    ("qr", b"   \r\n",
     'QR payload: payload is empty'),
    ("qr", b"hello world",
     "QR payload: no '|' separators: not a CCCD, VNeID or personal QR"),
    ("qr", b"\xff\xfe" + E.encode(),
     'QR payload: not valid UTF-8 (byte 0: 0xff)'),
    ("qr", "a|b|c",
     'QR payload: 3 fields; a card QR has at least 7, the variants 6'),
    ("qr", E.replace("079303001234", "79303001234", 1),
     'QR id_number: must be 12 digits, got 11 characters'),
    ("qr", E.replace("15052003", "31022003"),
     "QR date_of_birth: '31022003' is not a calendar date"),
    ("qr", E.replace("15052003", "1505203"),
     "QR date_of_birth: '1505203' is not a date of birth in the form yyyy, mmyyyy, ddmmyyyy "
     "or dd/mm/yyyy"),
    ("qr", E.replace("Nữ", "Female"),
     "QR sex: 'Female' is not 'Nam' or 'Nữ'"),
    ("qr", E.replace("Nữ", "Nam"),
     'QR id_number.sex: sex digit 3 means F, but the sex given is M'),
    ("qr", E.replace("|20082021", "|20082001"),
     'QR issue_date: issue date is before the date of birth'),
    ("qr", E.replace("||", "|12345|", 1),
     "QR old_id_number: '12345' is neither empty nor a 9- or 12-digit number"),
    ("qr", E.replace("Nguyễn Thị Mai", ""),
     'QR full_name: is empty'),
    ("qr", E.replace("Nguyễn Thị Mai", "Mai 2"),
     "QR full_name: 'Mai 2' contains digits"),
    ("qr", E.replace("1 Đường C, Phường A", " "),
     'QR address: is empty'),
    ("qr", E.replace("|Nữ|", "|Nữ\x07|"),
     "QR payload: control character '\\x07' inside the payload"),
    ("qr", "X" * 5000,
     'QR payload: payload of 5000 characters is longer than any QR code'),
    ("qr", "079303001234|Nguyen|2003-05-15|1|Q|E",
     "QR full_name: 'Nguyen' is not an upper-case name without diacritics"),
    ("qr", "ABC|NGUYEN THI MAI|2003-05-15|1|Q|E",
     "QR id_number: 'ABC' is not a 12-character (possibly masked) ID number"),
    ("qr", E.replace("079303001234", "079203001234", 1),
     'QR id_number.sex: sex digit 2 means M, but the sex given is F'),
    ("qr", E.replace("15052003", "15002003"),
     "QR date_of_birth: '15002003' gives a day but no month"),
    ("qr", E.replace("15052003", "132003"),
     "QR date_of_birth: '132003' is not a calendar date"),
    ("qr", E.replace("15052003", "2004"),
     "QR id_number.birth_year: birth-year digits 03 do not match the date of birth 2004"),
    ("code", "f47ac10b-58cc-4372-a567-0e02b2c3d47g",
     "QR payload: no '|' separators and not a UUID: not a card QR, a BHYT card QR or a VNeID "
     "identity token"),
    ("code", B.replace("|2|", "|0|"), "QR sex: '0' is not 1 (male) or 2 (female)"),
    ("code", B.replace("DN4797930012345", "079303001234"),
     "QR card_number: '079303001234' is neither a 15-character card number (2 letters, benefit "
     "level 1-5, 2-digit province, 10 digits) nor a 10-digit social-insurance number"),
    ("code", B.replace("3120c490", "312"), "QR address: is not the hexadecimal of UTF-8 text"),
    ("code", B.replace("3120c490", "310720"), "QR address: decodes to a control character"),
    ("code", B.replace("|-|", "|c3|"),
     "QR parent_name: hex decodes to bytes that are not UTF-8 (byte 0)"),
    ("code", B.replace("|4|", "|4|4|"), "QR parent_name: is not the hexadecimal of UTF-8 text"),
    ("code", B.replace("|$", "|"),
     "QR payload: starts like a BHYT card QR but does not end with '|$' (cut short?)"),
    ("mrz", (L1, "55<<<<" + L2[6:], L3),
     "MRZ date_of_birth_check: check digit is 2, computed 0 over '55<<<<'"),
    ("mrz", (L1, "<<05<<" + L2[6:], L3),
     "MRZ date_of_birth: '<<05<<' gives a day or month without what precedes it"),
    ("mrz", (L1[:29], L2, L3),
     'MRZ line1: has 29 characters, expected 30'),
    ("mrz", (L1, L2 + "<", L3),
     'MRZ line2: has 31 characters, expected 30'),
    ("mrz", (L1.lower(), L2, L3),
     "MRZ line1: character 'i' is not allowed (A-Z, 0-9, <)"),
    ("mrz", ("XD" + L1[2:], L2, L3),
     "MRZ document_code: 'XD' is not a TD1 document code (A, C or I)"),
    ("mrz", (L1, L2[:7] + "X" + L2[8:], L3),
     "MRZ sex: 'X' is not M, F or <"),
    ("mrz", (L1, "031315" + L2[6:], L3),
     "MRZ date_of_birth: '031315' is not a calendar date"),
    ("mrz", (L1, L2, "<" * 30),
     'MRZ name: name is empty'),
    ("mrz", (L1, L2, "NGUYEN<<THI<MAI1<<<<<<<<<<<<<<"),
     'MRZ name: name contains digits'),
    ("mrz", (L1[:27] + "AB" + L1[29:], L2, L3),
     "MRZ optional_data: positions 28-29 are 'AB', expected '<<'"),
    ("mrz", (L1[:15] + "07930300123A" + L1[27:], L2, L3),
     "MRZ id_number: '07930300123A' is not a 12-digit ID number"),
    ("dg13", b"",
     'DG13: is empty'),
    ("dg13", b"\x6e\x00",
     'DG13 tag: starts with tag 6E, expected 6D'),
    ("dg13", good[:-1],
     'DG13 tlv: value of tag 6D truncated: 59 bytes declared, 58 present at offset 0'),
    ("dg13", good + b"\x00",
     'DG13 tlv: 1 trailing bytes after tag 6D at offset 61'),
    ("dg13", bytes.fromhex("6D80"),
     'DG13 tlv: indefinite length not allowed at offset 1'),
    ("dg13", bytes.fromhex("6D8500000000"),
     'DG13 tlv: length field of 5 bytes is too long at offset 1'),
    ("dg13", encode_tlv(0x6D, encode_tlv(0x31, b"")),
     'DG13 structure: must hold exactly one SEQUENCE'),
    ("dg13", encode_tlv(0x6D, encode_tlv(0x30, encode_tlv(0x02, b"\x01"))),
     'DG13 structure: SEQUENCE must hold version, OID and the SET of fields'),
    ("dg13", dg13_bytes([encode_tlv(0x04, b"x")]),
     'DG13 entry 1: tag 04 in the SET, expected SEQUENCE (30)'),
    ("dg13", dg13_bytes([field(0, utf8("x"))]),
     'DG13 entry 1: field number 0 is out of range'),
    ("dg13", dg13_bytes([encode_tlv(0x30, b"")]),
     'DG13 entry 1: empty SEQUENCE'),
    ("dg13", dg13_bytes([field(2, encode_tlv(0x04, b"x"))]),
     'DG13 field 2: tag 04 is not a string type'),
    ("dg13", dg13_bytes([field(2, encode_tlv(0x0C, b"\xc3"))]),
     'DG13 field 2: string is not valid utf-8'),
    ("dg13", dg13_bytes([field(2, encode_tlv(0x30, encode_tlv(0x02, b"\x01")))]),
     'DG13 field 2: tag 02 is not a string type'),
    ("dg13", dg13_bytes([field(13, utf8("a"), utf8("b"), utf8("c"))]),
     'DG13 field 13: 3 parent names, at most 2 expected'),
    ("dg13", encode_tlv(0x6D, encode_tlv(0x30, encode_tlv(0x04, b"\x01") + encode_tlv(0x06, b"\x28") + encode_tlv(0x31, b""))),
     'DG13 version: tag 04 where the INTEGER version belongs'),
    ("dg13", encode_tlv(0x6D, encode_tlv(0x30, encode_tlv(0x02, b"\x01") + encode_tlv(0x06, b"\x28") + encode_tlv(0x30, b""))),
     'DG13 fields: tag 30 where the SET of fields belongs'),
]


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("kind", "data", "reason"), CASES)
def test_rejected_with_exact_reason(kind: str, data: Any, reason: str) -> None:
    with pytest.raises(CccdError) as err:
        PARSERS[kind](data)
    assert str(err.value) == reason


@pytest.mark.parametrize(("data", "reason"),
                         [(data, reason) for kind, data, reason in CASES if kind == "dg13"])
def test_dg13_lenient_names_the_same_problem(data: bytes, reason: str) -> None:
    """Read from a chip (not strict), a field-level problem is kept and named, never fatal; only
    what is not a DG13 at all still raises, with the same reason."""
    try:
        out = parse_dg13(data)
    except CccdError as exc:
        assert str(exc) == reason
        return
    assert any(reason.endswith(problem) for problem in out.problems), out.problems

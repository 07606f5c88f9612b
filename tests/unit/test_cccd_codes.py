"""Every scanned code told apart by shape: card QR, VNeID identity token, BHYT card QR
(docs/cccd.md §5); each parsed or refused with a reason, never confused, never a crash."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.cccd import (
    BhytCard,
    BirthDate,
    QrError,
    QrIdentity,
    Sex,
    VneidToken,
    code_format,
    parse_bhyt,
    read_code,
)
from edge_agent.cccd.bhyt import format_bhyt
from edge_agent.cccd.qr import format_card_qr

SETTINGS = settings(max_examples=300, deadline=500, suppress_health_check=[HealthCheck.too_slow])
CARD = "079303001234||Nguyễn Thị Mai|15052003|Nữ|1 Đường C, Phường A|20082021"
BHYT = format_bhyt("DN4797930012345", "Nguyễn Thị Mai", date(2003, 5, 15), Sex.FEMALE,
                   "1 Đường C, Phường A", "79 - 001", date(2025, 1, 1), date(2025, 12, 31),
                   date(2024, 12, 20), parent_name="Nguyễn Văn Bố",
                   five_years_from=date(2020, 1, 1))


def test_each_format_by_shape() -> None:
    token = "F47AC10B-58CC-4372-A567-0E02B2C3D479"
    cases = {CARD: "cccd", token: "vneid-token", token.replace("-", ""): "vneid-token",
             BHYT: "bhyt", "079303001234|Nguyễn Thị Mai|15/05/2003|Nữ|1 Đường C|20082021":
             "cccd-6", "************|NGUYEN THI MAI|2003-05-15|1|Q|E": "personal-qr"}
    for payload, fmt in cases.items():
        code = read_code(payload)
        assert code_format(code) == fmt, payload
        assert code.to_json()["format"] == fmt


def test_vneid_token_is_canonical_and_masked() -> None:
    token = read_code(b"\xef\xbb\xbfF47AC10B58CC4372A5670E02B2C3D479\r\n")
    assert isinstance(token, VneidToken)
    assert token.value == "f47ac10b-58cc-4372-a567-0e02b2c3d479"
    assert "f47ac10b" not in repr(token) and token.masked == "…d479"


def test_bhyt_fields() -> None:
    card = parse_bhyt(BHYT)
    assert card.full_name == "Nguyễn Thị Mai" and card.sex is Sex.FEMALE
    assert card.birth_date == BirthDate(2003, 5, 15)
    assert card.address == "1 Đường C, Phường A" and card.parent_name == "Nguyễn Văn Bố"
    assert (card.object_code, card.social_insurance_number) == ("DN", "7930012345")
    assert card.facility_code == "79001"
    assert card.valid_on(date(2025, 6, 1)) and not card.valid_on(date(2026, 1, 1))
    assert card.five_years_from == date(2020, 1, 1)


def test_bhyt_ten_character_number_partial_birth_date_and_extra_fields() -> None:
    payload = BHYT.replace("DN4797930012345", "7930012345").replace("15/05/2003", "2003")
    payload = payload[:-1] + "x|$"
    card = parse_bhyt(payload)
    assert card.card_number == "7930012345" and card.object_code is None
    assert card.birth_date == BirthDate(2003) and card.extra_fields == ("x",)


def test_bhyt_utf8_survives_a_scanner_charset_guess() -> None:
    """Hex-encoded names cannot be turned into Shift-JIS text by a scanner."""
    assert BHYT.isascii()


@pytest.mark.parametrize(("payload", "reason"), [
    (BHYT.replace("|$", "|"),
     "QR payload: starts like a BHYT card QR but does not end with '|$' (cut short?)"),
    ("1|2|$", "QR payload: 2 fields before '$'; a BHYT card QR has 14"),
    (BHYT.replace("DN479", "DN079"), "QR card_number: 'DN0797930012345' is neither a "
     "15-character card number (2 letters, benefit level 1-5, 2-digit province, 10 digits) "
     "nor a 10-digit social-insurance number"),
    (BHYT.replace("4e67", "4g67"), "QR full_name: is not the hexadecimal of UTF-8 text"),
    (BHYT.replace("4e677579", "ff677579"),
     "QR full_name: hex decodes to bytes that are not UTF-8 (byte 0)"),
    (BHYT.replace("|2|31", "|3|31"), "QR sex: '3' is not 1 (male) or 2 (female)"),
    (BHYT.replace("79 - 001", "79001x"),
     "QR facility: '79001x' is not a facility code like '46 - 001'"),
    (BHYT.replace("31/12/2025", "31/12/2024"), "QR valid_to: valid_to is before valid_from"),
    (BHYT.replace("01/01/2025", "32/01/2025"), "QR valid_from: '32/01/2025' is not a calendar "
     "date"),
    (BHYT.replace("a1b2-c3d4", "a1b2c3d4"),
     "QR checksum: 'a1b2c3d4' is not a checksum like 'xxxx-xxxx'"),
    (BHYT.replace("15/05/2003", "15/05/2026"),
     "QR issue_date: the card's dates are before the date of birth"),
    ("f47ac10b-58cc-4372-a567-0e02b2c3d47", "QR payload: no '|' separators and not a UUID: "
     "not a card QR, a BHYT card QR or a VNeID identity token"),
])
def test_refused_with_reason(payload: str, reason: str) -> None:
    with pytest.raises(QrError) as err:
        read_code(payload)
    assert str(err.value) == reason


# -- properties -------------------------------------------------------------------------------

@SETTINGS
@given(st.binary(max_size=600))
def test_any_bytes_parse_or_raise_qr_error(data: bytes) -> None:
    try:
        read_code(data)
    except QrError:
        pass


@SETTINGS
@given(st.lists(st.text(max_size=24), min_size=13, max_size=18))
def test_bhyt_field_soup_parses_or_raises_qr_error(parts: list[str]) -> None:
    try:
        code = read_code("|".join([*parts, "$"]))
    except QrError:
        return
    assert isinstance(code, BhytCard | QrIdentity)


@SETTINGS
@given(st.integers(0, 13), st.text(max_size=30))
def test_bhyt_one_field_mutated_parses_or_raises_qr_error(index: int, value: str) -> None:
    parts = BHYT.split("|")
    parts[index] = value
    try:
        code = read_code("|".join(parts))
    except QrError:
        return
    assert isinstance(code, BhytCard)  # a BHYT shape is never taken for a card QR


names = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạ ", min_size=1, max_size=40)\
    .map(lambda s: " ".join(s.split())).filter(bool)


@SETTINGS
@given(names, st.dates(date(1920, 1, 1), date(2020, 12, 31)), st.sampled_from(list(Sex)),
       st.sampled_from(["year", "month", "day"]), st.booleans())
def test_bhyt_round_trip(name: str, born: date, sex: Sex, known: str, ten: bool) -> None:
    birth = BirthDate(born.year, None if known == "year" else born.month,
                      born.day if known == "day" else None)
    number = "7930012345" if ten else "HT3797930012345"
    payload = format_bhyt(number, name, birth, sex, "Thôn 1", "46 - 001", date(2025, 1, 1),
                          date(2025, 12, 31), date(2024, 12, 1))
    card = read_code(payload)
    assert isinstance(card, BhytCard)
    assert (card.full_name, card.birth_date, card.sex, card.card_number) == (
        name, birth, sex, number)


@SETTINGS
@given(st.uuids(), st.booleans(), st.booleans())
def test_vneid_token_round_trip(value: uuid.UUID, upper: bool, hyphens: bool) -> None:
    text = str(value) if hyphens else value.hex
    token = read_code(text.upper() if upper else text)
    assert isinstance(token, VneidToken) and token.value == str(value)


@SETTINGS
@given(st.dates(date(1920, 1, 1), date(2010, 12, 31)), st.sampled_from(["year", "month"]))
def test_partial_card_qr_round_trip(born: date, known: str) -> None:
    birth = BirthDate(born.year, born.month if known == "month" else None)
    digit = "0" if born.year < 2000 else "2"
    id_number = f"001{digit}{born.year % 100:02d}012345"
    payload = format_card_qr(id_number, "Trần Văn An", birth, Sex.MALE, "Thôn 1",
                             date(2021, 8, 20))
    qr = read_code(payload)
    assert isinstance(qr, QrIdentity) and qr.birth_date == birth
    assert all(k.date_of_birth == birth.mrz_text() for k in qr.bac_candidates)

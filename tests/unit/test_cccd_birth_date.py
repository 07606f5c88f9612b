"""Partial dates of birth (docs/cccd.md §5): the type, age bands, the flows and the gateway."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.cccd import CccdError, QrError, Sex, check_digit, parse_td1
from edge_agent.cccd.dates import BirthDate, DatePrecision, parse_birth_date
from edge_agent.cccd.mrz import build_td1
from edge_agent.events.model import age_band
from edge_agent.reading import KeyMaterial
from firmware_sim.insurance_gateway import InsuranceGateway, InsuranceRecord


@pytest.mark.parametrize(("text", "expected"), [
    ("1955", BirthDate(1955)), ("091955", BirthDate(1955, 9)), ("09/1955", BirthDate(1955, 9)),
    ("02091955", BirthDate(1955, 9, 2)), ("02/09/1955", BirthDate(1955, 9, 2)),
    ("00001955", BirthDate(1955)), ("00/09/1955", BirthDate(1955, 9)),
])
def test_forms(text: str, expected: BirthDate) -> None:
    assert parse_birth_date(text, "dob", QrError) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("195", "'195' is not a date of birth in the form yyyy, mmyyyy, ddmmyyyy or dd/mm/yyyy"),
    ("131955", "'131955' is not a calendar date"),
    ("30021955", "'30021955' is not a calendar date"),
    ("02001955", "'02001955' gives a day but no month"),
    ("0000", "'0000' has no year"),
])
def test_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(CccdError) as err:
        parse_birth_date(text, "dob", QrError)
    assert err.value.reason == reason


def test_what_is_known() -> None:
    year, month, full = BirthDate(1955), BirthDate(2001, 2), BirthDate(2003, 5, 15)
    assert [b.precision for b in (year, month, full)] == [DatePrecision.YEAR,
                                                          DatePrecision.MONTH, DatePrecision.DAY]
    assert (year.full, month.full, full.full) == (None, None, date(2003, 5, 15))
    assert (year.earliest, year.latest) == (date(1955, 1, 1), date(1955, 12, 31))
    assert (month.earliest, month.latest) == (date(2001, 2, 1), date(2001, 2, 28))
    assert [b.mrz_text() for b in (year, month, full)] == ["55<<<<", "0102<<", "030515"]
    assert [b.isoformat() for b in (year, month, full)] == ["1955", "2001-02", "2003-05-15"]
    assert year.agrees_with(date(1955, 7, 1)) and not month.agrees_with(date(2001, 3, 1))


def test_age_band_of_a_year_only_person_assumes_1_january() -> None:
    # Born "1966": 59 on 31 December 2025, 60 from 1 January 2026 (the documented assumption).
    assert age_band(BirthDate(1966), date(2025, 12, 31)) == "45-59"
    assert age_band(BirthDate(1966), date(2026, 1, 1)) == "60+"
    assert age_band(BirthDate(1966, 6), date(2026, 5, 31)) == "45-59"
    assert age_band(BirthDate(1966, 6), date(2026, 6, 1)) == "60+"


def test_gateway_matches_a_partial_date_of_birth() -> None:
    record = InsuranceRecord("001055012345", "Trần Văn An", date(1955, 1, 1), "HT3010550123451",
                             date(2030, 12, 31))
    gateway = InsuranceGateway([record], today=date(2026, 1, 1)).start()
    try:
        for dob, status in (("1955", "valid"), ("1955-01", "valid"), ("1956", "invalid"),
                            ("1955-02", "invalid")):
            code, body = gateway.answer({"id_number": "001055012345",
                                         "full_name": "Trần Văn An", "date_of_birth": dob})
            assert (code, body["status"]) == (200, status), dob
        code, body = gateway.answer({"id_number": "001055012345", "full_name": "Trần Văn An",
                                     "date_of_birth": "55"})
        assert code == 400
    finally:
        gateway.stop()


@settings(max_examples=300, deadline=500)
@given(st.text(alphabet="0123456789/", max_size=12))
def test_any_digits_and_slashes_parse_or_raise_qr_error(text: str) -> None:
    try:
        birth = parse_birth_date(text, "dob", QrError)
    except QrError:
        return
    assert birth.earliest <= birth.latest
    assert parse_birth_date(birth.qr_text(), "dob", QrError) == birth


@pytest.mark.parametrize(("birth", "line2_dob"), [(BirthDate(1955), "55<<<<"),
                                                  (BirthDate(1955, 9), "5509<<")])
def test_mrz_writes_unknown_parts_as_filler_and_checks_them(birth: BirthDate,
                                                            line2_dob: str) -> None:
    lines = build_td1("046055012345", birth, Sex.MALE, None, "Lê", "Văn An")
    assert lines[1].startswith(line2_dob + check_digit(line2_dob))
    mrz = parse_td1(*lines)
    assert mrz.birth_date == birth and mrz.date_of_birth == birth.earliest
    assert mrz.to_json()["date_of_birth"] == birth.isoformat()
    key = KeyMaterial.from_mrz(*lines).bac_keys[0]
    assert key.date_of_birth == line2_dob  # the BAC key uses the field as printed
    assert key.mrz_information[10:17] == line2_dob + check_digit(line2_dob)


def test_mrz_with_the_whole_date_unknown_takes_the_year_from_the_id() -> None:
    lines = build_td1("046055012345", BirthDate(1955), Sex.MALE, None, "Lê", "Văn An")
    unknown = "<<<<<<" + check_digit("<<<<<<")
    line2 = unknown + lines[1][7:29]
    composite = lines[0][5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    mrz = parse_td1(lines[0], line2 + check_digit(composite), lines[2])
    assert mrz.birth_date == BirthDate(1955)

"""TD1 MRZ (ICAO 9303-3 §4.9, 9303-5 §4.2; docs/cccd.md §3)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import MrzError, Sex, check_digit, parse_td1
from edge_agent.cccd.mrz import build_td1, mrz_information, mrz_name, split_lines

EXAMPLE = ("IDVNM3030012342079303001234<<2", "0305152F2805151VNM<<<<<<<<<<<0",
           "NGUYEN<<THI<MAI<<<<<<<<<<<<<<<")


def test_example_from_cccd_md() -> None:
    mrz = parse_td1(*EXAMPLE)
    assert mrz.to_json() == {
        "document_code": "ID", "issuing_state": "VNM", "document_number": "303001234",
        "id_number": "079303001234", "date_of_birth": "2003-05-15",
            "date_of_birth_known": "day", "sex": "F",
        "date_of_expiry": "2028-05-15", "nationality": "VNM", "surname": "NGUYEN",
        "given_names": "THI MAI",
    }


@pytest.mark.parametrize(
    ("text", "digit"),
    [("L898902C<", "3"), ("690806", "1"), ("940623", "6"), ("D23145890", "7"),
     ("", "0"), ("<<<<", "0"), ("AB2134<<<", "5")],
)
def test_check_digit_icao_examples(text: str, digit: str) -> None:
    assert check_digit(text) == digit


def test_icao_td1_specimen_without_vietnamese_optional_data() -> None:
    mrz = parse_td1("I<UTOD231458907<<<<<<<<<<<<<<<", "7408122F1204159UTO<<<<<<<<<<<6",
                    "ERIKSSON<<ANNA<MARIA<<<<<<<<<<", today=date(2026, 1, 1))
    assert mrz.document_number == "D23145890"
    assert mrz.id_number is None
    assert mrz.date_of_birth == date(1974, 8, 12)
    assert mrz.surname == "ERIKSSON" and mrz.given_names == "ANNA MARIA"


def test_no_expiry() -> None:
    lines = build_td1("001058012345", date(1958, 3, 1), Sex.MALE, None, "TRAN", "VAN AN")
    mrz = parse_td1(*lines)
    assert mrz.date_of_expiry is None
    assert lines[1][8:14] == "991231"
    assert mrz.to_json()["date_of_expiry"] is None


def test_century_comes_from_the_id_number() -> None:
    old = build_td1("001025012345", date(1925, 6, 1), Sex.MALE, None, "LE", "VAN BA")
    assert parse_td1(*old).date_of_birth == date(1925, 6, 1)
    young = build_td1("001225012345", date(2025, 6, 1), Sex.MALE, date(2039, 6, 1), "LE", "BA")
    assert parse_td1(*young).date_of_birth == date(2025, 6, 1)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ((EXAMPLE[0][:14] + "9" + EXAMPLE[0][15:], *EXAMPLE[1:]), "document_number_check"),
        ((EXAMPLE[0][:29] + "5", *EXAMPLE[1:]), "id_number_check"),
        ((EXAMPLE[0], "0305153" + EXAMPLE[1][7:], EXAMPLE[2]), "date_of_birth_check"),
        ((EXAMPLE[0], EXAMPLE[1][:14] + "0" + EXAMPLE[1][15:], EXAMPLE[2]),
         "date_of_expiry_check"),
        ((EXAMPLE[0], EXAMPLE[1][:29] + "1", EXAMPLE[2]), "composite_check"),
        ((EXAMPLE[0], EXAMPLE[1][:7] + "M" + EXAMPLE[1][8:], EXAMPLE[2]), "id_number.sex"),
    ],
)
def test_each_check_digit_names_its_field(lines: tuple[str, str, str], field: str) -> None:
    with pytest.raises(MrzError) as err:
        parse_td1(*lines)
    assert err.value.field == field


def test_document_number_must_be_last_nine_digits_of_the_id() -> None:
    number = "303001235"
    line1 = "IDVNM" + number + check_digit(number) + "079303001234<<2"
    line2 = EXAMPLE[1][:29] + check_digit(line1[5:30] + EXAMPLE[1][0:7] + EXAMPLE[1][8:15]
                                          + EXAMPLE[1][18:29])
    with pytest.raises(MrzError) as err:
        parse_td1(line1, line2, EXAMPLE[2])
    assert err.value.field == "document_number"


def test_mrz_information_is_the_bac_key_input() -> None:
    assert mrz_information("L898902C", "690806", "940623") == "L898902C<369080619406236"


def test_split_lines_accepts_one_blob_or_three_lines() -> None:
    assert split_lines("".join(EXAMPLE)) == EXAMPLE
    assert split_lines("\n".join(EXAMPLE) + "\n") == EXAMPLE


def test_names_lose_diacritics() -> None:
    assert mrz_name("Đặng Thị Ánh") == "DANG<THI<ANH"

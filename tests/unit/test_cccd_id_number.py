"""The 12-digit personal ID number (docs/cccd.md §1)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import IdNumberError, Sex, mask_id, parse_id_number
from edge_agent.cccd.provinces import PROVINCES, province_name


def test_example_from_the_card() -> None:
    number = parse_id_number("079303001234", date_of_birth=date(2003, 5, 15), sex=Sex.FEMALE)
    assert number.province_code == "079"
    assert number.province_name == "TP Hồ Chí Minh"
    assert number.century == 2000
    assert number.sex is Sex.FEMALE
    assert number.birth_year == 2003
    assert number.document_number == "303001234"
    assert number.can == "001234"


@pytest.mark.parametrize(
    ("digit", "century", "sex"),
    [("0", 1900, Sex.MALE), ("1", 1900, Sex.FEMALE), ("2", 2000, Sex.MALE),
     ("3", 2000, Sex.FEMALE), ("4", 2100, Sex.MALE), ("5", 2100, Sex.FEMALE),
     ("6", 2200, Sex.MALE), ("7", 2200, Sex.FEMALE), ("8", 2300, Sex.MALE),
     ("9", 2300, Sex.FEMALE)],
)
def test_century_and_sex_digit(digit: str, century: int, sex: Sex) -> None:
    number = parse_id_number(f"001{digit}85123456")
    assert number.century == century
    assert number.sex is sex
    assert number.birth_year == century + 85


def test_unknown_province_is_allowed_and_informative() -> None:
    number = parse_id_number("999085123456")
    assert number.province_name is None
    assert province_name("001") == "Hà Nội"
    assert len(PROVINCES) == 63


def test_birth_year_checked_against_date_of_birth() -> None:
    with pytest.raises(IdNumberError) as err:
        parse_id_number("001085123456", date_of_birth=date(1986, 1, 1))
    assert err.value.field == "id_number.birth_year"


def test_century_checked_against_date_of_birth() -> None:
    with pytest.raises(IdNumberError) as err:
        parse_id_number("001285123456", date_of_birth=date(1985, 1, 1))
    assert err.value.field == "id_number.century"


def test_sex_checked_when_known() -> None:
    with pytest.raises(IdNumberError) as err:
        parse_id_number("001085123456", sex=Sex.FEMALE)
    assert err.value.field == "id_number.sex"


@pytest.mark.parametrize(
    ("text", "masked"),
    [("079303001234", "********1234"), ("123456789", "*****6789"), ("1234", "****"),
     ("12", "**"), ("", "")],
)
def test_mask_keeps_only_last_four(text: str, masked: str) -> None:
    assert mask_id(text) == masked


def test_repr_and_str_never_show_the_full_number() -> None:
    number = parse_id_number("079303001234")
    assert "0793030" not in repr(number)
    assert str(number) == "********1234"

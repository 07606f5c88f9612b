"""DG13 (CCCD.md §4)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import Dg13Error, Sex, parse_dg13
from tests.synthetic import Person, dg13_bytes, dg13_for, field, printable, utf8

PERSON = Person("079303001234", "Nguyễn", "Thị", "Mai", Sex.FEMALE, date(2003, 5, 15),
                date(2021, 8, 20), "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh", "123456789")


@pytest.mark.parametrize("layout", ["nested", "siblings"])
def test_both_parent_layouts(layout: str) -> None:
    dg13 = parse_dg13(dg13_for(PERSON, layout=layout))
    assert dg13.father_name == "Nguyễn Văn Bố"
    assert dg13.mother_name == "Trần Thị Mẹ"


def test_all_fields_to_json() -> None:
    out = parse_dg13(dg13_for(PERSON, spouse="Lê Văn Chồng")).to_json()
    assert out == {
        "id_number": "079303001234",
        "full_name": "Nguyễn Thị Mai",
        "date_of_birth": "2003-05-15",
        "sex": "F",
        "nationality": "Việt Nam",
        "ethnicity": "Kinh",
        "religion": "Không",
        "place_of_origin": "Xã Thanh Bình, Huyện Thanh Hà, Hải Dương",
        "residence": "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh",
        "identifying_marks": "Nốt ruồi C:1cm trên trước mép trái",
        "issue_date": "2021-08-20",
        "valid_until": "Không thời hạn",
        "father_name": "Nguyễn Văn Bố",
        "mother_name": "Trần Thị Mẹ",
        "spouse_name": "Lê Văn Chồng",
        "old_id_number": "123456789",
        "unknown_fields": {},
    }


def test_spouse_only_integer_means_none() -> None:
    assert parse_dg13(dg13_for(PERSON)).spouse_name is None


def test_valid_until_as_date() -> None:
    fields = [field(1, printable("079303001234")), field(12, utf8("15/05/2028"))]
    assert parse_dg13(dg13_bytes(fields)).to_json()["valid_until"] == "2028-05-15"


def test_unknown_fields_kept_raw() -> None:
    extra = [field(16, utf8("x")), field(42, bytes.fromhex("0401FF"))]
    out = parse_dg13(dg13_for(PERSON, extra=extra))
    assert out.unknown_fields == {16: bytes.fromhex("0C0178"), 42: bytes.fromhex("0401FF")}
    assert out.to_json()["unknown_fields"] == {"16": "0c0178", "42": "0401ff"}


def test_empty_or_absent_old_id() -> None:
    person = Person(**{**PERSON.__dict__, "old_id_number": ""})
    assert parse_dg13(dg13_for(person)).old_id_number is None
    assert parse_dg13(dg13_bytes([field(1, printable("079303001234"))])).old_id_number is None


def test_raw_bytes_are_kept_for_hashing() -> None:
    data = dg13_for(PERSON)
    assert parse_dg13(data).raw == data


def test_duplicate_field_rejected() -> None:
    with pytest.raises(Dg13Error, match="appears twice"):
        parse_dg13(dg13_bytes([field(2, utf8("A")), field(2, utf8("B"))]))

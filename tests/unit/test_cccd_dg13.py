"""DG13 (docs/cccd.md §4)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import Dg13Error, Sex, parse_dg13
from edge_agent.icao.tlv import encode_tlv
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
        "field_16": None,
        "unknown_fields": {},
        "problems": [],
    }


def test_spouse_only_integer_means_none() -> None:
    assert parse_dg13(dg13_for(PERSON)).spouse_name is None


def test_valid_until_as_date() -> None:
    fields = [field(1, printable("079303001234")), field(12, utf8("15/05/2028"))]
    assert parse_dg13(dg13_bytes(fields)).to_json()["valid_until"] == "2028-05-15"


def test_unknown_fields_kept_raw() -> None:
    extra = [field(17, utf8("x")), field(42, bytes.fromhex("0401FF"))]
    out = parse_dg13(dg13_for(PERSON, extra=extra))
    assert out.unknown_fields == {17: bytes.fromhex("0C0178"), 42: bytes.fromhex("0401FF")}
    assert out.to_json()["unknown_fields"] == {"17": "0c0178", "42": "0401ff"}
    # 42 holds an OCTET STRING, not a string: kept raw and named, never fatal.
    assert out.problems == ("field 42: tag 04 is not a string type",)


def test_empty_or_absent_old_id() -> None:
    person = Person(**{**PERSON.__dict__, "old_id_number": ""})
    assert parse_dg13(dg13_for(person)).old_id_number is None
    assert parse_dg13(dg13_bytes([field(1, printable("079303001234"))])).old_id_number is None


def test_raw_bytes_are_kept_for_hashing() -> None:
    data = dg13_for(PERSON)
    assert parse_dg13(data).raw == data


def test_duplicate_field_rejected_when_strict_and_named_otherwise() -> None:
    data = dg13_bytes([field(2, utf8("A")), field(2, utf8("B"))])
    with pytest.raises(Dg13Error, match="appears twice"):
        parse_dg13(data, strict=True)
    out = parse_dg13(data)
    assert out.full_name == "A" and out.problems == ("field 2: appears twice",)


# -- layouts seen on real chips (docs/cccd.md §4) --------------------------------------------

def _seq(*items: bytes) -> bytes:
    return encode_tlv(0x30, b"".join(items))


def test_spouse_nested_as_on_real_chips() -> None:
    """Field 14 as ``30 {02 01 0E, 30 {0C name}}``: once refused as "tag 30 is not a string"."""
    data = dg13_bytes([field(1, printable("079303001234")),
                       field(14, _seq(utf8("Lê Văn Chồng")))])
    out = parse_dg13(data, strict=True)
    assert out.spouse_name == "Lê Văn Chồng" and out.problems == ()


@pytest.mark.parametrize("spouse_field", [[], [field(14)], [field(14, _seq())]],
                         ids=["absent", "integer-only", "empty-sequence"])
def test_single_person_has_no_spouse(spouse_field: list[bytes]) -> None:
    out = parse_dg13(dg13_bytes([field(1, printable("079303001234")), *spouse_field]),
                     strict=True)
    assert out.spouse_name is None


def test_values_nested_at_any_depth_collect_string_leaves_in_order() -> None:
    deep = _seq(_seq(utf8("Nguyễn Văn Bố")), _seq(_seq(_seq(utf8("Trần Thị Mẹ")))))
    out = parse_dg13(dg13_bytes([field(1, printable("079303001234")), field(13, deep),
                                 field(9, _seq(utf8("1 Đường C")))]), strict=True)
    assert (out.father_name, out.mother_name) == ("Nguyễn Văn Bố", "Trần Thị Mẹ")
    assert out.residence == "1 Đường C"


def test_field_16_and_absent_old_id() -> None:
    out = parse_dg13(dg13_bytes([field(1, printable("079303001234")),
                                 field(16, utf8("A1B2C3D4E5F6G7H8"))]), strict=True)
    assert out.field_16 == "A1B2C3D4E5F6G7H8"
    assert out.old_id_number is None
    assert out.to_json()["field_16"] == "A1B2C3D4E5F6G7H8"


def test_too_deep_nesting_is_a_problem_not_a_crash() -> None:
    value = utf8("x")
    for _ in range(12):
        value = _seq(value)
    data = dg13_bytes([field(1, printable("079303001234")), field(2, value)])
    out = parse_dg13(data)
    assert out.id_number == "079303001234" and out.full_name is None
    assert out.problems == ("field 2: nested deeper than 8 levels",)


@pytest.mark.parametrize(("text", "iso"), [("1955", "1955"), ("09/2001", "2001-09"),
                                          ("00/00/1955", "1955"), ("00/09/2001", "2001-09"),
                                          ("15/05/2003", "2003-05-15")])
def test_partial_date_of_birth(text: str, iso: str) -> None:
    out = parse_dg13(dg13_bytes([field(1, printable("079303001234")), field(3, utf8(text))]))
    birth = out.birth_date()
    assert birth is not None and birth.isoformat() == iso
    assert out.to_json()["date_of_birth"] == iso

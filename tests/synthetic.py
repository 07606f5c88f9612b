"""Synthetic people for tests: never a real person. Hypothesis strategies and DG13 builders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import strategies as st

from edge_agent.cccd.id_number import Sex
from edge_agent.icao.tlv import encode_tlv

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
            "Đỗ", "Hồ", "Ngô", "Dương", "Lý"]
MIDDLE = ["Văn", "Thị", "Hữu", "Minh", "Ngọc", "Đức", "Thu", "Quốc", "Thanh"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Lan", "Mai", "Nam", "Phúc",
         "Quỳnh", "Sơn", "Trang", "Tuấn", "Yến", "Đào", "Ánh"]
PROVINCE_CODES = ["001", "031", "046", "048", "079", "092", "999"]
STREETS = ["Đường Lê Lợi", "Phố Hàng Bạc", "Đường Trần Hưng Đạo", "Ngõ 12 Phố Huế"]


@dataclass(frozen=True)
class Person:
    """A synthetic citizen."""

    id_number: str
    surname: str
    middle: str
    given: str
    sex: Sex
    date_of_birth: date
    issue_date: date
    address: str
    old_id_number: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.surname} {self.middle} {self.given}"

    @property
    def given_names(self) -> str:
        return f"{self.middle} {self.given}"


def id_for(province: str, born: date, sex: Sex, serial: int) -> str:
    digit = (born.year // 100 - 19) * 2 + (0 if sex is Sex.MALE else 1)
    return f"{province}{digit}{born.year % 100:02d}{serial:06d}"


@st.composite
def people(draw: st.DrawFn, min_age_at_issue: int = 0) -> Person:
    sex = draw(st.sampled_from([Sex.MALE, Sex.FEMALE]))
    born = draw(st.dates(min_value=date(1930, 1, 1), max_value=date(2023, 12, 31)))
    issued = draw(st.dates(min_value=max(born + timedelta(days=365 * min_age_at_issue),
                                         date(2016, 1, 1)),
                           max_value=date(2026, 11, 1)))
    old = draw(st.sampled_from(["", "", f"{draw(st.integers(10**8, 10**9 - 1))}"]))
    return Person(
        id_number=id_for(draw(st.sampled_from(PROVINCE_CODES)), born, sex,
                         draw(st.integers(0, 999_999))),
        surname=draw(st.sampled_from(SURNAMES)),
        middle=draw(st.sampled_from(MIDDLE)),
        given=draw(st.sampled_from(GIVEN)),
        sex=sex,
        date_of_birth=born,
        issue_date=issued,
        address=f"{draw(st.integers(1, 300))} {draw(st.sampled_from(STREETS))}, Hà Nội",
        old_id_number=old,
    )


def utf8(text: str) -> bytes:
    return encode_tlv(0x0C, text.encode("utf-8"))


def printable(text: str) -> bytes:
    return encode_tlv(0x13, text.encode("ascii"))


def field(number: int, *values: bytes) -> bytes:
    return encode_tlv(0x30, encode_tlv(0x02, bytes([number])) + b"".join(values))


def dg13_bytes(fields: list[bytes], *, version: bytes = b"\x01",
               oid: bytes = bytes.fromhex("28D316010008")) -> bytes:
    body = encode_tlv(0x02, version) + encode_tlv(0x06, oid) + encode_tlv(0x31, b"".join(fields))
    return encode_tlv(0x6D, encode_tlv(0x30, body))


def dg13_for(person: Person, *, layout: str = "nested", spouse: str | None = None,
             father: str = "Nguyễn Văn Bố", mother: str = "Trần Thị Mẹ",
             extra: list[bytes] | None = None) -> bytes:
    """A DG13 as the card writes it; ``layout`` picks the field-13 form."""
    fields = [
        field(1, printable(person.id_number)),
        field(2, utf8(person.full_name)),
        field(3, utf8(person.date_of_birth.strftime("%d/%m/%Y"))),
        field(4, utf8("Nam" if person.sex is Sex.MALE else "Nữ")),
        field(5, utf8("Việt Nam")),
        field(6, utf8("Kinh")),
        field(7, utf8("Không")),
        field(8, utf8("Xã Thanh Bình, Huyện Thanh Hà, Hải Dương")),
        field(9, utf8(person.address)),
        field(10, utf8("Nốt ruồi C:1cm trên trước mép trái")),
        field(11, utf8(person.issue_date.strftime("%d/%m/%Y"))),
        field(12, utf8("Không thời hạn")),
    ]
    if layout == "nested":
        fields.append(field(13, encode_tlv(0x30, utf8(father) + utf8(mother))))
    else:
        fields += [field(13, utf8(father)), field(13, utf8(mother))]
    fields.append(field(14, utf8(spouse)) if spouse else field(14))
    fields.append(field(15, printable(person.old_id_number)))
    fields.extend(extra or [])
    return dg13_bytes(fields)

"""Synthetic Vietnamese people (never real persons), reproducible from a seed.

The 12-digit number follows docs/cccd.md §1 (``PPP G YY RRRRRR``: G encodes century and sex); the
card's expiry follows docs/cccd.md §6 (Law 59/2014 milestones 25/40/60 for cards issued before
2024-07-01, Law 26/2023 milestones 14/25/40/60 after; a card issued within 2 years before a
milestone runs to the next one; none left → ``991231``).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

REFERENCE_DATE = date(2026, 1, 1)
MIN_VALIDITY = timedelta(days=4 * 365)
LAW_2023_START = date(2024, 7, 1)

PROVINCES = {
    "001": "Hà Nội",
    "022": "Quảng Ninh",
    "031": "Hải Phòng",
    "036": "Nam Định",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "052": "Bình Định",
    "056": "Khánh Hòa",
    "066": "Đắk Lắk",
    "068": "Lâm Đồng",
    "075": "Đồng Nai",
    "079": "TP Hồ Chí Minh",
    "092": "Cần Thơ",
    "096": "Cà Mau",
}
SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MALE_MIDDLE = ["Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Xuân"]
FEMALE_MIDDLE = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Kim", "Phương", "Hồng"]
MALE_GIVEN = [
    "Anh",
    "Bảo",
    "Cường",
    "Dũng",
    "Đạt",
    "Hải",
    "Hùng",
    "Khánh",
    "Long",
    "Nam",
    "Phúc",
    "Quân",
    "Sơn",
    "Thắng",
    "Tuấn",
    "Việt",
]
FEMALE_GIVEN = [
    "An",
    "Chi",
    "Dung",
    "Giang",
    "Hà",
    "Hạnh",
    "Hương",
    "Lan",
    "Linh",
    "Mai",
    "Ngân",
    "Nhung",
    "Oanh",
    "Quyên",
    "Thảo",
    "Trang",
    "Yến",
]
STREETS = [
    "Lê Lợi",
    "Trần Hưng Đạo",
    "Nguyễn Huệ",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Điện Biên Phủ",
    "Phan Chu Trinh",
    "Quang Trung",
]
ETHNICITIES = ["Kinh"] * 8 + ["Tày", "Thái", "Mường", "Khmer", "Hoa"]
RELIGIONS = ["Không"] * 6 + ["Phật giáo", "Công giáo"]
MARKS = [
    "Nốt ruồi C:2cm trên trước đầu mày trái",
    "Sẹo chấm C:1cm dưới sau đuôi mắt phải",
    "Nốt ruồi C:3cm dưới trước cánh mũi phải",
]


@dataclass(frozen=True, slots=True)
class Person:
    """A synthetic citizen and the data printed on / stored in their card."""

    id_number: str
    full_name: str
    date_of_birth: date
    sex: str  # "Nam" | "Nữ"
    nationality: str
    ethnicity: str
    religion: str
    place_of_origin: str
    residence: str
    identifying_marks: str
    issue_date: date
    expiry: date | None  # None = no expiry (991231)
    father: str
    mother: str
    spouse: str | None
    old_id: str | None
    dob_known: str = "day"
    """Which parts of the date of birth are printed: ``day`` (all), ``month`` (month and year)
    or ``year``; ``date_of_birth`` is then the first day of the known period (docs/cccd.md §5)."""

    @property
    def can(self) -> str:
        """CAN = the last 6 digits of the ID number (docs/cccd.md §2)."""
        return self.id_number[-6:]

    @property
    def dob_qr(self) -> str:
        """Date of birth as the card QR prints it: ``ddmmyyyy``, ``mmyyyy`` or ``yyyy``."""
        d = self.date_of_birth
        return {"day": f"{d.day:02d}{d.month:02d}{d.year:04d}",
                "month": f"{d.month:02d}{d.year:04d}"}.get(self.dob_known, f"{d.year:04d}")

    @property
    def dob_dg13(self) -> str:
        """Date of birth as DG13 field 3 holds it: ``dd/mm/yyyy``, ``mm/yyyy`` or ``yyyy``."""
        d = self.date_of_birth
        return {"day": f"{d.day:02d}/{d.month:02d}/{d.year:04d}",
                "month": f"{d.month:02d}/{d.year:04d}"}.get(self.dob_known, f"{d.year:04d}")

    @property
    def dob_mrz(self) -> str:
        """Date of birth in the MRZ: ``YYMMDD``, unknown parts as filler (ICAO 9303-3)."""
        d = self.date_of_birth
        return {"day": d.strftime("%y%m%d"), "month": d.strftime("%y%m") + "<<"}.get(
            self.dob_known, d.strftime("%y") + "<<<<")

    @property
    def expiry_yymmdd(self) -> str:
        """Expiry for the MRZ (``991231`` when none)."""
        return self.expiry.strftime("%y%m%d") if self.expiry else "991231"

    def to_json(self) -> dict[str, Any]:
        """JSON-able dict (dates ISO 8601)."""
        d = asdict(self)
        for k in ("date_of_birth", "issue_date", "expiry"):
            d[k] = d[k].isoformat() if d[k] else None
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Person:
        """Inverse of :meth:`to_json`."""
        data = dict(d)
        for k in ("date_of_birth", "issue_date", "expiry"):
            data[k] = date.fromisoformat(data[k]) if data[k] else None
        return cls(**data)


def birthday(dob: date, age: int) -> date:
    """The birthday at ``age``; 29 February falls back to 28 February in common years."""
    try:
        return dob.replace(year=dob.year + age)
    except ValueError:
        return date(dob.year + age, 2, 28)


def expiry_for(dob: date, issue: date) -> date | None:
    """Card expiry per docs/cccd.md §6; None means no expiry (MRZ ``991231``)."""
    milestones = (14, 25, 40, 60) if issue >= LAW_2023_START else (25, 40, 60)
    for m in milestones:
        b = birthday(dob, m)
        if issue < birthday(dob, m - 2):
            return b
    return None


def century_sex_digit(dob: date, sex: str) -> str:
    """G of ``PPP G YY RRRRRR``: 0/1 for 1900s, 2/3 for 2000s, ... (male/female)."""
    base = (dob.year // 100 - 19) * 2
    return str(base + (1 if sex == "Nữ" else 0))


def _random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randrange(max(1, (end - start).days + 1)))


def _name(rng: random.Random, female: bool) -> str:
    middle = FEMALE_MIDDLE if female else MALE_MIDDLE
    given = FEMALE_GIVEN if female else MALE_GIVEN
    return f"{rng.choice(SURNAMES)} {rng.choice(middle)} {rng.choice(given)}"


def _address(rng: random.Random) -> str:
    province = rng.choice(list(PROVINCES.values()))
    return f"{rng.randint(1, 299)} {rng.choice(STREETS)}, Phường {rng.randint(1, 15)}, {province}"


def make_person(rng: random.Random, as_of: date = REFERENCE_DATE,
                partial_dob: float = 0.0) -> Person:
    """One synthetic person whose card was issued by ``as_of`` and is valid 4 years beyond it.

    ``as_of`` is fixed by default so that a seed always gives the same people. ``partial_dob``
    is the share of people whose birth day (or day and month) is unknown; at 0 (the default) no
    random draw is spent on it, so existing seeds give the same people.
    """
    while True:
        person = _draw_person(rng, as_of, partial_dob)
        if person.expiry is None or person.expiry >= as_of + MIN_VALIDITY:
            return person


def _draw_person(rng: random.Random, as_of: date, partial_dob: float = 0.0) -> Person:
    sex = rng.choice(["Nam", "Nữ"])
    female = sex == "Nữ"
    dob = _random_date(rng, date(1945, 1, 1), date(as_of.year - 15, 12, 31))
    dob_known = "day"
    if partial_dob > 0 and rng.random() < partial_dob:
        dob_known = rng.choice(["year", "month"])
        dob = date(dob.year, 1 if dob_known == "year" else dob.month, 1)
    province = rng.choice(list(PROVINCES))
    id_number = (
        province
        + century_sex_digit(dob, sex)
        + f"{dob.year % 100:02d}"
        + (f"{rng.randrange(10**6):06d}")
    )
    earliest = max(birthday(dob, 14), date(2016, 1, 1))
    issue, expiry = as_of, expiry_for(dob, as_of)
    for _ in range(20):
        cand = _random_date(rng, earliest, as_of - timedelta(days=7))
        exp = expiry_for(dob, cand)
        if exp is None or exp >= as_of + MIN_VALIDITY:
            issue, expiry = cand, exp
            break
    surname = _name(rng, False).split()[0]
    father = f"{surname} {rng.choice(MALE_MIDDLE)} {rng.choice(MALE_GIVEN)}"
    mother = _name(rng, True)
    age = as_of.year - dob.year
    spouse = _name(rng, not female) if age > 24 and rng.random() < 0.6 else None
    old_id = f"{rng.randrange(10**9):09d}" if dob.year < 2000 and rng.random() < 0.5 else None
    origin_province = PROVINCES[province]
    middle = FEMALE_MIDDLE if female else MALE_MIDDLE
    given = FEMALE_GIVEN if female else MALE_GIVEN
    full_name = f"{surname} {rng.choice(middle)} {rng.choice(given)}"
    return Person(
        id_number=id_number,
        full_name=full_name,
        date_of_birth=dob,
        sex=sex,
        nationality="Việt Nam",
        ethnicity=rng.choice(ETHNICITIES),
        religion=rng.choice(RELIGIONS),
        place_of_origin=f"Xã {rng.choice(STREETS)}, {origin_province}",
        residence=_address(rng),
        identifying_marks=rng.choice(MARKS),
        issue_date=issue,
        expiry=expiry,
        father=father,
        mother=mother,
        spouse=spouse,
        old_id=old_id,
        dob_known=dob_known,
    )


def make_people(count: int, seed: int = 0, as_of: date = REFERENCE_DATE,
                partial_dob: float = 0.0) -> list[Person]:
    """``count`` reproducible synthetic people (``partial_dob``: see :func:`make_person`)."""
    rng = random.Random(seed)
    return [make_person(rng, as_of, partial_dob) for _ in range(count)]

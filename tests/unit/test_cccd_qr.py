"""QR payloads (docs/cccd.md §5)."""

from __future__ import annotations

from datetime import date

import pytest

from edge_agent.cccd import CccdError, QrFormat, Sex, parse_qr

EXAMPLE = ("079303001234||Nguyễn Thị Mai|15052003|Nữ|"
           "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh|20082021")


def test_card_qr_example() -> None:
    qr = parse_qr(EXAMPLE.encode("utf-8"))
    assert qr.to_json() == {
        "format": "cccd",
        "id_number": "079303001234",
        "old_id_number": None,
        "full_name": "Nguyễn Thị Mai",
        "date_of_birth": "2003-05-15",
        "date_of_birth_known": "day",
        "sex": "F",
        "address": "1 Đường C, Phường A, Quận B, TP. Hồ Chí Minh",
        "issue_date": "2021-08-20",
        "extra_fields": [],
        "can": "001234",
        "bac_candidates": [{"document_number": "303001234", "date_of_birth": "030515",
                            "date_of_expiry": "280515"}],
    }


def test_2024_card_keeps_extra_fields() -> None:
    qr = parse_qr((EXAMPLE + "|04102024||||").encode())
    assert qr.format is QrFormat.CCCD
    assert qr.extra_fields == ("04102024", "", "", "", "")


def test_old_cmnd_number_kept() -> None:
    qr = parse_qr(EXAMPLE.replace("||", "|123456789|", 1))
    assert qr.old_id_number == "123456789"


def test_six_field_variant_with_slashes() -> None:
    qr = parse_qr("079303001234|Nguyễn Thị Mai|15/05/2003|Nữ|Hà Nội|20/08/2021")
    assert qr.format is QrFormat.CCCD_6
    assert qr.date_of_birth == date(2003, 5, 15)
    assert qr.issue_date == date(2021, 8, 20)
    assert qr.can == "001234"


def test_personal_qr_with_masked_id() -> None:
    qr = parse_qr("0793******34|NGUYEN THI MAI|2003-05-15|1|QID123|EXT")
    assert qr.format is QrFormat.PERSONAL_QR
    assert qr.id_number is None
    assert qr.can is None and qr.bac_candidates == []
    assert qr.to_json()["extra_fields"] == ["1", "QID123", "EXT"]


@pytest.mark.parametrize(
    "wrapped",
    [b"\xef\xbb\xbf" + EXAMPLE.encode(), EXAMPLE.encode() + b"\r\n", b"  " + EXAMPLE.encode()
     + b"\n", EXAMPLE.encode() + b"\r"],
)
def test_bom_and_line_terminators_tolerated(wrapped: bytes) -> None:
    assert parse_qr(wrapped).id_text == "079303001234"


def test_decomposed_unicode_is_normalised() -> None:
    import unicodedata

    qr = parse_qr(unicodedata.normalize("NFD", EXAMPLE).encode())
    assert qr.sex is Sex.FEMALE
    assert qr.full_name == "Nguyễn Thị Mai"


def test_zbar_shift_jis_mangling_is_rejected_not_guessed() -> None:
    mangled = EXAMPLE.encode("utf-8").decode("latin-1").encode("shift_jis", errors="replace")
    with pytest.raises(ValueError):
        parse_qr(mangled)


@pytest.mark.parametrize(("dob", "iso", "known", "mrz"), [
    ("1955", "1955", "year", "55<<<<"),
    ("091955", "1955-09", "month", "5509<<"),
    ("02091955", "1955-09-02", "day", "550902"),
    ("02/09/1955", "1955-09-02", "day", "550902"),
])
def test_partial_dates_of_birth(dob: str, iso: str, known: str, mrz: str) -> None:
    """Hospital systems write ``yyyy``, ``mmyyyy`` and ``ddmmyyyy`` (docs/cccd.md §5)."""
    qr = parse_qr(f"001055012345||Trần Văn An|{dob}|Nam|1 Đường C|20082021")
    assert qr.birth_date.isoformat() == iso
    assert qr.to_json()["date_of_birth_known"] == known
    # The BAC date of birth is the MRZ field as printed: unknown parts are filler.
    assert {key.date_of_birth for key in qr.bac_candidates} == {mrz}
    assert qr.bac_candidates[0].date_of_expiry == "991231"  # issued at 66: never expires


def test_partial_date_birth_year_still_checked_against_the_id() -> None:
    with pytest.raises(CccdError, match="birth-year digits 55 do not match the date of birth 1956"):
        parse_qr("001055012345||Trần Văn An|1956|Nam|1 Đường C|20082021")


def test_month_only_expiry_candidates_cover_the_month() -> None:
    # Born some day of September 2001, issued 2021: expires on the 25th birthday (2026-09-xx).
    qr = parse_qr("001201012345||Trần Văn An|092001|Nam|1 Đường C|20082021")
    assert [k.date_of_expiry for k in qr.bac_candidates] == ["260901", "260930"]

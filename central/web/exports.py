"""Exports: the accommodation register in the police portal's XLSX import layout (docs/cccd.md §9)
and as CSV; report ratio tables as XLSX and CSV.

The official Vietnamese-guest import workbook is ``tblt_vn_import.xlsx``: sheet
``DS_KHACH_VIET_NAM_LUU_TRU``, four header rows, data from row 5, columns A … S; dates are text
``dd/MM/yyyy``, the ID number is text (a leading zero must survive), enumerations are
``code - label``.

The enumeration cells follow what several public projects that fill this same template write
(the template itself is not public): sex ``M - Nam`` / ``F - Nữ``; nationality
``VNM - Viet Nam``; document ``1 - Thẻ CCCD`` (the chip card; cards issued from 1 July 2024 are
``8 - Thẻ Căn Cước``, which the stay data cannot tell apart yet); reason ``1 - Du lịch`` …
``20 - Mục đích khác``. The other reason codes (2 … 6) are ours. Check the cells against the
portal's current template before filing: they are defined only here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]

from central.db.models import Site, Stay
from central.web.i18n import translate
from central.web.timeutil import fmt_local

XLSX_NAME = "tblt_vn_import.xlsx"
SHEET = "DS_KHACH_VIET_NAM_LUU_TRU"
FIRST_DATA_ROW = 5
COLUMNS = ("STT", "HỌ TÊN*", "NGÀY SINH*", "GIỚI TÍNH*", "QUỐC TỊCH*", "LOẠI GIẤY TỜ*",
           "TÊN GIẤY TỜ", "SỐ GIẤY TỜ*", "SỐ ĐIỆN THOẠI", "NƠI CƯ TRÚ HIỆN NAY",
           "TỈNH/THÀNH PHỐ", "PHƯỜNG/XÃ/ĐẶC KHU", "ĐỊA CHỈ CHI TIẾT", "NGÀY ĐẾN*",
           "NGÀY ĐI DỰ KIẾN*", "SỐ PHÒNG/KHOA", "LÝ DO CƯ TRÚ*", "NHẬP LÝ DO", "GHI CHÚ")
SEX_CODES = {"M": "M - Nam", "F": "F - Nữ"}
NATIONALITY_CODES = {"VNM": "VNM - Viet Nam"}
DOCUMENT_CODES = {"cccd": "1 - Thẻ CCCD"}
DOCUMENT_NAMES = {"cccd": "Thẻ căn cước công dân"}
RESIDENCE_PERMANENT = "1 - Thường trú"
STAY_WIDTHS = (5, 26, 12, 10, 16, 14, 22, 15, 13, 14, 20, 22, 30, 12, 14, 12, 22, 12, 30)
REASON_CODES = {"tourism": "1 - Du lịch", "business": "2 - Công tác", "study": "3 - Học tập",
                "family": "4 - Thăm thân", "treatment": "5 - Khám chữa bệnh",
                "caregiver": "6 - Chăm sóc người bệnh", "other": "20 - Mục đích khác"}


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these (after leading spaces, too) is read as a formula or a
dynamic value by spreadsheet programs (OWASP "CSV injection")."""


_BLANKS = " \t\r\n\u00a0\u3000"


def neutralise(value: str) -> str:
    """``value`` made inert for a spreadsheet: a cell whose first character, or first
    character after leading whitespace, starts a formula (``= + - @``) or is a tab or carriage
    return gets a leading apostrophe, which spreadsheet programs show as text. Applied to every
    cell of every export (CSV and XLSX): names, addresses, ward or room, unit and site names
    come from cards, desks and administrators."""
    if not value:
        return value
    first = value.lstrip(_BLANKS)[:1]
    if value[0] in FORMULA_STARTS or (first and first in FORMULA_STARTS):
        return "'" + value
    return value


def _safe_row(row: Iterable[str]) -> list[str]:
    return [neutralise(str(cell)) for cell in row]


def _safe_values(row: Iterable[object]) -> list[object]:
    """Text cells neutralised like :func:`_safe_row`; numbers and empty cells stay as they are
    (a spreadsheet never runs a number)."""
    return [neutralise(cell) if isinstance(cell, str) else cell for cell in row]


@dataclass(frozen=True)
class StayRecord:
    """A stay with its opened personal data (only ever built for an audited export or view)."""

    stay: Stay
    site: Site
    personal: dict[str, Any]


def _dmy(value: date | None) -> str:
    return "" if value is None else value.strftime("%d/%m/%Y")


def _iso_to_dmy(text: str | None) -> str:
    """``YYYY-MM-DD`` → ``dd/mm/yyyy``; a partial date of birth ``YYYY-MM`` → ``mm/yyyy`` and
    ``YYYY`` stays as it is (the day or month is unknown)."""
    if not text:
        return ""
    if len(text) == 7 and text[4] == "-":
        return f"{text[5:]}/{text[:4]}"
    try:
        return _dmy(date.fromisoformat(text))
    except ValueError:
        return text


COMMUNE_PREFIXES = ("phường", "xã", "thị trấn", "đặc khu", "p.", "x.", "tt.")
DISTRICT_PREFIXES = ("quận", "huyện", "thị xã", "q.", "h.", "tx.")


@dataclass(frozen=True)
class AddressParts:
    """A Vietnamese address split for the portal's columns K, L, M."""

    province: str
    commune: str
    detail: str


def split_address(address: str | None) -> AddressParts:
    """Best-effort split of ``"<detail>, <commune>, [<district>,] <province>"`` by its
    comma-separated parts (docs/web.md "Accommodation register").

    The last part is the province; the commune is the right-most other part that starts with
    Phường / Xã / Thị trấn / Đặc khu (else the part just before the province); everything
    before the commune is the detail, and a district part between the commune and the
    province (gone since the 2025 two-tier reform) is appended to the detail so nothing of
    the address is lost. One part only: all detail. The names are kept as written: the
    portal's own lists decide the codes, so check the two columns before filing.
    """
    parts = [p.strip() for p in (address or "").split(",") if p.strip()]
    if len(parts) < 2:
        return AddressParts("", "", parts[0] if parts else "")
    province, rest = parts[-1], parts[:-1]
    index = next((i for i in range(len(rest) - 1, -1, -1)
                  if rest[i].lower().startswith(COMMUNE_PREFIXES)), None)
    if index is None:
        if len(rest) == 1:  # "<detail>, <province>": no commune named
            return AddressParts(province, "", rest[0])
        index = len(rest) - 1
    detail = rest[:index] + rest[index + 1:]
    return AddressParts(province, rest[index], ", ".join(detail))


def stay_row(index: int, rec: StayRecord) -> list[str]:
    """Columns A … S of one guest, every cell text.

    N (NGÀY ĐẾN) is the arrival date; O (NGÀY ĐI) is the actual departure once the guest has
    left, else the expected one; S (GHI CHÚ) says when the guest actually left. Every value
    is written raw here: the writers (:func:`stays_xlsx`, :func:`stays_csv`) are where
    cells are escaped against formula injection.
    """
    p, s = rec.personal, rec.stay
    address = p.get("address") or ""
    parts = split_address(address)
    if s.ended_at is not None:
        departure = fmt_local(s.ended_at, "%d/%m/%Y")
        note = "Đã trả phòng / ra viện lúc " + fmt_local(s.ended_at)
    else:
        departure = _dmy(s.expected_departure)
        note = ""
    return [
        str(index), p.get("full_name", ""), _iso_to_dmy(p.get("date_of_birth")),
        SEX_CODES.get(p.get("sex") or "", ""),
        NATIONALITY_CODES.get(p.get("nationality", ""), p.get("nationality", "")),
        DOCUMENT_CODES.get(p.get("document_type", ""), ""),
        DOCUMENT_NAMES.get(p.get("document_type", ""), ""),
        p.get("id_number", ""), "", RESIDENCE_PERMANENT if address else "",
        parts.province, parts.commune, parts.detail,
        fmt_local(s.started_at, "%d/%m/%Y"), departure,
        s.ward_or_room or "", REASON_CODES.get(s.reason_code or "", ""), "", note]


def xlsx_name(site: Site | None) -> str:
    """``tblt_vn_import.xlsx`` for one establishment (the portal's name), prefixed by the
    establishment's id inside a zip of several."""
    return XLSX_NAME if site is None else f"{site.id}_{XLSX_NAME}"


def stays_by_establishment(records: Iterable[StayRecord]) -> dict[str, list[StayRecord]]:
    """Records grouped by site id (each establishment files its own workbook)."""
    out: dict[str, list[StayRecord]] = {}
    for rec in records:
        out.setdefault(rec.site.id, []).append(rec)
    return out


def stays_zip(groups: dict[str, list[StayRecord]]) -> bytes:
    """One portal workbook per establishment, in a zip."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for site_id in sorted(groups):
            recs = groups[site_id]
            zf.writestr(xlsx_name(recs[0].site), stays_xlsx(recs, recs[0].site.name))
    return buf.getvalue()


def stays_xlsx(records: Iterable[StayRecord], establishment: str) -> bytes:
    """The portal's import workbook (header rows 1–4, data from row 5, all cells text)."""
    wb = Workbook()
    ws = wb.active
    ws.title = SHEET
    ws["A1"] = "DANH SÁCH KHÁCH VIỆT NAM LƯU TRÚ"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"Cơ sở lưu trú: {establishment}"
    ws["A3"] = "Các cột có dấu * là bắt buộc; ngày ghi dạng dd/MM/yyyy"
    for col, title in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=4, column=col, value=title)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
        ws.column_dimensions[cell.column_letter].width = STAY_WIDTHS[col - 1]
    for i, rec in enumerate(records, start=1):
        for col, value in enumerate(_safe_row(stay_row(i, rec)), start=1):
            cell = ws.cell(row=FIRST_DATA_ROW + i - 1, column=col)
            cell.value = value
            cell.data_type = "s"
            cell.number_format = "@"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def stays_csv(records: Iterable[StayRecord]) -> bytes:
    """The same columns as CSV (UTF-8 with BOM so spreadsheet programs keep the diacritics)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for i, rec in enumerate(records, start=1):
        writer.writerow(_safe_row(stay_row(i, rec)))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


REPORT_KEYS = ("adm.metric", "rep.kind", "adm.code", "rep.unit", "rep.total", "rep.via",
               "rep.late", "rep.overdue", "rep.ratio", "rep.target", "rep.met")


def report_header(lang: str) -> list[str]:
    return [translate(k, lang) for k in REPORT_KEYS]


def _row_values(metric: str, row: dict[str, Any], lang: str) -> list[Any]:
    """One table row as values: numbers stay numbers, the ratio and target are fractions."""
    if row["is_total"]:
        name = (translate("rep.sum", lang) + " " + (row["name"] or
                                                    translate("rep.all_units", lang))).strip()
    else:
        name = row["name"]
    met = "" if row["met"] is None else translate("rep.yes" if row["met"] else "rep.no", lang)
    notices = metric == "stays_notified"
    return [translate(f"metric.{metric}", lang), translate(f"rep.kind.{row['kind']}", lang),
            row["code"], name, row["total"], row["via"],
            row.get("late", 0) if notices else None, row.get("overdue", 0) if notices else None,
            row["ratio"], row["target"], met]


def report_table_rows(data: dict[str, Any], lang: str) -> list[list[Any]]:
    """Every table of a report's JSON (:func:`central.web.reports.report_json`): its rows,
    then its per-site rows."""
    out: list[list[Any]] = []
    for table in data["tables"]:
        for row in table["rows"]:
            out.append(_row_values(table["metric"], row, lang))
        for row in table.get("site_rows", []):
            out.append(_row_values(table["metric"], row, lang))
    return out


def report_filename(data: dict[str, Any], ext: str, version: int | None = None) -> str:
    """``bao_cao_<unit code or scope>_<first>_<last>[_v<n>].<ext>`` (ASCII only)."""
    unit = data.get("unit")
    who = str(unit["code"]) if unit else "pham_vi"
    who = "".join(ch if ch.isalnum() and ch.isascii() else "_" for ch in who)
    period = data["period"]
    suffix = f"_v{version}" if version is not None else ""
    return f"bao_cao_{who}_{period['first']}_{period['last']}{suffix}.{ext}"


def report_xlsx(data: dict[str, Any], lang: str, author: str = "",
                version: int | None = None) -> bytes:
    """One sheet: title, unit, period, author and time, then the rows with real numbers
    (counts as integers, ratios and targets as percentages)."""
    wb = Workbook()
    ws = wb.active
    ws.title = "BAO_CAO"
    ws["A1"] = translate("rep.title", lang)
    ws["A1"].font = Font(bold=True, size=14)
    period = data["period"]
    ws["A2"] = translate("rep.unit", lang)
    ws["B2"] = data.get("title") or translate("rep.all_units", lang)
    ws["A3"] = translate(f"period.{period['kind']}", lang)
    ws["B3"] = period["label"]
    ws["A4"] = translate("rep.author", lang)
    ws["B4"] = author
    ws["A5"] = translate("rep.generated", lang)
    ws["B5"] = data.get("generated_at") or ""
    if version is not None:
        ws["C5"] = f"{translate('rep.version', lang)} {version}"
    header_row = 7
    for col, title in enumerate(report_header(lang), start=1):
        cell = ws.cell(row=header_row, column=col, value=title)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True)
    for r, values in enumerate(report_table_rows(data, lang), start=header_row + 1):
        for col, value in enumerate(_safe_values(values), start=1):
            cell = ws.cell(row=r, column=col, value=value)
            if col in (9, 10) and value is not None:
                cell.number_format = "0.0%"
    for letter, width in zip("ABCDEFGHIJK", (34, 12, 12, 36, 10, 12, 10, 10, 9, 9, 10),
                             strict=True):
        ws.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def report_csv(data: dict[str, Any], lang: str) -> bytes:
    """The same rows as CSV (ratios as percentages with one decimal)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(report_header(lang))
    for values in report_table_rows(data, lang):
        text = ["" if v is None else str(v) for v in values]
        text[8], text[9] = _ratio_text(values[8]), _ratio_text(values[9])
        writer.writerow(_safe_row(text))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")

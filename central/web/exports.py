"""Exports: the accommodation register in the police portal's XLSX import layout (CCCD.md §9)
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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Alignment, Font  # type: ignore[import-untyped]

from central.db.models import Site, Stay
from central.web.i18n import translate
from central.web.reports import Report
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
REASON_CODES = {"tourism": "1 - Du lịch", "business": "2 - Công tác", "study": "3 - Học tập",
                "family": "4 - Thăm thân", "treatment": "5 - Khám chữa bệnh",
                "caregiver": "6 - Chăm sóc người bệnh", "other": "20 - Mục đích khác"}


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


def stay_row(index: int, rec: StayRecord) -> list[str]:
    """Columns A … S of one guest, every cell text."""
    p, s = rec.personal, rec.stay
    departure = s.expected_departure
    address = p.get("address") or ""
    return [
        str(index), p.get("full_name", ""), _iso_to_dmy(p.get("date_of_birth")),
        SEX_CODES.get(p.get("sex") or "", ""),
        NATIONALITY_CODES.get(p.get("nationality", ""), p.get("nationality", "")),
        DOCUMENT_CODES.get(p.get("document_type", ""), ""),
        DOCUMENT_NAMES.get(p.get("document_type", ""), ""),
        p.get("id_number", ""), "", RESIDENCE_PERMANENT if address else "", "", "", address,
        fmt_local(s.started_at, "%d/%m/%Y"),
        _dmy(departure) if departure else fmt_local(s.ended_at, "%d/%m/%Y"),
        s.ward_or_room or "", REASON_CODES.get(s.reason_code or "", ""), "", ""]


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
    for i, rec in enumerate(records, start=1):
        for col, value in enumerate(stay_row(i, rec), start=1):
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
        writer.writerow(stay_row(i, rec))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def report_rows(report: Report, lang: str) -> list[list[str]]:
    """Flat rows: metric, unit code, unit, total, via, ratio, target, met."""
    out: list[list[str]] = []
    for table in report.tables:
        metric = translate(f"metric.{table.metric}", lang)
        for row in table.rows:
            name = (translate("rep.sum", lang) + " " + row.name).strip() if row.is_total \
                else row.name
            met = "" if row.met is None else translate("rep.yes" if row.met else "rep.no", lang)
            out.append([metric, row.code, name, str(row.total), str(row.via),
                        _ratio_text(row.ratio), _ratio_text(row.target), met])
    return out


def report_header(lang: str) -> list[str]:
    return [translate(k, lang) for k in ("adm.metric", "adm.code", "rep.unit", "rep.total",
                                         "rep.via", "rep.ratio", "rep.target", "rep.met")]


def report_xlsx(report: Report, lang: str) -> bytes:
    """One sheet: a title with the period, then the ratio tables as rows."""
    wb = Workbook()
    ws = wb.active
    ws.title = "BAO_CAO"
    ws["A1"] = translate("rep.title", lang)
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"{translate(f'period.{report.period.kind}', lang)}: {report.period.label}"
    ws.append([])
    ws.append(report_header(lang))
    for cell in ws[4]:
        cell.font = Font(bold=True)
    for row in report_rows(report, lang):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def report_csv(report: Report, lang: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(report_header(lang))
    writer.writerows(report_rows(report, lang))
    return ("\ufeff" + buf.getvalue()).encode("utf-8")

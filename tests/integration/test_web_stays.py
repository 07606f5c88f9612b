"""Accommodation register: deadline status, notify, audited personal view, XLSX and CSV."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from central.db.models import AuditLog, Stay
from central.web.exports import COLUMNS
from tests.web_support import World, csrf, export_stays, login, make_world, view_personal

STAY = "0190a0c0-0000-7000-8000-00000000000"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _audits(world: World, action: str) -> list[AuditLog]:
    with world.maker() as db:
        return list(db.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_register_lists_status_and_masks_ids(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    page = c.get("/stays/").get_data(as_text=True)
    assert "********1234" in page and "********4321" in page
    assert "079303001234" not in page and "Nguyễn Thị Mai" not in page
    assert page.count('class="badge notified"') == 1
    assert page.count('class="badge overdue"') == 1
    assert page.count('class="badge due"') == 1
    overdue = c.get("/stays/?status=overdue").get_data(as_text=True)
    assert "********4321" in overdue and "********1234" not in overdue
    assert not _audits(world, "stay.personal.view")


def test_mark_notified_is_audited(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    token = csrf(c, "/stays/")
    r = c.post(f"/stays/{STAY}1/notify", data={"csrf_token": token})
    assert r.status_code == 302
    with world.maker() as db:
        stay = db.get(Stay, f"{STAY}1")
        assert stay is not None and stay.notified_at is not None and stay.notified_by
    [row] = _audits(world, "stay.notified")
    assert row.actor == "tinh" and row.target == f"{STAY}1" and row.ip


def test_personal_view_is_audited(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    page = view_personal(c, f"{STAY}0").get_data(as_text=True)
    assert "Nguyễn Thị Mai" in page and "079303001234" in page
    [row] = _audits(world, "stay.personal.view")
    assert (row.actor, row.target, row.ip) == ("tinh", f"{STAY}0", "127.0.0.1")
    assert row.user_id is not None


def test_xlsx_export_layout(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    default = export_stays(c, "xlsx", "site=ks-phu-vang")  # only stays not yet notified
    ws = load_workbook(io.BytesIO(default.data))["DS_KHACH_VIET_NAM_LUU_TRU"]
    assert {ws.cell(row=r, column=8).value for r in range(5, ws.max_row + 1)} == {
        "001085004321", "046199000777"}
    r = export_stays(c, "xlsx", "site=ks-phu-vang&status=all")
    assert r.status_code == 200
    assert 'filename="tblt_vn_import.xlsx"' in r.headers["Content-Disposition"]
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["DS_KHACH_VIET_NAM_LUU_TRU"]
    ws = wb["DS_KHACH_VIET_NAM_LUU_TRU"]
    assert [ws.cell(row=4, column=i).value for i in range(1, 20)] == list(COLUMNS)
    assert ws.cell(row=4, column=1).column_letter == "A"
    assert ws.cell(row=4, column=19).column_letter == "S"
    assert ws.cell(row=4, column=20).value is None
    rows = {ws.cell(row=r, column=8).value: r for r in range(5, ws.max_row + 1)}
    assert set(rows) == {"079303001234", "001085004321", "046199000777"}
    r1 = rows["079303001234"]
    cells = [ws.cell(row=r1, column=i) for i in range(1, 20)]
    assert all(cell.data_type == "s" for cell in cells if cell.value is not None)
    assert cells[1].value == "Nguyễn Thị Mai"
    assert cells[2].value == "15/05/2003"
    assert cells[3].value == "F - Nữ"
    assert cells[4].value == "VNM - Viet Nam"
    assert cells[5].value == "1 - Thẻ CCCD"
    assert cells[7].value == "079303001234" and cells[7].number_format == "@"
    assert cells[13].value.count("/") == 2 and len(cells[13].value) == 10
    assert cells[14].value.count("/") == 2
    assert cells[15].value == "200"
    assert cells[16].value == "1 - Du lịch"
    # the address split into province / commune / detail (K, L, M)
    assert [c.value for c in cells[10:13]] == ["TP. Hồ Chí Minh", "Phường A", "1 Đường C"]
    assert ws.cell(row=rows["001085004321"], column=4).value == "M - Nam"
    assert sorted(int(ws.cell(row=r, column=1).value) for r in rows.values()) == [1, 2, 3]
    first, row = _audits(world, "stays.export.xlsx")
    assert first.detail is not None and first.detail["count"] == 2
    assert row.detail is not None and row.detail["count"] == 3 and row.actor == "tinh"


def test_csv_export(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    r = export_stays(c, "csv", "status=overdue")
    assert r.status_code == 200
    text = r.data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(COLUMNS)
    assert len(rows) == 2 and rows[1][7] == "001085004321" and rows[1][1] == "Trần Văn Dũng"
    [row] = _audits(world, "stays.export.csv")
    assert row.detail is not None and row.detail["count"] == 1


def test_export_out_of_scope_refused(world: World) -> None:
    c = world.app.test_client()
    login(c, "huyen")
    assert export_stays(c, "xlsx", "site=ks-phu-vang").status_code == 403
    r = export_stays(c, "csv")
    assert r.data.decode("utf-8-sig").count("\n") == 1  # header only: nothing in scope

"""Personal data under purpose (docs/privacy.md §3): a reason and a note in a CSRF-checked POST
for every personal view and export, the audited person search by ID number (SQLite and
PostgreSQL), refused requests in the audit log, and the auditor who reads only the log."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from central.db.models import AuditLog, Event, Stay
from central.subjects import subject_for
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401
from tests.web_support import (
    PURPOSE,
    World,
    csrf,
    export_stays,
    login,
    make_world,
    now_utc,
    view_personal,
)
from wire.masking import mask_id

STAY = "0190a0c0-0000-7000-8000-000000000000"  # Nguyễn Thị Mai at ks-phu-vang
KEY = bytes(range(100, 132))
PERSON = "046303000999"
OTHER = "046303000111"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, SUBJECT_KEY=KEY)


def _audits(world: World, prefix: str = "") -> list[AuditLog]:
    with world.maker() as db:
        return list(db.scalars(select(AuditLog).where(AuditLog.action.startswith(prefix))
                               .order_by(AuditLog.id)))


def test_a_personal_view_needs_a_purpose_in_a_post(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    form = c.get(f"/stays/{STAY}/personal")  # what a cross-site link reaches: a form
    page = form.get_data(as_text=True)
    assert form.status_code == 200 and 'name="reason"' in page
    assert "Nguyễn Thị Mai" not in page and "079303001234" not in page
    assert c.post(f"/stays/{STAY}/personal", data=PURPOSE).status_code == 400  # no CSRF
    for bad in ({}, {"reason": "curiosity", "note": "xem thử"},
                {"reason": "incident", "note": ""}, {"reason": "incident", "note": "x" * 501}):
        r = view_personal(c, STAY, bad)
        assert r.status_code == 400, bad
        assert "Nguyễn Thị Mai" not in r.get_data(as_text=True)
    assert not _audits(world, "stay.personal")
    r = view_personal(c, STAY, {"reason": "guest-request", "note": "khách yêu cầu bản sao"})
    assert r.status_code == 200 and "Nguyễn Thị Mai" in r.get_data(as_text=True)
    [row] = _audits(world, "stay.personal.view")
    assert row.detail == {"site": "ks-phu-vang", "reason": "guest-request",
                          "note": "khách yêu cầu bản sao"}


def test_exports_are_posts_with_a_purpose(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    assert c.get("/stays/export.csv?status=all").status_code == 405
    assert c.get("/stays/export.xlsx").status_code == 405
    assert export_stays(c, "csv", "status=all", {}).status_code == 400
    assert not _audits(world, "stays.export")
    r = export_stays(c, "csv", "status=all", {"reason": "legal-request",
                                              "note": "QĐ 45/CSĐT"})
    assert r.status_code == 200 and "079303001234" in r.data.decode("utf-8-sig")
    [row] = _audits(world, "stays.export.csv")
    assert row.detail is not None
    assert (row.detail["reason"], row.detail["note"], row.detail["count"]) == (
        "legal-request", "QĐ 45/CSĐT", 3)
    page = c.get("/stays/").get_data(as_text=True)  # the register posts a purpose form
    assert 'id="export-form"' in page and 'method="post"' in page


def test_refused_requests_are_logged(world: World) -> None:
    huyen = world.app.test_client()
    login(huyen, "huyen")
    assert view_personal(huyen, STAY).status_code == 403  # ks-phu-vang is not in district 474
    assert export_stays(huyen, "xlsx", "site=ks-phu-vang").status_code == 403
    diem = world.app.test_client()
    login(diem, "diem")
    assert diem.get("/people/search").status_code == 403  # site staff may not search
    assert diem.get("/audit/").status_code == 403
    rows = [(r.actor, r.target, (r.detail or {}).get("reason"))
            for r in _audits(world, "access.denied")]
    assert rows == [("huyen", f"/stays/{STAY}/personal", STAY),
                    ("huyen", "/stays/export.xlsx", "ks-phu-vang"),
                    ("diem", "/people/search", "role"), ("diem", "/audit/", "role")]


def _plant_visits(world: World) -> None:
    subject = subject_for(PERSON, KEY)
    now = now_utc()
    with world.maker() as db:
        for seq, (site, device, ago) in enumerate((
                ("hue-dai-noi", "gate-ngo-mon-01", timedelta(days=2)),
                ("hue-dai-noi", "gate-ngo-mon-01", timedelta(days=1)),
                ("hue-dai-noi", "gate-ngo-mon-01", timedelta(days=40)),  # before the period
                ("van-mieu", "gate-van-mieu-01", timedelta(days=1))), start=1000):
            db.add(Event(device_id=device, event_id=str(uuid.uuid4()), seq=seq, site_id=site,
                         occurred_at=now - ago, received_at=now - ago, kind="entry",
                         method="chip", assurance="chip-anchored", subject=subject, count=1))
        db.add(Event(device_id="gate-ngo-mon-01", event_id=str(uuid.uuid4()), seq=2000,
                     site_id="hue-dai-noi", occurred_at=now, received_at=now, kind="entry",
                     method="chip", assurance="chip-anchored",
                     subject=subject_for(OTHER, KEY), count=1))
        stay = db.get(Stay, STAY)
        assert stay is not None
        stay.subject = subject
        db.commit()


def _search(c: FlaskClient, **fields: str) -> TestResponse:
    today = now_utc() + timedelta(hours=7)
    data = {"id_number": PERSON, "site": "hue-dai-noi",
            "from": (today - timedelta(days=10)).strftime("%d/%m/%Y"),
            "to": today.strftime("%d/%m/%Y"), **PURPOSE, **fields}
    data["csrf_token"] = csrf(c)
    return c.post("/people/search", data=data)


@pytest.fixture
def pg_world(tmp_path: Path, db_url: str) -> World:  # noqa: F811
    return make_world(tmp_path, db_url, SUBJECT_KEY=KEY)


def test_person_search_finds_the_subject_and_logs_only_the_masked_id(pg_world: World) -> None:
    world = pg_world
    _plant_visits(world)
    tinh = world.app.test_client()
    login(tinh, "tinh")
    r = _search(tinh)
    page = r.get_data(as_text=True)
    assert r.status_code == 200, page
    assert page.count("<tr><td>") == 2  # the two visits in the period, not the other person's
    assert mask_id(PERSON) in page and PERSON not in page
    stays = _search(tinh, site="ks-phu-vang").get_data(as_text=True)
    assert STAY in stays
    nothing = _search(tinh, id_number="079303009999").get_data(
        as_text=True)
    assert 'id="search-none"' in nothing
    rows = _audits(world, "person.search")
    assert [(r.target, (r.detail or {}).get("events"), (r.detail or {}).get("stays"))
            for r in rows] == [("********0999", 2, 0), ("********0999", 0, 1),
                               ("********9999", 0, 0)]
    assert rows[0].detail is not None and rows[0].detail["reason"] == PURPOSE["reason"]
    everything = json.dumps([(a.action, a.target, a.detail) for a in _audits(world)],
                            ensure_ascii=False)
    assert PERSON not in everything and "079303009999" not in everything
    # out of scope, wrong role, no purpose, a malformed number
    hanoi = world.app.test_client()
    login(hanoi, "hanoi")
    assert _search(hanoi).status_code == 403
    assert _search(tinh, reason="").status_code == 400
    bad = _search(tinh, id_number="04630300099")
    assert bad.status_code == 400
    assert "04630300099" not in json.dumps(
        [(a.target, a.detail) for a in _audits(world)], ensure_ascii=False)


def test_person_search_without_the_subject_key_is_unavailable(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    c = world.app.test_client()
    login(c, "admin")
    assert _search(c).status_code == 503
    assert not _audits(world, "person.search")


def test_the_auditor_reads_the_audit_log_with_filters_and_nothing_else(world: World) -> None:
    tinh = world.app.test_client()
    login(tinh, "tinh")
    view_personal(tinh, STAY)
    a = world.app.test_client()
    r = login(a, "kiemtra")
    assert r.headers["Location"].endswith("/audit/")
    for path in ("/", "/stays/", f"/stays/{STAY}/personal", "/api/v1/sites", "/reports/",
                 "/security/", "/admin/users"):
        assert a.get(path).status_code == 403, path
    page = a.get("/audit/?actor=tinh&action=stay.personal").get_data(as_text=True)
    assert STAY in page and "police-notice" in page and 'id="audit-total">1<' in page
    assert 'id="audit-total">1<' in a.get(f"/audit/?target={STAY}").get_data(as_text=True)
    today = (now_utc() + timedelta(hours=7)).strftime("%d/%m/%Y")
    assert STAY in a.get(f"/audit/?from={today}&to={today}&actor=tinh").get_data(as_text=True)
    assert 'id="audit-total">0<' in a.get("/audit/?from=01/01/2020&to=02/01/2020").get_data(
        as_text=True)
    assert a.get("/audit/?from=31/02/2026").status_code == 400
    denied = a.get("/audit/?action=access.denied&actor=kiemtra").get_data(as_text=True)
    assert 'id="audit-total">7<' in denied
    # the stated note reads as written (Vietnamese, not \u escapes), its markup escaped
    view_personal(tinh, STAY, {"reason": "incident", "note": "Sự cố <b>cổng 2</b>"})
    page = a.get("/audit/?actor=tinh&action=stay.personal").get_data(as_text=True)
    assert "Sự cố &lt;b&gt;cổng 2&lt;/b&gt;" in page and "<b>" not in page


def test_the_admin_creates_an_auditor_without_a_unit(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    r = c.post("/admin/users", data={"username": "kiemtra2", "password": "x" * 12,
                                     "role": "auditor", "unit_id": "", "active": "1",
                                     "csrf_token": csrf(c, "/admin/users")})
    assert r.status_code in (200, 302), r.get_data(as_text=True)
    a = world.app.test_client()
    assert login(a, "kiemtra2", "x" * 12).headers["Location"].endswith("/audit/")
    assert a.get("/audit/").status_code == 200 and a.get("/stays/").status_code == 403


def test_the_subject_key_comes_from_the_settings_file(tmp_path: Path) -> None:
    from central.settings import CentralSettings
    from central.web.app import _as_mapping

    key_file = tmp_path / "subject.key"
    key_file.write_bytes(KEY)
    assert _as_mapping(CentralSettings(subject_key=key_file))["SUBJECT_KEY_PATH"] == key_file
    world = make_world(tmp_path, SUBJECT_KEY_PATH=str(key_file))
    _plant_visits(world)
    c = world.app.test_client()
    login(c, "tinh")
    r = _search(c)
    assert r.status_code == 200 and r.get_data(as_text=True).count("<tr><td>") == 2

"""Roles and scope on every route: walk ``app.url_map`` as each role and as nobody."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from central.db.models import Alarm, ApiToken, ReportSnapshot, Target, User
from central.web.app import PUBLIC_ENDPOINTS
from tests.web_support import World, csrf, login, make_world

STAY = "0190a0c0-0000-7000-8000-000000000001"  # at ks-phu-vang (district 481, province 046)
IN_SITE = {"admin": "van-mieu", "tinh": "hue-dai-noi", "huyen": "hue-dai-noi",
           "diem": "hue-dai-noi", "hanoi": "van-mieu", "kiemtra": "hue-dai-noi"}
OUT_SITE = {"tinh": "van-mieu", "huyen": "van-mieu", "diem": "van-mieu", "hanoi": "hue-dai-noi",
            "kiemtra": "van-mieu"}
STAY_IN_SCOPE = {"admin", "tinh"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("scope"))


_IDS: dict[str, int] = {}


def _ids(world: World) -> dict[str, int]:
    if not _IDS:
        with world.maker() as db:
            token = ApiToken(name="walker", token_hash="0" * 64, unit_id=None,
                             created_at=datetime.now(UTC), revoked=False)
            db.add(token)
            db.commit()
            _IDS["token_id"] = token.id
            uid = db.scalar(select(User.id).where(User.username == "diem"))
            assert uid is not None
            _IDS["user_id"] = uid
            target = Target(unit_id=world.units["474"], metric="stays_notified", value=0.9)
            db.add(target)
            db.commit()
            _IDS["target_id"] = target.id
            _IDS["unit_id"] = world.units["002"]  # has a site: the walker cannot delete it
            snap = ReportSnapshot(  # a submitted Hà Nội report: only admin and hanoi read it
                scope_key=f"unit:{world.units['002']}", unit_id=world.units["002"],
                site_ids=["van-mieu"], period_kind="month", first_day=date(2026, 11, 1),
                last_day=date(2026, 11, 30), version=1, created_at=datetime.now(UTC),
                author="hanoi", data={"period": {"kind": "month", "first": "2026-11-01",
                                                 "last": "2026-11-30",
                                                 "label": "01/11/2026 – 30/11/2026"},
                                      "unit": None, "title": "Quận Đống Đa", "tables": []},
                xlsx=b"PK")
            db.add(snap)
            db.commit()
            _IDS["snapshot_id"] = snap.id
            _IDS["alarm_id"] = db.scalars(select(Alarm.id).where(  # Văn Miếu's (Hà Nội)
                Alarm.site_id == "van-mieu")).one()
    return _IDS


def _args(world: World, rule: Any, role: str, inside: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "site_id": IN_SITE[role] if inside else OUT_SITE.get(role, "van-mieu"),
        "stay_id": STAY, "device_id": "gate-van-mieu-01", "code": "vi", **_ids(world)}
    return {name: values[name] for name in rule.arguments}


def _client(world: World, role: str | None) -> FlaskClient:
    c = world.app.test_client()
    if role is not None:
        assert login(c, role).status_code == 302
    return c


def _call(c: FlaskClient, method: str, url: str) -> int:
    if method == "GET":
        return c.get(url).status_code
    token = csrf(c, "/login")
    return c.post(url, data={"csrf_token": token}).status_code


def _rules(world: World) -> list[Any]:
    return [r for r in world.app.url_map.iter_rules() if r.endpoint not in PUBLIC_ENDPOINTS]


def test_every_view_declares_its_roles(world: World) -> None:
    for rule in _rules(world):
        if rule.endpoint.startswith("api."):
            continue
        view = world.app.view_functions[rule.endpoint]
        assert getattr(view, "required_roles", None), f"{rule.endpoint} has no role check"


def test_anonymous_gets_nothing(world: World) -> None:
    c = world.app.test_client()
    for rule in _rules(world):
        url = rule.build(_args(world, rule, "admin", True), append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            status = _call(c, method, url)
            expected = {401} if rule.endpoint.startswith("api.") else {302, 400}
            assert status in expected, (rule.endpoint, method, status)


@pytest.mark.parametrize("role", ["admin", "tinh", "huyen", "diem", "hanoi", "kiemtra"])
def test_every_route_as_each_role(world: World, role: str) -> None:
    c = _client(world, role)
    for rule in _rules(world):
        if rule.endpoint == "auth.logout":
            continue
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        if role == "kiemtra":  # the auditor reads the audit log and nothing else
            url = rule.build(_args(world, rule, role, True), append_unknown=False)[1]
            for method in methods:
                status = _call(c, method, url)
                if rule.endpoint.startswith("audit."):
                    assert status == (200 if method == "GET" else 400), (rule.endpoint, status)
                else:
                    assert status == 403, (rule.endpoint, method, url, status)
            continue
        admin_only = rule.endpoint.startswith(("admin.", "audit.")) or (
            rule.endpoint.startswith("people.") and role == "diem")
        for inside in (True, False):
            if not inside and role == "admin":
                continue
            url = rule.build(_args(world, rule, role, inside), append_unknown=False)[1]
            for method in methods:
                status = _call(c, method, url)
                where = (rule.endpoint, method, url, status)
                if admin_only and role != "admin":
                    assert status == 403, where
                    continue
                uses_site = "site_id" in rule.arguments
                uses_stay = "stay_id" in rule.arguments
                forbidden = (uses_site and not inside) or (uses_stay and role not in
                                                           STAY_IN_SCOPE) or (
                    ("snapshot_id" in rule.arguments or "alarm_id" in rule.arguments)
                    and role not in ("admin", "hanoi"))
                if forbidden:
                    assert status == 403, where
                elif method == "GET" and rule.endpoint != "dashboard.stream":
                    assert status in (200, 302), where
                else:
                    assert status not in (401, 403), where


@pytest.mark.parametrize("role", ["tinh", "huyen", "diem", "hanoi"])
def test_api_query_parameters_are_scoped(world: World, role: str) -> None:
    c = _client(world, role)
    out_site = OUT_SITE[role]
    for path in ("/api/v1/counts", "/api/v1/occupancy", "/api/v1/sites", "/api/v1/devices"):
        assert c.get(f"{path}?site={out_site}").status_code == 403, path
        assert c.get(f"{path}?site={IN_SITE[role]}").status_code == 200, path
    other_province = world.units["001" if role != "hanoi" else "046"]
    for path in ("/api/v1/counts", "/api/v1/occupancy", "/api/v1/sites", "/api/v1/reports"):
        assert c.get(f"{path}?unit={other_province}").status_code == 403, path
    for path in ("/?site=", "/stays/?site=", "/dashboard/stream?site="):
        assert c.get(path + out_site).status_code == 403, path
    assert c.get(f"/reports/?unit={other_province}").status_code == 403


def test_lists_show_only_the_scope(world: World) -> None:
    diem = _client(world, "diem")
    page = diem.get("/").get_data(as_text=True)
    assert "Đại Nội Huế" in page and "Văn Miếu" not in page and "Bệnh viện" not in page
    assert "gate-van-mieu-01" not in diem.get("/devices").get_data(as_text=True)
    sites = diem.get("/api/v1/sites").get_json()["sites"]
    assert [s["id"] for s in sites] == ["hue-dai-noi"]
    huyen = _client(world, "huyen")
    ids = sorted(s["id"] for s in huyen.get("/api/v1/sites").get_json()["sites"])
    assert ids == ["bv-hue", "hue-dai-noi"]
    assert "ks-phu-vang" not in huyen.get("/stays/").get_data(as_text=True)
    tinh = _client(world, "tinh")
    ids = sorted(s["id"] for s in tinh.get("/api/v1/sites").get_json()["sites"])
    assert ids == ["bv-hue", "hue-dai-noi", "ks-phu-vang"]
    counts = tinh.get("/api/v1/counts").get_json()
    assert counts["total"]["people"] == 50 + 20 + 10 + 10 + 5 + 40 + 20 + 40  # not van-mieu's 7

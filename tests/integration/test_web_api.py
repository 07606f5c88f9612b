"""The JSON API: bearer tokens (read-only, unit-scoped), session auth, OpenAPI coverage and
response schemas."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from central.db.models import ApiToken, AuditLog
from central.web.openapi import OPENAPI
from central.web.security import token_hash
from tests.web_support import World, csrf, login, make_world, now_utc

TOKEN = "cct_test_token_province_046"


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    with w.maker() as db:
        db.add(ApiToken(name="soc-hue", token_hash=token_hash(TOKEN), unit_id=w.units["046"],
                        created_at=now_utc(), revoked=False))
        db.add(ApiToken(name="old", token_hash=token_hash("expired"), unit_id=None,
                        created_at=now_utc(), expires_at=now_utc() - timedelta(days=1),
                        revoked=False))
        db.commit()
    return w


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _schema_for(path: str) -> dict[str, Any]:
    op = OPENAPI["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    return {**op["schema"], "components": OPENAPI["components"]}


def test_every_api_route_is_described(world: World) -> None:
    routes = {r.rule for r in world.app.url_map.iter_rules() if r.rule.startswith("/api/")}
    assert routes == set(OPENAPI["paths"])
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            assert rule.methods - {"HEAD", "OPTIONS"} == {"GET"}, rule.rule
    assert OPENAPI["openapi"].startswith("3.1")
    c = world.app.test_client()
    assert c.get("/api/v1/openapi.json").get_json() == OPENAPI


@pytest.mark.parametrize("url", [
    "/api/v1/sites", "/api/v1/occupancy", "/api/v1/counts?group_by=hour,method",
    "/api/v1/counts?group_by=day,site,kind,age_band,sex,birth_province&period=week",
    "/api/v1/devices", "/api/v1/reports", "/api/v1/reports?period=year",
])
def test_responses_match_their_schemas(world: World, url: str) -> None:
    c = world.app.test_client()
    r = c.get(url, headers=_auth())
    assert r.status_code == 200, r.get_data(as_text=True)
    path = url.split("?", maxsplit=1)[0]
    validator = jsonschema.Draft202012Validator(_schema_for(path))
    validator.validate(r.get_json())


def test_error_responses_match(world: World) -> None:
    c = world.app.test_client()
    error = {**OPENAPI["components"]["schemas"]["Error"]}
    for url, status, headers in (("/api/v1/counts?period=nope", 400, _auth()),
                                 ("/api/v1/counts", 401, {}),
                                 ("/api/v1/counts?site=van-mieu", 403, _auth())):
        r = c.get(url, headers=headers)
        assert r.status_code == status
        jsonschema.validate(r.get_json(), error)


def test_token_is_scoped_and_read_only(world: World) -> None:
    c = world.app.test_client()
    ids = sorted(s["id"] for s in c.get("/api/v1/sites", headers=_auth()).get_json()["sites"])
    assert ids == ["bv-hue", "hue-dai-noi", "ks-phu-vang"]
    assert c.get("/api/v1/occupancy?site=van-mieu", headers=_auth()).status_code == 403
    assert c.post("/api/v1/counts", headers=_auth()).status_code == 405
    assert c.delete("/api/v1/sites", headers=_auth()).status_code == 405
    # A token opens the API only, never the web pages or their forms.
    assert c.get("/", headers=_auth()).status_code == 302
    assert c.get("/stays/export.csv", headers=_auth()).status_code == 302
    assert c.get("/api/v1/sites", headers=_auth("expired")).status_code == 401
    assert c.get("/api/v1/sites", headers=_auth("wrong")).status_code == 401


def test_counts_totals_and_grouping(world: World) -> None:
    c = world.app.test_client()
    data = c.get("/api/v1/counts?site=hue-dai-noi&group_by=method&kind=entry,manual:entry",
                 headers=_auth()).get_json()
    assert {r["method"]: r["people"] for r in data["rows"]} == {
        "chip": 50, "card-qr": 20, "vneid-qr": 10, "manual": 10}
    assert data["total"]["people"] == 90
    assert c.get("/api/v1/counts?group_by=colour", headers=_auth()).status_code == 400


def test_session_auth_and_token_admin(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    assert c.get("/api/v1/occupancy").get_json()["total"] == 95 + 2 + 7
    token = csrf(c, "/admin/tokens")
    page = c.post("/admin/tokens", data={"name": "feed", "unit_id": str(world.units["474"]),
                                         "csrf_token": token}).get_data(as_text=True)
    new = page.split('id="new-token">')[1].split("<")[0]
    feed = world.app.test_client()
    ids = sorted(s["id"] for s in feed.get("/api/v1/sites", headers=_auth(new))
                 .get_json()["sites"])
    assert ids == ["bv-hue", "hue-dai-noi"]
    with world.maker() as db:
        row = db.scalar(select(ApiToken).where(ApiToken.name == "feed"))
        assert row is not None and row.token_hash == token_hash(new)
        assert db.scalar(select(AuditLog).where(AuditLog.action == "token.create"))
    c.post(f"/admin/tokens/{row.id}/revoke", data={"csrf_token": token})
    assert feed.get("/api/v1/sites", headers=_auth(new)).status_code == 401

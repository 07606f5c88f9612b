"""Every admin form validates its input through WTForms and refuses with a reason (400 naming
the field); API tokens always expire; a malformed close time never stops the close-out."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from central.counting import CountingError, close_out, last_close
from central.db.models import ApiToken, Presence, Site
from central.web.forms import TOKEN_DEFAULT_DAYS, TOKEN_MAX_DAYS
from tests.web_support import World, csrf, login, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _admin(world: World) -> FlaskClient:
    c = world.app.test_client()
    assert login(c, "admin").status_code == 302
    return c


def _post(c: FlaskClient, path: str, **data: str) -> tuple[int, str]:
    r = c.post(path, data={**data, "csrf_token": csrf(c, "/admin/users")})
    return r.status_code, r.get_data(as_text=True)


def test_site_close_time_must_be_hh_mm(world: World) -> None:
    c = _admin(world)
    unit = str(world.units["474"])
    site = {"id": "lang-tu-duc", "name": "Lăng Tự Đức", "kind": "heritage", "unit_id": unit}
    for bad in ("5pm", "24:00", "7:5", "17h00", "17:60"):
        status, body = _post(c, "/admin/sites", **site, close_time=bad)
        assert status == 400 and "close_time: expected HH:MM" in body, bad
    status, body = _post(c, "/admin/sites", **site, close_time="17:00", capacity="-1")
    assert status == 400 and "capacity:" in body
    status, body = _post(c, "/admin/sites", **{**site, "id": "Bad Id!"}, close_time="17:00")
    assert status == 400 and "id: lower-case letters" in body
    status, body = _post(c, "/admin/sites", **{**site, "kind": "zoo"})
    assert status == 400 and "kind:" in body
    assert _post(c, "/admin/sites", **site, close_time="17:00", capacity="300")[0] == 302
    with world.maker() as db:
        saved = db.get(Site, "lang-tu-duc")
        assert saved is not None and (saved.close_time, saved.capacity) == ("17:00", 300)


def test_units_targets_users_refuse_with_a_reason(world: World) -> None:
    c = _admin(world)
    status, body = _post(c, "/admin/units", code="bad code", name="X", level="province")
    assert status == 400 and "code: 1 to 16 letters" in body
    status, body = _post(c, "/admin/units", code="999", name="X", level="ward")
    assert status == 400 and "level:" in body
    status, body = _post(c, "/admin/units", code="999", level="commune", parent_id="abc")
    assert status == 400 and "parent_id:" in body
    status, body = _post(c, "/admin/targets", metric="hospital_cccd", value="1.5")
    assert status == 400 and "value: a number between 0 and 1" in body
    status, body = _post(c, "/admin/targets", metric="nonsense", value="0.5")
    assert status == 400 and "metric:" in body
    status, body = _post(c, "/admin/users", username="new.user", password="short",
                         role="site", site_ids="hue-dai-noi")
    assert status == 400 and "password: at least 12 characters" in body
    status, body = _post(c, "/admin/users", username="new.user", password="x" * 12,
                         role="site", site_ids="no-such-site")
    assert status == 400 and "site_ids:" in body


@pytest.mark.parametrize("days", ["0", "-5", str(TOKEN_MAX_DAYS + 1), "forever", "1.5"])
def test_token_lifetime_is_bounded(world: World, days: str) -> None:
    c = _admin(world)
    status, body = _post(c, "/admin/tokens", name="ioc", expires_days=days)
    assert status == 400 and "expires_days:" in body
    with world.maker() as db:
        assert db.scalar(select(ApiToken).where(ApiToken.name == "ioc")) is None


def test_token_default_and_maximum_lifetime(world: World) -> None:
    c = _admin(world)
    before = datetime.now(UTC)
    assert _post(c, "/admin/tokens", name="default", expires_days="")[0] == 200
    assert _post(c, "/admin/tokens", name="longest", expires_days=str(TOKEN_MAX_DAYS))[0] == 200
    with world.maker() as db:
        tokens = {t.name: t for t in db.scalars(select(ApiToken))}
    for name, days in (("default", TOKEN_DEFAULT_DAYS), ("longest", TOKEN_MAX_DAYS)):
        expires = tokens[name].expires_at
        assert expires is not None
        lifetime = expires.replace(tzinfo=UTC) - before
        assert timedelta(days=days) <= lifetime < timedelta(days=days, minutes=5), name


def test_a_malformed_close_time_does_not_stop_the_close_out(world: World) -> None:
    with pytest.raises(CountingError, match="expected HH:MM"):
        last_close(datetime.now(UTC), "5pm")
    now = datetime(2026, 12, 5, 20, tzinfo=UTC)  # 06/12 03:00 in Vietnam
    with world.maker() as db:
        bad = db.get(Site, "van-mieu")
        assert bad is not None
        bad.close_time = "5pm"  # stored before the form checked it
        entered = now - timedelta(days=1)
        db.add_all([Presence(site_id="van-mieu", subject="a" * 32, people=1,
                             entered_at=entered),
                    Presence(site_id="hue-dai-noi", subject="b" * 32, people=1,
                             entered_at=entered)])
        db.commit()
        closed = {c.site_id: c.people for c in close_out(db, now)}
        db.commit()
    assert closed.get("hue-dai-noi") == 1 and closed.get("van-mieu") == 1


def test_report_and_register_filters_refuse_with_a_reason(world: World) -> None:
    c = world.app.test_client()
    assert login(c, "tinh").status_code == 302
    for query, reason in (("period=fortnight", "period:"),
                          ("period=week&date=31/02/2026", "date: '31/02/2026' is not a calendar"),
                          ("period=week&date=2026/02/01", "date: '2026/02/01': expected dd/mm"),
                          ("unit=abc", "unit:")):
        r = c.get(f"/reports/?{query}")
        assert r.status_code == 400 and reason in html.unescape(r.get_data(as_text=True)), query
    assert c.get("/reports/?period=week&date=01/02/2026").status_code == 200
    for query, reason in (("status=lost", "status:"), ("from=1/13/2026", "from:"),
                          ("from=02/11/2026&to=01/11/2026", "to: must not be before from")):
        r = c.get(f"/stays/?{query}")
        assert r.status_code == 400 and reason in html.unescape(r.get_data(as_text=True)), query

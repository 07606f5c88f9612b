"""Login, logout, lockout, IP rate limit, CSRF, cookies and argon2id."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from central.db.models import AuditLog, User
from tests.web_support import PASSWORD, World, csrf, login, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def test_login_logout(world: World) -> None:
    c = world.app.test_client()
    assert c.get("/").status_code == 302
    r = login(c, "admin")
    assert r.status_code == 302 and r.headers["Location"] == "/"
    page = c.get("/").get_data(as_text=True)
    assert "Tổng quan trực tiếp" in page
    token = csrf(c, "/")
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 302
    assert c.get("/").status_code == 302
    with world.maker() as db:
        actions = [a.action for a in db.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["login", "logout"]


def test_session_cookie_flags(tmp_path: Path) -> None:
    world = make_world(tmp_path, SESSION_COOKIE_SECURE=True)
    c = world.app.test_client()
    r = login(c, "admin")
    cookie = r.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_passwords_are_argon2id(world: World) -> None:
    with world.maker() as db:
        user = db.scalar(select(User).where(User.username == "admin"))
        assert user is not None and user.password_hash.startswith("$argon2id$")


def test_wrong_password_and_unknown_user_read_the_same(world: World) -> None:
    c = world.app.test_client()
    a = login(c, "admin", "wrong password!")
    b = login(c, "nobody", "wrong password!")
    assert a.status_code == b.status_code == 401
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in a.get_data(as_text=True)
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in b.get_data(as_text=True)


def test_lockout_after_repeated_failures(world: World) -> None:
    c = world.app.test_client()
    for _ in range(5):
        assert login(c, "diem", "wrong password!").status_code == 401
    r = login(c, "diem", PASSWORD)
    assert r.status_code == 401, "the right password must not open a locked account"
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in r.get_data(as_text=True)
    with world.maker() as db:
        user = db.scalar(select(User).where(User.username == "diem"))
        assert user is not None and user.locked_until is not None
        assert db.scalar(select(AuditLog).where(AuditLog.action == "user.locked")) is not None


def test_ip_rate_limit(tmp_path: Path) -> None:
    world = make_world(tmp_path, IP_MAX_FAILURES=3)
    c = world.app.test_client()
    for name in ("a", "b", "c"):
        assert login(c, name, "x").status_code == 401
    r = login(c, "admin", PASSWORD)
    assert r.status_code == 429


def test_csrf_rejected_without_token(world: World) -> None:
    c = world.app.test_client()
    r = c.post("/login", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 400
    login(c, "admin")
    r = c.post("/logout")
    assert r.status_code == 400
    r = c.post("/stays/0190a0c0-0000-7000-8000-000000000001/notify")
    assert r.status_code == 400
    r = c.post("/admin/units", data={"code": "X", "name": "X", "level": "province"})
    assert r.status_code == 400


def test_password_reset_ends_other_sessions(world: World) -> None:
    admin, other = world.app.test_client(), world.app.test_client()
    login(admin, "admin")
    login(other, "diem")
    assert other.get("/").status_code == 200
    with world.maker() as db:
        uid = db.scalar(select(User.id).where(User.username == "diem"))
    token = csrf(admin, "/admin/users")
    r = admin.post(f"/admin/users/{uid}/password",
                   data={"password": "a brand new password", "csrf_token": token})
    assert r.status_code == 302
    assert other.get("/").status_code == 302
    assert login(other, "diem", "a brand new password").status_code == 302


def test_language_switch(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    c.get("/lang/en?next=/")
    assert "Live dashboard" in c.get("/").get_data(as_text=True)
    c.get("/lang/vi?next=//evil.example")
    assert "Tổng quan trực tiếp" in c.get("/").get_data(as_text=True)
    r = c.get("/lang/en?next=//evil.example")
    assert r.headers["Location"] == "/"

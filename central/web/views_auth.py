"""Login and logout: argon2id, rate limits per username (lockout) and per client address, each
an atomic counter in the database (so parallel requests and several workers cannot pass it),
generic errors, server-side sessions, redirects only to local paths."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import and_, case, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from werkzeug.wrappers.response import Response as BaseResponse

from central.db.models import LoginThrottle, Role, User
from central.web.app import end_session, start_session
from central.web.i18n import LANGUAGES
from central.web.security import (
    ALL_ROLES,
    audit,
    client_ip,
    db_session,
    require_roles,
    safe_next_path,
    verify_password,
)
from central.web.timeutil import utcnow

bp = Blueprint("auth", __name__)
_DUMMY_HASH: dict[int, str] = {}


def _hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_app.extensions["central.hasher"]
    return hasher


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash to verify against for unknown users, so timing does not reveal usernames."""
    key = id(hasher)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hasher.hash("not-a-password")
    return _DUMMY_HASH[key]


def _safe_next(target: str | None) -> str:
    return safe_next_path(target, url_for("dashboard.index"))


def _insert(db: Session) -> Any:
    """The dialect's ``INSERT … ON CONFLICT`` builder (SQLite and PostgreSQL share the form)."""
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def _reserve_ip_attempt(ip: str, now: datetime) -> int:
    """Count one login attempt from ``ip`` in one atomic statement and return the count in the
    current window (a window older than ``IP_WINDOW_SECONDS`` starts again at 1). Parallel
    requests each get their own number, so no more than the limit are ever evaluated."""
    db = db_session()
    cutoff = now - timedelta(seconds=int(current_app.config["IP_WINDOW_SECONDS"]))
    expired = LoginThrottle.window_start <= cutoff
    stmt = _insert(db)(LoginThrottle).values(key=f"ip:{ip}", failures=1, window_start=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={"failures": case((expired, 1), else_=LoginThrottle.failures + 1),
              "window_start": case((expired, now), else_=LoginThrottle.window_start)},
    ).returning(LoginThrottle.failures)
    count = int(db.execute(stmt).scalar_one())
    db.commit()
    return count


def _release_ip_attempt(ip: str) -> None:
    """A successful login does not count against its address."""
    db = db_session()
    db.execute(update(LoginThrottle).where(LoginThrottle.key == f"ip:{ip}",
                                           LoginThrottle.failures > 0)
               .values(failures=LoginThrottle.failures - 1))


def _reserve_account_attempt(username: str, now: datetime) -> tuple[int, int] | None:
    """Count one attempt on the account in one atomic ``UPDATE … RETURNING``; ``(user id,
    attempt number)`` or ``None`` for an unknown username.

    The attempt that reaches ``LOGIN_MAX_FAILURES`` also sets ``locked_until``; an expired
    lock starts the count again at 1. Only attempts numbered up to the limit have their
    password checked, however many run at once; a success resets the count."""
    db = db_session()
    limit = int(current_app.config["LOGIN_MAX_FAILURES"])
    until = now + timedelta(seconds=int(current_app.config["LOGIN_LOCKOUT_SECONDS"]))
    expired = and_(User.locked_until.is_not(None), User.locked_until <= now)
    new_count = case((expired, 1), else_=User.failed_logins + 1)
    stmt = (update(User).where(User.username == username)
            .values(failed_logins=new_count,
                    locked_until=case(
                        (and_(new_count >= limit, or_(User.locked_until.is_(None), expired)),
                         until),
                        (expired, None), else_=User.locked_until))
            .returning(User.id, User.failed_logins)
            .execution_options(synchronize_session=False))
    row = db.execute(stmt).one_or_none()
    db.commit()
    return None if row is None else (int(row[0]), int(row[1]))


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    """The sign-in form; a wrong username, password or a locked account all read the same."""
    if request.method == "GET":
        return render_template("login.html", error=None,
                               next=_next_field(request.args.get("next")))
    db = db_session()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    nxt = _next_field(request.form.get("next"))
    ip = client_ip()
    now = utcnow()
    if _reserve_ip_attempt(ip, now) > int(current_app.config["IP_MAX_FAILURES"]):
        audit("login.blocked-ip", username, actor=username or "anonymous")
        return render_template("login.html", error="login.too_many", next=nxt), 429
    hasher = _hasher()
    reserved = _reserve_account_attempt(username, now) if username else None
    limit = int(current_app.config["LOGIN_MAX_FAILURES"])
    user = db.get(User, reserved[0]) if reserved is not None else None
    locked = reserved is not None and reserved[1] > limit
    if user is not None and not locked:
        ok = verify_password(hasher, user.password_hash, password)
    else:
        if user is None:
            verify_password(hasher, _dummy_hash(hasher), password)
        ok = False
    if user is None or not ok or not user.active:
        if reserved is not None and reserved[1] == limit:
            audit("user.locked", username, user=user, commit=False)
        audit("login.failed", username, {"locked": locked}, user=user,
              actor=username or "anonymous")
        return render_template("login.html", error="login.invalid", next=nxt), 401
    db.execute(update(User).where(User.id == user.id)
               .values(failed_logins=0, locked_until=None)
               .execution_options(synchronize_session=False))
    _release_ip_attempt(ip)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    audit("login", user.username, user=user)
    start_session(user)
    if user.role is Role.AUDITOR and not nxt:  # the audit log is all an auditor reads
        return redirect(url_for("audit.index"))
    return redirect(_safe_next(nxt))


def _next_field(raw: str | None) -> str:
    """The ``next`` carried through the form: only a safe local path survives."""
    return safe_next_path(raw, "")


@bp.route("/logout", methods=["POST"])
@require_roles(*ALL_ROLES)
def logout() -> BaseResponse:
    """End the session (POST with CSRF token, so a link elsewhere cannot log staff out)."""
    audit("logout")
    end_session()
    return redirect(url_for("auth.login", out=1))


@bp.route("/lang/<code>")
def language(code: str) -> BaseResponse:
    """Switch the interface language (a preference only; then back to the same page)."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")))

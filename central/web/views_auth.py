"""Login and logout: argon2id, rate limits per username (lockout) and per IP, generic errors."""

from __future__ import annotations

from datetime import timedelta

from argon2 import PasswordHasher
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import func, select
from werkzeug.wrappers.response import Response as BaseResponse

from central.db.models import AuditLog, User
from central.web.app import start_session
from central.web.i18n import LANGUAGES
from central.web.security import (
    ALL_ROLES,
    audit,
    client_ip,
    db_session,
    require_roles,
    verify_password,
)
from central.web.timeutil import as_utc, utcnow

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
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.index")


def _ip_blocked(ip: str) -> bool:
    """Too many failed logins from this address recently (counted in the audit log, so the
    limit holds across web workers)."""
    since = utcnow() - timedelta(seconds=int(current_app.config["IP_WINDOW_SECONDS"]))
    n = db_session().scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "login.failed", AuditLog.ip == ip, AuditLog.at >= since)) or 0
    return n >= int(current_app.config["IP_MAX_FAILURES"])


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | BaseResponse | tuple[str, int]:
    """The sign-in form; a wrong username, password or a locked account all read the same."""
    if request.method == "GET":
        return render_template("login.html", error=None, next=request.args.get("next", ""))
    db = db_session()
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    nxt = request.form.get("next", "")
    ip = client_ip()
    if _ip_blocked(ip):
        audit("login.blocked-ip", username, actor=username or "anonymous")
        return render_template("login.html", error="login.too_many", next=nxt), 429
    hasher = _hasher()
    user = db.scalar(select(User).where(User.username == username))
    now = utcnow()
    locked = user is not None and user.locked_until is not None \
        and as_utc(user.locked_until) > now
    if user is not None:
        ok = verify_password(hasher, user.password_hash, password)
    else:
        verify_password(hasher, _dummy_hash(hasher), password)
        ok = False
    if user is None or not ok or locked or not user.active:
        if user is not None and not locked:
            user.failed_logins += 1
            if user.failed_logins >= int(current_app.config["LOGIN_MAX_FAILURES"]):
                user.locked_until = now + timedelta(
                    seconds=int(current_app.config["LOGIN_LOCKOUT_SECONDS"]))
                user.failed_logins = 0
                audit("user.locked", user.username, user=user, commit=False)
        audit("login.failed", username, {"locked": bool(locked)}, user=user,
              actor=username or "anonymous")
        return render_template("login.html", error="login.invalid", next=nxt), 401
    user.failed_logins = 0
    user.locked_until = None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    audit("login", user.username, user=user)
    start_session(user)
    return redirect(_safe_next(nxt))


@bp.route("/logout", methods=["POST"])
@require_roles(*ALL_ROLES)
def logout() -> BaseResponse:
    """End the session (POST with CSRF token, so a link elsewhere cannot log staff out)."""
    audit("logout")
    lang = session.get("lang")
    session.clear()
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(url_for("auth.login", out=1))


@bp.route("/lang/<code>")
def language(code: str) -> BaseResponse:
    """Switch the interface language (a preference only; then back to the same page)."""
    if code in LANGUAGES:
        session["lang"] = code
    return redirect(_safe_next(request.args.get("next")))

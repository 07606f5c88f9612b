"""The application core: configuration, database session, authentication gate, errors.

The views import the session and language functions from here; this module never imports the
views: :mod:`central.web.factory` adds their blueprints to the core (no import cycle,
docs/design.md §2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.wrappers.response import Response as BaseResponse

from central.at_rest import load_data_key
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import ApiToken, User
from central.web.charts import bar_svg, hourly_svg
from central.web.errors import WebError
from central.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, translate
from central.web.periods import display_date
from central.web.security import (
    db_session,
    make_hasher,
    mask_id,
    scope_for_token,
    scope_for_user,
    token_hash,
)
from central.web.timeutil import as_utc, fmt_local, utcnow

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "sqlite:///var/central.sqlite3",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "central_session",
    "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
    "WTF_CSRF_TIME_LIMIT": 8 * 3600,
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_COST": 65536,
    "ARGON2_PARALLELISM": 4,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCKOUT_SECONDS": 900,
    "IP_MAX_FAILURES": 20,
    "IP_WINDOW_SECONDS": 900,
    "SSE_POLL_SECONDS": 1.0,
    "SSE_MAX_SECONDS": 300.0,
    "BROKER_URL": "mqtts://broker.example.vn:8883",
    "MAX_CONTENT_LENGTH": 1024 * 1024,
}
PUBLIC_ENDPOINTS = {"static", "auth.login", "auth.language", "api.openapi"}


class ConfigurationError(ValueError):
    """The web application's configuration is incomplete or inconsistent."""


_SETTINGS_NAMES = {"database_url": "DATABASE_URL", "data_key": "DATA_KEY_PATH",
                   "centre_private_key": "CENTRE_X25519_PRIVATE"}


def _as_mapping(config: Mapping[str, Any] | object) -> dict[str, Any]:
    """A plain mapping from a dict or a :class:`central.settings.CentralSettings`-like object
    (``database_url``, ``data_key`` and ``centre_private_key`` are taken; web-only keys such
    as ``SECRET_KEY`` come in ``overrides``)."""
    if isinstance(config, Mapping):
        return dict(config)
    out: dict[str, Any] = {}
    for attr, key in _SETTINGS_NAMES.items():
        value = getattr(config, attr, None)
        if value is not None:
            out[key] = value
    return out


def _password_version(user: User) -> str:
    """Changes when the password changes: a reset ends every other session of the user."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:16]


def create_base_app(config: Mapping[str, Any] | object,
                    overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application without its blueprints (:func:`central.web.create_app` adds
    them).

    ``config`` is a mapping (or a settings object whose attributes are read, upper-cased) with:
    ``SECRET_KEY`` (required); ``DATABASE_URL`` or ``SESSIONMAKER``; ``DATA_KEY`` (bytes) or
    ``DATA_KEY_PATH`` (to open accommodation notices); ``SESSION_COOKIE_SECURE`` (False only
    for local http); ``DEVICE_CA_CERT``, ``DEVICE_CA_KEY``, ``CENTRE_X25519_PUBLIC``,
    ``BROKER_URL``, ``BROKER_CA_CERT`` (enrolment); rate limits ``LOGIN_MAX_FAILURES``,
    ``LOGIN_LOCKOUT_SECONDS``, ``IP_MAX_FAILURES``, ``IP_WINDOW_SECONDS``; ``SSE_POLL_SECONDS``.
    ``overrides`` are applied last (e.g. ``SECRET_KEY`` next to a settings object).
    """
    values = {**DEFAULTS, **_as_mapping(config), **dict(overrides or {})}
    if not values.get("SECRET_KEY"):
        raise ConfigurationError("SECRET_KEY: required (sessions and CSRF tokens are signed)")
    app = Flask(__name__)
    app.config.update(values)
    if app.config.get("DATA_KEY") is None and app.config.get("DATA_KEY_PATH"):
        app.config["DATA_KEY"] = load_data_key(Path(app.config["DATA_KEY_PATH"]))
    maker: sessionmaker[Session] | None = app.config.get("SESSIONMAKER")
    if maker is None:
        maker = make_sessionmaker(make_engine(app.config["DATABASE_URL"]))
    app.extensions["central.sessionmaker"] = maker
    app.extensions["central.hasher"] = make_hasher(
        int(app.config["ARGON2_TIME_COST"]), int(app.config["ARGON2_MEMORY_COST"]),
        int(app.config["ARGON2_PARALLELISM"]))
    CSRFProtect(app)
    app.before_request(_authenticate)
    app.teardown_appcontext(_close_db)
    app.after_request(_headers)
    app.register_error_handler(WebError, _web_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_allowed)
    app.jinja_env.globals.update(
        _=lambda key: translate(key, current_language()), fmt_local=fmt_local, mask_id=mask_id,
        hourly_svg=hourly_svg, bar_svg=bar_svg, lang=current_language, languages=LANGUAGES)
    app.jinja_env.filters["dmy"] = display_date
    app.jinja_env.filters["vn_date"] = lambda at: fmt_local(at, "%d/%m/%Y")
    return app


def current_language() -> str:
    lang = session.get("lang") if session else None
    if lang not in LANGUAGES:
        user: User | None = g.get("user")
        lang = user.language if user is not None and user.language in LANGUAGES \
            else DEFAULT_LANGUAGE
    return str(lang)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _authenticate() -> BaseResponse | tuple[Response, int] | None:
    """Resolve the principal of every request; nothing but login and static is public."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    db = db_session()
    if _is_api():
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            token = db.query(ApiToken).filter_by(
                token_hash=token_hash(header[7:].strip())).one_or_none()
            now = utcnow()
            if token is None or token.revoked or (
                    token.expires_at is not None and as_utc(token.expires_at) <= now):
                return jsonify(error="unauthorized", message="invalid or expired token"), 401
            g.token = token
            g.scope = scope_for_token(db, token)
            return None
    uid = session.get("uid")
    user = db.get(User, uid) if isinstance(uid, int) else None
    if user is not None and (not user.active or session.get("pwv") != _password_version(user)):
        session.clear()
        user = None
    if user is None:
        if _is_api():
            return jsonify(error="unauthorized", message="log in or send a bearer token"), 401
        return redirect(url_for("auth.login", next=request.path))
    g.user = user
    g.scope = scope_for_user(db, user)
    return None


def start_session(user: User) -> None:
    """Log ``user`` in: a fresh session (no fixation) bound to the password version."""
    lang = session.get("lang")
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["pwv"] = _password_version(user)
    if lang in LANGUAGES:
        session["lang"] = lang


def _close_db(_exc: BaseException | None) -> None:
    db: Session | None = g.pop("db", None)
    if db is not None:
        db.close()


def _headers(response: Response) -> Response:
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _error_page(status: int, key: str, detail: str = "") -> tuple[str | Response, int]:
    if _is_api():
        return jsonify(error=str(status), message=detail or translate(key, "en")), status
    return render_template("error.html", status=status, message_key=key, detail=detail), status


def _web_error(exc: WebError) -> tuple[str | Response, int]:
    key = {403: "error.403", 404: "error.404", 503: "error.503"}.get(exc.status, "error.400")
    return _error_page(exc.status, key, str(exc) if exc.status == 400 else "")


def _csrf_error(_exc: CSRFError) -> tuple[str | Response, int]:
    return _error_page(400, "error.csrf")


def _not_found(_exc: Exception) -> tuple[str | Response, int]:
    return _error_page(404, "error.404")


def _not_allowed(_exc: Exception) -> tuple[str | Response, int]:
    if _is_api():
        return jsonify(error="405", message="the API is read-only"), 405
    return _error_page(405, "error.400")

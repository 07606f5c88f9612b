"""The application core: configuration, database session, authentication gate, errors.

The views import the session and language functions from here; this module never imports the
views: :mod:`central.web.factory` adds their blueprints to the core (no import cycle,
docs/design.md §2).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect  # type: ignore[import-untyped]
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers.response import Response as BaseResponse

from central.at_rest import load_data_key
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import ApiToken, Role, User, WebSession
from central.registry import draining
from central.web.charts import bar_svg, hourly_svg
from central.web.errors import OutOfScope, WebError
from central.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, translate
from central.web.periods import display_date
from central.web.security import (
    DB_INT_MAX,
    audit_denied,
    db_session,
    make_hasher,
    scope_for_token,
    scope_for_user,
    token_hash,
)
from central.web.timeutil import as_utc, fmt_local, utcnow
from wire.masking import mask_id

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
    "TRUSTED_PROXY_HOPS": 0,
}
PUBLIC_ENDPOINTS = {"static", "auth.login", "auth.language", "api.openapi"}
AUDITOR_ENDPOINTS = ("audit.", "auth.")
"""All the ``auditor`` role may reach (docs/web.md): the audit log, and logging out."""


class ConfigurationError(ValueError):
    """The web application's configuration is incomplete or inconsistent."""


_SETTINGS_NAMES = {"database_url": "DATABASE_URL", "data_key": "DATA_KEY_PATH",
                   "centre_private_key": "CENTRE_X25519_PRIVATE",
                   "subject_key": "SUBJECT_KEY_PATH",
                   "centre_subject_key": "CENTRE_SUBJECT_KEY_PATH",
                   "web_trusted_proxy_hops": "TRUSTED_PROXY_HOPS"}


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` in routes: at most a 32-bit id, so a huge number is a 404, not a 500."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", DB_INT_MAX)
        super().__init__(map, *args, **kwargs)


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
    ``LOGIN_LOCKOUT_SECONDS``, ``IP_MAX_FAILURES``, ``IP_WINDOW_SECONDS``; ``SSE_POLL_SECONDS``;
    ``TRUSTED_PROXY_HOPS`` (reverse proxies in front whose ``X-Forwarded-For`` /
    ``X-Forwarded-Proto`` are believed; 0 = none, the peer is the client).
    ``overrides`` are applied last (e.g. ``SECRET_KEY`` next to a settings object).
    """
    values = {**DEFAULTS, **_as_mapping(config), **dict(overrides or {})}
    if not values.get("SECRET_KEY"):
        raise ConfigurationError("SECRET_KEY: required (sessions and CSRF tokens are signed)")
    hops = values.get("TRUSTED_PROXY_HOPS", 0)
    if isinstance(hops, bool) or not isinstance(hops, int) or not 0 <= hops <= 10:
        raise ConfigurationError("TRUSTED_PROXY_HOPS: an integer from 0 to 10")
    app = Flask(__name__)
    app.config.update(values)
    app.url_map.converters["int"] = BoundedIntConverter
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops)
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
    app.before_request(_refuse_nul)
    app.before_request(_authenticate)
    app.teardown_appcontext(_close_db)
    app.after_request(_headers)
    app.register_error_handler(WebError, _web_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _not_allowed)
    app.jinja_env.globals.update(
        _=lambda key: translate(key, current_language()), fmt_local=fmt_local, mask_id=mask_id,
        hourly_svg=hourly_svg, bar_svg=bar_svg, lang=current_language, languages=LANGUAGES,
        device_draining=lambda device: draining(device, utcnow()))
    app.jinja_env.filters["dmy"] = display_date
    app.jinja_env.filters["vn_date"] = lambda at: fmt_local(at, "%d/%m/%Y")
    app.jinja_env.filters["detail_text"] = detail_text
    return app


def detail_text(detail: object) -> str:
    """An audit row's detail as readable JSON: Vietnamese notes as written, not ``\\u``
    escapes (the template's autoescaping still escapes the markup)."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)


def current_language() -> str:
    lang = session.get("lang") if session else None
    if lang not in LANGUAGES:
        user: User | None = g.get("user")
        lang = user.language if user is not None and user.language in LANGUAGES \
            else DEFAULT_LANGUAGE
    return str(lang)


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _refuse_nul() -> tuple[str | Response, int] | None:
    """A NUL character in the path, the query or a form field is a 400 here: PostgreSQL text
    cannot hold it, so it would otherwise surface as a 500 from the driver."""
    values = [request.path, *(v for _, vs in request.args.lists() for v in vs)]
    if request.method == "POST" and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        values += [v for _, vs in request.form.lists() for v in vs]
    if any("\x00" in v for v in values):
        return _error_page(400, "error.400", "NUL character")
    return None


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
    user = session_user(db)
    if user is None and "uid" in session:
        lang = session.get("lang")
        session.clear()
        if lang in LANGUAGES:
            session["lang"] = lang
    if user is None:
        if _is_api():
            return jsonify(error="unauthorized", message="log in or send a bearer token"), 401
        return redirect(url_for("auth.login", next=request.path))
    g.user = user
    g.scope = scope_for_user(db, user)
    if user.role is Role.AUDITOR and not (request.endpoint or "").startswith(AUDITOR_ENDPOINTS):
        raise OutOfScope("role")  # the audit log is all an auditor reads, the API included
    return None


def _sid_hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def session_key() -> str | None:
    """The stored id (hash) of this request's server-side session, if it carries one."""
    sid = session.get("sid")
    return _sid_hash(sid) if isinstance(sid, str) and sid else None


def session_alive(db: Session, key: str | None, uid: object) -> User | None:
    """The user of server-side session ``key`` while it is valid: the row exists (no logout,
    password change or deactivation since), belongs to ``uid``, is younger than
    ``PERMANENT_SESSION_LIFETIME``, and the user is still active. Checked on every request
    and on every tick of a live stream."""
    if key is None or not isinstance(uid, int):
        return None
    row = db.get(WebSession, key)
    if row is None or row.user_id != uid:
        return None
    if as_utc(row.created_at) + _session_lifetime() <= utcnow():
        return None
    user = db.get(User, uid)
    if user is None or not user.active:
        return None
    return user


def _session_lifetime() -> timedelta:
    value = current_app.config["PERMANENT_SESSION_LIFETIME"]
    return value if isinstance(value, timedelta) else timedelta(seconds=int(value))


def session_user(db: Session) -> User | None:
    """The logged-in user of this request, or ``None`` (checked against the database)."""
    user = session_alive(db, session_key(), session.get("uid"))
    if user is not None and session.get("pwv") != _password_version(user):
        return None
    return user


def start_session(user: User) -> None:
    """Log ``user`` in: a fresh session (no fixation), recorded server side (the cookie holds
    only a random id) and bound to the password version."""
    lang = session.get("lang")
    old = session_key()
    session.clear()
    sid = secrets.token_urlsafe(32)
    db = db_session()
    if old is not None:
        db.execute(delete(WebSession).where(WebSession.id == old))
    db.execute(delete(WebSession).where(
        WebSession.user_id == user.id,
        WebSession.created_at < utcnow() - _session_lifetime()))
    db.add(WebSession(id=_sid_hash(sid), user_id=user.id, created_at=utcnow()))
    db.commit()
    session.permanent = True
    session["uid"] = user.id
    session["sid"] = sid
    session["pwv"] = _password_version(user)
    if lang in LANGUAGES:
        session["lang"] = lang


def end_session() -> None:
    """Log out this browser: its server-side session is deleted, so a copy of the cookie
    stops working too."""
    key = session_key()
    if key is not None:
        db = db_session()
        db.execute(delete(WebSession).where(WebSession.id == key))
        db.commit()
    lang = session.get("lang")
    session.clear()
    if lang in LANGUAGES:
        session["lang"] = lang


def end_user_sessions(db: Session, user_id: int) -> None:
    """End every session of a user (password change, deactivation); the caller commits.
    Open live streams notice on their next tick."""
    db.execute(delete(WebSession).where(WebSession.user_id == user_id))


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
    if exc.status == 403:
        audit_denied(str(exc))
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

"""Dashboard (live over server-sent events), site page and device health page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    session,
    stream_with_context,
)
from sqlalchemy.orm import Session

from central.readside import ARRIVAL_KINDS
from central.web.app import session_alive, session_key
from central.web.queries import (
    Snapshot,
    counts,
    device_health,
    snapshot,
    unattributed_rejections,
)
from central.web.security import (
    ALL_ROLES,
    current_scope,
    current_user,
    db_session,
    get_site,
    require_roles,
)
from central.web.timeutil import day_start_utc, local_today

bp = Blueprint("dashboard", __name__)


def _site_param() -> str | None:
    """An optional ``?site=`` narrowing the dashboard; checked against the scope."""
    site_id = request.args.get("site") or None
    if site_id is not None:
        get_site(site_id)
    return site_id


@bp.route("/")
@require_roles(*ALL_ROLES)
def index() -> str:
    """Occupancy against capacity, today's entries and exits, hourly chart, methods, alerts."""
    site_id = _site_param()
    snap = snapshot(db_session(), current_scope(), site_id)
    return render_template("dashboard.html", snap=snap, site_id=site_id)


def _render_live(snap: Snapshot) -> str:
    return render_template("_live.html", snap=snap)


@bp.route("/dashboard/stream")
@require_roles(*ALL_ROLES)
def stream() -> Response:
    """Server-sent events: the live fragment again whenever the numbers change.

    The generator polls the database every ``SSE_POLL_SECONDS`` with its own short session
    (several web workers can serve streams), sends a comment every 15 s to keep proxies open,
    and ends after ``SSE_MAX_SECONDS`` (the browser's EventSource reconnects by itself).
    Every tick also checks the session: after logout, a password change or deactivation the
    stream ends at once (the reconnect then meets the login page).
    """
    site_id = _site_param()
    scope = current_scope()
    key = session_key()
    uid = session.get("uid")
    maker = current_app.extensions["central.sessionmaker"]
    poll = float(current_app.config["SSE_POLL_SECONDS"])
    max_s = float(current_app.config["SSE_MAX_SECONDS"])

    def events() -> Iterator[str]:
        last: object = None
        started = last_beat = time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() - started < max_s:
            db: Session = maker()
            try:
                if session_alive(db, key, uid) is None:
                    yield "event: logout\ndata: {}\n\n"
                    return
                snap = snapshot(db, scope, site_id)
                fp = snap.fingerprint()
                if fp != last:
                    last = fp
                    payload = {"html": _render_live(snap), "data": snap.as_json()}
                    yield f"event: update\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                    last_beat = time.monotonic()
            finally:
                db.close()
            if time.monotonic() - last_beat > 15:
                yield ": keep-alive\n\n"
                last_beat = time.monotonic()
            time.sleep(poll)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.route("/sites/<site_id>")
@require_roles(*ALL_ROLES)
def site(site_id: str) -> str:
    """One site: live numbers, today's breakdown by age band, sex and birth province, devices."""
    s = get_site(site_id)
    db = db_session()
    snap = snapshot(db, current_scope(), s.id)
    start = day_start_utc(local_today())
    end = start + timedelta(days=1)
    breakdown = {dim: counts(db, [s.id], start, end, [dim], kinds=ARRIVAL_KINDS)
                 for dim in ("age_band", "sex", "birth_province")}
    return render_template("site.html", site=s, snap=snap, breakdown=breakdown,
                           devices=device_health(db, current_scope(), s.id))


@bp.route("/devices")
@require_roles(*ALL_ROLES)
def devices() -> str:
    """Device health: last seen, state, backlog, seq gaps, versions, rejections by reason."""
    db = db_session()
    user = current_user()
    extra = unattributed_rejections(db) if user is not None and user.role == "admin" else {}
    return render_template("devices.html", rows=device_health(db, current_scope()),
                           unattributed=extra)

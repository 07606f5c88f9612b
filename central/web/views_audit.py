"""The audit log, for administrators and the ``auditor`` role (which reads it and nothing
else): filters by actor, action (prefix), target and dates, newest first (docs/web.md).
Every personal view, export and person search is there with its stated purpose, and every
refused request (``access.denied``) with what was asked and why it was refused."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, render_template, request
from sqlalchemy import func, select

from central.db.models import AuditLog
from central.web.forms import AuditFilterForm, bind
from central.web.security import AUDIT_ROLES, bounded_int, db_session, require_roles
from central.web.timeutil import day_start_utc

bp = Blueprint("audit", __name__, url_prefix="/audit")
AUDIT_PAGE = 200


@bp.route("/")
@require_roles(*AUDIT_ROLES)
def index() -> str:
    """The log, newest first, ``AUDIT_PAGE`` rows a page."""
    db = db_session()
    form = bind(AuditFilterForm, request.args)
    query = select(AuditLog)
    if form.actor.data:
        query = query.where(AuditLog.actor == form.actor.data)
    if form.action.data:
        query = query.where(AuditLog.action.startswith(str(form.action.data), autoescape=True))
    if form.target.data:
        query = query.where(AuditLog.target == form.target.data)
    if form.first is not None:
        query = query.where(AuditLog.at >= day_start_utc(form.first))
    if form.to.date is not None:
        query = query.where(AuditLog.at < day_start_utc(form.to.date + timedelta(days=1)))
    page = bounded_int(request.args.get("page"), "page", low=1, high=10**6, default=1) or 1
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(db.scalars(query.order_by(AuditLog.id.desc())
                           .offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE)))
    filters = {k: v for k, v in (
        ("actor", form.actor.data), ("action", form.action.data), ("target", form.target.data),
        ("from", form.first.strftime("%d/%m/%Y") if form.first else ""),
        ("to", form.to.date.strftime("%d/%m/%Y") if form.to.date else "")) if v}
    return render_template("audit.html", rows=rows, page=page, total=total, f=filters,
                           page_size=AUDIT_PAGE)

"""Security and device health in sight: gate refusals by reason, site and device (forged and
cloned documents first), data the centre refused, open alarms acknowledged with a note."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import Form, StringField  # type: ignore[import-untyped]
from wtforms.validators import DataRequired, Length  # type: ignore[import-untyped]

from central.db.models import Alarm, Device
from central.readside import SECURITY_FIRST, ingest_refusals, refusals
from central.web.errors import NotFoundError, OutOfScope
from central.web.forms import ReportFilterForm, bind
from central.web.periods import PERIOD_KINDS, resolve
from central.web.queries import device_health
from central.web.security import (
    ALL_ROLES,
    audit,
    current_scope,
    current_user,
    db_session,
    require_roles,
    scoped_sites,
)
from central.web.timeutil import utcnow

bp = Blueprint("security", __name__)


class AckForm(Form):  # type: ignore[misc]
    """An acknowledgement: what was done about the alarm."""

    note = StringField("note", filters=[lambda v: v.strip() if isinstance(v, str) else v],
                       validators=[DataRequired("say what was done"), Length(max=500)])


@bp.route("/security")
@require_roles(*ALL_ROLES)
def index() -> str:
    """Refusals over a period (a week by default) and the open alarms of the scope."""
    form = bind(ReportFilterForm, request.args, period=["", *PERIOD_KINDS])
    period = resolve(form.period.data or "week", form.iso("date"), form.iso("from"),
                     form.iso("to"))
    db = db_session()
    scope = current_scope()
    sites = scoped_sites(db, scope)
    start, end = period.utc_bounds()
    gate = refusals(db, [s.id for s in sites], start, end)
    health = device_health(db, scope)
    device_ids = None if scope.everything else [h.device.id for h in health]
    centre = ingest_refusals(db, device_ids, start, end)
    alarms_q = select(Alarm).where(Alarm.cleared_at.is_(None)).order_by(Alarm.raised_at.desc())
    if not scope.everything:
        alarms_q = alarms_q.where(Alarm.site_id.in_([s.id for s in sites]))
    return render_template("security.html", period=period, gate=gate, centre=centre,
                           alarms=list(db.scalars(alarms_q.limit(200))),
                           names={s.id: s.name for s in sites}, security=SECURITY_FIRST,
                           faulty=[h for h in health if h.needs_attention], kinds=PERIOD_KINDS)


@bp.route("/alarms/<int:alarm_id>/ack", methods=["POST"])
@require_roles(*ALL_ROLES)
def ack(alarm_id: int) -> BaseResponse:
    """Acknowledge an alarm with a note (audited). It stays open until its condition clears
    (a device back online, a gap filled): acknowledging says someone is on it."""
    db = db_session()
    alarm = db.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFoundError(f"alarm {alarm_id}")
    scope = current_scope()
    site_id = alarm.site_id
    if site_id is None and alarm.device_id is not None:
        device = db.get(Device, alarm.device_id)
        site_id = device.site_id if device is not None else None
    if not scope.everything and (site_id is None or not scope.site_ok(site_id)):
        raise OutOfScope(f"alarm {alarm_id}")
    form = bind(AckForm, request.form)
    user = current_user()
    alarm.acked_at = utcnow()
    alarm.acked_by = user.id if user is not None else None
    alarm.ack_note = str(form.note.data)
    audit("alarm.ack", str(alarm.id), {"kind": alarm.kind, "device": alarm.device_id,
                                       "site": site_id, "note": alarm.ack_note})
    return redirect(url_for("security.index"))

"""The accommodation register: each stay's legal deadline and notice state (due, overdue,
notified on time, notified late; docs/cccd.md §9), marking as notified with the police portal's
reference (one stay, a selection, or exactly the stays of one's last export), the audited
personal-data view and the exports (the portal's XLSX, one workbook per establishment, CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import Select, func, select
from werkzeug.wrappers.response import Response as BaseResponse

from central.at_rest import AtRestError, decrypt_personal
from central.db.models import AuditLog, Site, Stay, User
from central.readside import notice_state
from central.web.errors import BadRequest, NotFoundError, OutOfScope, PersonalDataUnavailable
from central.web.exports import (
    XLSX_NAME,
    StayRecord,
    stays_by_establishment,
    stays_csv,
    stays_xlsx,
    stays_zip,
)
from central.web.forms import (
    PURPOSES,
    NoticeForm,
    PurposeForm,
    StayFilterForm,
    StayNotifyForm,
    bind,
)
from central.web.security import (
    ALL_ROLES,
    PERSONAL_ROLES,
    audit,
    current_scope,
    current_user,
    db_session,
    get_site,
    require_roles,
    scoped_sites,
)
from central.web.timeutil import as_utc, day_start_utc, fmt_local, utcnow
from wire.masking import mask_id

bp = Blueprint("stays", __name__, url_prefix="/stays")
STATUSES = ("all", "pending", "due", "overdue", "notified", "on_time", "late")
"""``pending`` = not notified yet (due or overdue); ``notified`` = on time or late."""
EXPORT_DEFAULT_STATUS = "pending"
"""Exports without a status hold only the stays not notified yet."""
LIST_LIMIT = 500
EXPORT_LIMIT = 20000
"""At most this many stays per export; beyond it the export is refused (never cut)."""
BULK_LIMIT = EXPORT_LIMIT
CLOCK_SLACK = timedelta(minutes=5)
BADGE = {"due": "due", "overdue": "overdue", "on_time": "notified", "late": "late"}


def status_of(stay: Stay, now: datetime) -> str:
    """``due``, ``overdue``, ``on_time`` or ``late`` (central.readside.notice_state)."""
    return notice_state(stay.deadline_at, stay.notified_at, now)


@dataclass(frozen=True)
class Filters:
    status: str
    site_id: str | None
    first: str
    last: str

    def args(self) -> dict[str, str]:
        return {k: v for k, v in (("status", self.status), ("site", self.site_id or ""),
                                  ("from", self.first), ("to", self.last)) if v}


def _filters(source: Any = None) -> tuple[Filters, StayFilterForm]:
    form = bind(StayFilterForm, request.args if source is None else source,
                status=["", *STATUSES])
    site_id = form.site.data or None
    if site_id is not None:
        get_site(site_id)
    first = form.first.strftime("%d/%m/%Y") if form.first else ""
    last = form.last.strftime("%d/%m/%Y") if form.last else ""
    return Filters(str(form.status.data or ""), site_id, first, last), form


def _select(f: Filters, form: StayFilterForm, status: str, now: datetime) -> Select[Any]:
    scope = current_scope()
    q = select(Stay)
    if f.site_id is not None:
        q = q.where(Stay.site_id == f.site_id)
    elif not scope.everything:
        q = q.where(Stay.site_id.in_(scope.site_ids))
    if form.first is not None:
        q = q.where(Stay.started_at >= day_start_utc(form.first))
    if form.last is not None:
        q = q.where(Stay.started_at < day_start_utc(form.last + timedelta(days=1)))
    pending = Stay.notified_at.is_(None)
    if status == "pending":
        q = q.where(pending)
    elif status == "notified":
        q = q.where(Stay.notified_at.is_not(None))
    elif status == "on_time":
        q = q.where(Stay.notified_at.is_not(None), Stay.notified_at <= Stay.deadline_at)
    elif status == "late":
        q = q.where(Stay.notified_at.is_not(None), Stay.notified_at > Stay.deadline_at)
    elif status == "overdue":
        q = q.where(pending, Stay.deadline_at < now)
    elif status == "due":
        q = q.where(pending, Stay.deadline_at >= now)
    return q


def _data_key() -> bytes:
    key: bytes | None = current_app.config.get("DATA_KEY")
    if not key:
        raise PersonalDataUnavailable("DATA_KEY")
    return key


def _open(stay: Stay) -> dict[str, Any]:
    try:
        return decrypt_personal(_data_key(), stay.stay_id, stay.personal_sealed)
    except AtRestError:
        raise PersonalDataUnavailable(stay.stay_id) from None


def _masked(stay: Stay) -> str:
    """The masked ID (last 4 digits) for the list; nothing else of the blob leaves this call."""
    key = current_app.config.get("DATA_KEY")
    if not key:
        return "—"
    try:
        return mask_id(str(decrypt_personal(key, stay.stay_id, stay.personal_sealed)
                           .get("id_number", "")))
    except AtRestError:
        return "—"


def _get_stay(stay_id: str) -> Stay:
    stay = db_session().get(Stay, stay_id)
    if stay is None:
        raise NotFoundError(stay_id)
    if not current_scope().site_ok(stay.site_id):
        raise OutOfScope(stay_id)
    return stay


def _last_export() -> AuditLog | None:
    """The current user's latest register export (its stays can be marked in one go)."""
    user = current_user()
    if user is None:
        return None
    return db_session().scalars(
        select(AuditLog).where(AuditLog.user_id == user.id,
                               AuditLog.action.in_(("stays.export.xlsx", "stays.export.csv")))
        .order_by(AuditLog.id.desc()).limit(1)).first()


@bp.route("/")
@require_roles(*ALL_ROLES)
def index() -> str:
    """The register: every stay in scope with its deadline and notice state (IDs masked)."""
    f, form = _filters()
    now = utcnow()
    db = db_session()
    query = _select(f, form, f.status or "all", now)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    stays = list(db.scalars(query.order_by(Stay.started_at.desc()).limit(LIST_LIMIT)))
    sites = {s.id: s for s in scoped_sites(db, current_scope())}
    rows = [(s, sites.get(s.site_id), status_of(s, now), _masked(s)) for s in stays]
    last = _last_export()
    pending_in_last = 0
    if last is not None and last.detail:
        ids = list(last.detail.get("stay_ids") or [])
        pending_in_last = db.scalar(select(func.count()).select_from(Stay).where(
            Stay.stay_id.in_(ids), Stay.notified_at.is_(None))) or 0
    return render_template("stays.html", rows=rows, f=f, statuses=STATUSES, badge=BADGE,
                           sites=list(sites.values()), limit=LIST_LIMIT, total=total,
                           last_export=last, pending_in_last=pending_in_last,
                           purposes=PURPOSES)


def _notified_time(value: datetime | None, now: datetime) -> datetime:
    """When the notice was filed: the time given (Vietnam time) or now; never in the future."""
    if value is None:
        return now
    at = as_utc(value)
    if at > now + CLOCK_SLACK:
        raise BadRequest("notified_at: in the future")
    return at


def _mark(stays: list[Stay], at: datetime, reference: str | None) -> list[str]:
    """Mark the stays not yet notified; returns their ids (already notified ones are kept)."""
    user = current_user()
    done: list[str] = []
    for stay in stays:
        if stay.notified_at is not None:
            continue
        if at < as_utc(stay.started_at):
            raise BadRequest(f"notified_at: before the arrival of stay {stay.stay_id} "
                             f"({fmt_local(stay.started_at)})")
        stay.notified_at = at
        stay.notified_by = user.id if user is not None else None
        stay.notice_ref = reference
        done.append(stay.stay_id)
    return done


def _back() -> BaseResponse:
    back = request.form.get("back") or ""
    return redirect(back if back.startswith("/stays") and not back.startswith("//")
                    else url_for("stays.index"))


@bp.route("/<stay_id>/notify", methods=["POST"])
@require_roles(*ALL_ROLES)
def notify(stay_id: str) -> BaseResponse:
    """Mark one stay as notified to the police (audited; idempotent)."""
    stay = _get_stay(stay_id)
    form = bind(StayNotifyForm, request.form)
    now = utcnow()
    at = _notified_time(form.notified_at.value, now)
    done = _mark([stay], at, form.reference.data or None)
    if done:
        audit("stay.notified", stay.stay_id, {
            "site": stay.site_id, "reference": stay.notice_ref, "at": at.isoformat(),
            "state": status_of(stay, now)})
    return _back()


@bp.route("/notify", methods=["POST"])
@require_roles(*ALL_ROLES)
def notify_bulk() -> BaseResponse:
    """Mark several stays notified with the portal's reference: the ticked ones, or every
    stay of one's own export (``export_id``). Out-of-scope stays refuse the whole request."""
    form = bind(NoticeForm, request.form)
    db = db_session()
    ids: list[str] = list(form.stay_ids.data)
    if form.export_id.data is not None:
        row = db.get(AuditLog, form.export_id.data)
        user = current_user()
        if row is None or user is None or row.user_id != user.id or not row.action.startswith(
                "stays.export."):
            raise BadRequest("export_id: not one of your register exports")
        ids.extend(str(i) for i in (row.detail or {}).get("stay_ids") or [])
    ids = sorted(set(ids))
    if not ids:
        raise BadRequest("stay_ids: choose at least one stay")
    if len(ids) > BULK_LIMIT:
        raise BadRequest(f"stay_ids: at most {BULK_LIMIT} at once")
    stays = list(db.scalars(select(Stay).where(Stay.stay_id.in_(ids))))
    if len(stays) != len(ids):
        raise NotFoundError("stay_ids: " + ", ".join(sorted(set(ids) - {s.stay_id
                                                                        for s in stays}))[:200])
    scope = current_scope()
    outside = [s.stay_id for s in stays if not scope.site_ok(s.site_id)]
    if outside:
        raise OutOfScope(outside[0])
    now = utcnow()
    at = _notified_time(form.notified_at.value, now)
    done = _mark(stays, at, str(form.reference.data))
    audit("stay.notified.bulk", str(form.reference.data), {
        "stay_ids": done, "already": len(stays) - len(done), "at": at.isoformat(),
        "export": form.export_id.data,
        "late": sum(1 for s in stays if s.stay_id in done and status_of(s, now) == "late")})
    return _back()


def _purpose() -> dict[str, str]:
    """The stated purpose of this POST (reason + note), or a 400 naming what is missing."""
    return bind(PurposeForm, request.form, reason=list(PURPOSES)).purpose()


@bp.route("/<stay_id>/personal", methods=["GET", "POST"])
@require_roles(*PERSONAL_ROLES)
def personal(stay_id: str) -> str:
    """The guest's personal data, decrypted, for a stated purpose: a GET shows only the form
    asking the reason and note (nothing is opened, so a cross-site link opens nothing); the
    POST (CSRF-checked) opens the data and writes the view with its purpose to the audit
    log (docs/privacy.md §3)."""
    stay = _get_stay(stay_id)
    if request.method == "GET":
        return render_template("purpose.html", stay=stay, purposes=PURPOSES,
                               action=url_for("stays.personal", stay_id=stay.stay_id))
    purpose = _purpose()
    data = _open(stay)
    audit("stay.personal.view", stay.stay_id, {"site": stay.site_id, **purpose})
    site = db_session().get(Site, stay.site_id)
    notifier = db_session().get(User, stay.notified_by) if stay.notified_by else None
    return render_template("stay_personal.html", stay=stay, site=site, p=data,
                           status=status_of(stay, utcnow()), badge=BADGE,
                           notifier=notifier.username if notifier is not None else "")


def _records(f: Filters, form: StayFilterForm) -> list[StayRecord]:
    """Every stay the export's filters select (pending ones by default), in arrival order;
    more than :data:`EXPORT_LIMIT` is refused with the count, never cut."""
    db = db_session()
    query = _select(f, form, f.status or EXPORT_DEFAULT_STATUS, utcnow())
    count = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    if count > EXPORT_LIMIT:
        raise BadRequest(f"export: {count} stays match, at most {EXPORT_LIMIT} per export; "
                         "choose an establishment or fewer dates")
    stays = list(db.scalars(query.order_by(Stay.started_at, Stay.stay_id)))
    sites = {s.id: s for s in scoped_sites(db, current_scope())}
    return [StayRecord(s, sites[s.site_id], _open(s)) for s in stays
            if s.site_id in sites and s.personal_erased_at is None]


def _export_audit(fmt: str, f: Filters, records: list[StayRecord],
                  purpose: dict[str, str]) -> None:
    audit(f"stays.export.{fmt}", f.site_id or "scope",
          {**purpose, "filters": f.args(), "status": f.status or EXPORT_DEFAULT_STATUS,
           "count": len(records), "establishments": sorted({r.site.id for r in records}),
           "stay_ids": [r.stay.stay_id for r in records]})


@bp.route("/export.xlsx", methods=["POST"])
@require_roles(*PERSONAL_ROLES)
def export_xlsx() -> Response:
    """The portal's import workbook ``tblt_vn_import.xlsx`` (audited with its purpose; a POST
    with CSRF, the register's filters in the form): one establishment per workbook, a zip of
    workbooks when the filters cover several."""
    f, form = _filters(request.form)
    purpose = _purpose()
    records = _records(f, form)
    groups = stays_by_establishment(records)
    _export_audit("xlsx", f, records, purpose)
    if len(groups) > 1:
        stamp = fmt_local(utcnow(), "%Y%m%d_%H%M")
        return Response(stays_zip(groups), mimetype="application/zip", headers={
            "Content-Disposition": f'attachment; filename="tblt_vn_import_{stamp}.zip"'})
    site = next(iter(groups.values()))[0].site if groups else (
        get_site(f.site_id) if f.site_id else None)
    body = stays_xlsx(records, site.name if site is not None else "")
    return Response(body, mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": f'attachment; filename="{XLSX_NAME}"'})


@bp.route("/export.csv", methods=["POST"])
@require_roles(*PERSONAL_ROLES)
def export_csv() -> Response:
    """The same rows as CSV (audited with its purpose; a POST like the workbook)."""
    f, form = _filters(request.form)
    purpose = _purpose()
    records = _records(f, form)
    body = stays_csv(records)
    _export_audit("csv", f, records, purpose)
    return Response(body, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="luu_tru.csv"'})

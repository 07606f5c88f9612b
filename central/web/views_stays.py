"""The accommodation register: deadline status, mark as notified, audited personal-data view
and exports (XLSX in the portal's import layout, CSV)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers.response import Response as BaseResponse

from central.at_rest import AtRestError, decrypt_personal
from central.db.models import Site, Stay
from central.web.errors import BadRequest, NotFoundError, OutOfScope, PersonalDataUnavailable
from central.web.exports import XLSX_NAME, StayRecord, stays_csv, stays_xlsx
from central.web.periods import parse_date
from central.web.security import (
    ALL_ROLES,
    audit,
    current_scope,
    current_user,
    db_session,
    get_site,
    mask_id,
    require_roles,
    scoped_sites,
)
from central.web.timeutil import as_utc, day_start_utc, utcnow

bp = Blueprint("stays", __name__, url_prefix="/stays")
STATUSES = ("all", "due", "overdue", "notified")
LIST_LIMIT = 500
EXPORT_LIMIT = 20000


def status_of(stay: Stay, now: datetime) -> str:
    """``notified`` once filed; otherwise ``overdue`` past the deadline, else ``due``."""
    if stay.notified_at is not None:
        return "notified"
    return "overdue" if as_utc(stay.deadline_at) < now else "due"


@dataclass(frozen=True)
class Filters:
    status: str
    site_id: str | None
    first: str
    last: str

    def args(self) -> dict[str, str]:
        return {k: v for k, v in (("status", self.status), ("site", self.site_id or ""),
                                  ("from", self.first), ("to", self.last)) if v}


def _filters() -> Filters:
    status = request.args.get("status") or "all"
    if status not in STATUSES:
        raise BadRequest(f"status: one of {', '.join(STATUSES)}")
    site_id = request.args.get("site") or None
    if site_id is not None:
        get_site(site_id)
    return Filters(status, site_id, request.args.get("from", ""), request.args.get("to", ""))


def _query(f: Filters, limit: int) -> list[Stay]:
    now = utcnow()
    scope = current_scope()
    q = select(Stay).order_by(Stay.started_at.desc())
    if f.site_id is not None:
        q = q.where(Stay.site_id == f.site_id)
    elif not scope.everything:
        q = q.where(Stay.site_id.in_(scope.site_ids))
    first, last = parse_date(f.first, "from"), parse_date(f.last, "to")
    if first is not None:
        q = q.where(Stay.started_at >= day_start_utc(first))
    if last is not None:
        q = q.where(Stay.started_at < day_start_utc(last + timedelta(days=1)))
    if f.status == "notified":
        q = q.where(Stay.notified_at.is_not(None))
    elif f.status == "overdue":
        q = q.where(Stay.notified_at.is_(None), Stay.deadline_at < now)
    elif f.status == "due":
        q = q.where(Stay.notified_at.is_(None), Stay.deadline_at >= now)
    return list(db_session().scalars(q.limit(limit)))


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


@bp.route("/")
@require_roles(*ALL_ROLES)
def index() -> str:
    """The register: every stay in scope with its deadline status (ID numbers masked)."""
    f = _filters()
    now = utcnow()
    stays = _query(f, LIST_LIMIT)
    sites = {s.id: s for s in scoped_sites(db_session(), current_scope())}
    rows = [(s, sites.get(s.site_id), status_of(s, now), _masked(s)) for s in stays]
    return render_template("stays.html", rows=rows, f=f, statuses=STATUSES,
                           sites=list(sites.values()), limit=LIST_LIMIT)


@bp.route("/<stay_id>/notify", methods=["POST"])
@require_roles(*ALL_ROLES)
def notify(stay_id: str) -> BaseResponse:
    """Mark a stay as notified to the police (audited; idempotent)."""
    stay = _get_stay(stay_id)
    user = current_user()
    if stay.notified_at is None:
        stay.notified_at = utcnow()
        stay.notified_by = user.id if user is not None else None
        audit("stay.notified", stay.stay_id, {"site": stay.site_id})
    back = request.form.get("back") or ""
    return redirect(back if back.startswith("/stays") else url_for("stays.index"))


@bp.route("/<stay_id>/personal")
@require_roles(*ALL_ROLES)
def personal(stay_id: str) -> str:
    """The guest's personal data, decrypted: every view is written to the audit log."""
    stay = _get_stay(stay_id)
    data = _open(stay)
    audit("stay.personal.view", stay.stay_id, {"site": stay.site_id})
    site = db_session().get(Site, stay.site_id)
    return render_template("stay_personal.html", stay=stay, site=site, p=data,
                           status=status_of(stay, utcnow()))


def _records(f: Filters) -> list[StayRecord]:
    stays = list(reversed(_query(f, EXPORT_LIMIT)))
    sites = {s.id: s for s in scoped_sites(db_session(), current_scope())}
    return [StayRecord(s, sites[s.site_id], _open(s)) for s in stays
            if s.site_id in sites and s.personal_erased_at is None]


def _export_audit(fmt: str, f: Filters, records: list[StayRecord]) -> None:
    audit(f"stays.export.{fmt}", f.site_id or "scope",
          {"filters": f.args(), "count": len(records),
           "stay_ids": [r.stay.stay_id for r in records[:1000]]})


@bp.route("/export.xlsx")
@require_roles(*ALL_ROLES)
def export_xlsx() -> Response:
    """``tblt_vn_import.xlsx``: the portal's import workbook (audited)."""
    f = _filters()
    records = _records(f)
    establishment = records[0].site.name if f.site_id and records else ", ".join(
        sorted({r.site.name for r in records}))
    body = stays_xlsx(records, establishment)
    _export_audit("xlsx", f, records)
    return Response(body, mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": f'attachment; filename="{XLSX_NAME}"'})


@bp.route("/export.csv")
@require_roles(*ALL_ROLES)
def export_csv() -> Response:
    """The same rows as CSV (audited)."""
    f = _filters()
    records = _records(f)
    body = stays_csv(records)
    _export_audit("csv", f, records)
    return Response(body, mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="luu_tru.csv"'})

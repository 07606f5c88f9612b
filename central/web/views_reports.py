"""Reports by period and unit: ratio tables with drill-down, exportable to XLSX and CSV, and
submitted reports frozen as versioned snapshots (the JSON and the XLSX rendered from it)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers.response import Response as BaseResponse

from central.db.models import ReportSnapshot, Role, SiteKind, Unit
from central.readside import METHODS, TREND_BUCKETS, in_patients, trend
from central.web.app import current_language
from central.web.errors import BadRequest, NotFoundError, OutOfScope
from central.web.exports import report_csv, report_filename, report_xlsx
from central.web.forms import ReportFilterForm, bind
from central.web.periods import PERIOD_KINDS, resolve
from central.web.reports import Report, build_report, report_json
from central.web.security import (
    ALL_ROLES,
    audit,
    current_scope,
    current_user,
    db_session,
    get_unit,
    require_roles,
    scoped_sites,
    subtree_ids,
    unit_children,
)
from central.web.timeutil import utcnow

bp = Blueprint("reports", __name__, url_prefix="/reports")
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REPORT_ARGS = ("period", "date", "from", "to", "unit")


def report_from_args(args: MultiDict[str, str] | None = None) -> Report:
    """The report the parameters name (``period``, ``date``, ``from``, ``to``, ``unit``),
    validated by :class:`ReportFilterForm` (dates ``dd/mm/yyyy``)."""
    form = bind(ReportFilterForm, request.args if args is None else args,
                period=["", *PERIOD_KINDS])
    period = resolve(form.period.data or None, form.iso("date"), form.iso("from"),
                     form.iso("to"))
    unit = get_unit(form.unit.data) if form.unit.data is not None else None
    user = current_user()
    return build_report(db_session(), current_scope(), period, unit,
                        site_staff=user is not None and user.role is Role.SITE)


@bp.route("/trends")
@require_roles(*ALL_ROLES)
def trends() -> str:
    """Daily or weekly arrivals per site (side by side) and per method, the insured-visit
    ratio per hospital over time, and the in-patients per hospital and ward now."""
    by = request.args.get("by") or "day"
    if by not in TREND_BUCKETS:
        raise BadRequest(f"by: one of {', '.join(TREND_BUCKETS)}")
    form = bind(ReportFilterForm, request.args, period=["", *PERIOD_KINDS])
    period = resolve(form.period.data or None, form.iso("date"), form.iso("from"),
                     form.iso("to"))
    unit = get_unit(form.unit.data) if form.unit.data is not None else None
    db = db_session()
    unit_ids = subtree_ids(unit_children(db), unit.id) if unit is not None else None
    sites = scoped_sites(db, current_scope(), unit_ids=unit_ids)
    start, end = period.utc_bounds()
    data = trend(db, sites, start, end, by)
    args = {k: v for k, v in request.args.items() if k in (*REPORT_ARGS, "by") and v}
    return render_template("trends.html", period=period, unit=unit, sites=sites, t=data,
                           by=by, methods=METHODS, kinds=PERIOD_KINDS, units=_visible_units(),
                           args=args, hospitals=[s for s in sites
                                                 if s.kind is SiteKind.HOSPITAL],
                           inpatients=in_patients(db, sites, utcnow()),
                           names={s.id: s.name for s in sites})


def _visible_units() -> list[Unit]:
    user = current_user()
    if user is not None and user.role is Role.SITE:
        return []  # site staff report on their own sites
    scope = current_scope()
    query = select(Unit).order_by(Unit.code)
    if not scope.everything:
        query = query.where(Unit.id.in_(scope.unit_ids))
    return list(db_session().scalars(query))


def _author() -> str:
    user = current_user()
    return user.username if user is not None else ""


@bp.route("/")
@require_roles(*ALL_ROLES)
def index() -> str:
    """The report form and its ratio tables."""
    report = report_from_args()
    args = {k: v for k, v in request.args.items() if k in REPORT_ARGS and v}
    base_args = {k: v for k, v in args.items() if k != "unit"}
    return render_template("reports.html", report=report, kinds=PERIOD_KINDS,
                           units=_visible_units(), args=args, base_args=base_args)


def _period_detail(report: Report) -> dict[str, Any]:
    return {"period": report.period.kind, "first": report.period.first.isoformat(),
            "last": report.period.last.isoformat()}


@bp.route("/export.xlsx")
@require_roles(*ALL_ROLES)
def export_xlsx() -> Response:
    report = report_from_args()
    data = report_json(report)
    audit("report.export.xlsx", report.unit.code if report.unit else "scope",
          _period_detail(report))
    return Response(report_xlsx(data, current_language(), _author()), mimetype=XLSX_MIME,
                    headers={"Content-Disposition":
                             f'attachment; filename="{report_filename(data, "xlsx")}"'})


@bp.route("/export.csv")
@require_roles(*ALL_ROLES)
def export_csv() -> Response:
    report = report_from_args()
    data = report_json(report)
    audit("report.export.csv", report.unit.code if report.unit else "scope",
          _period_detail(report))
    return Response(report_csv(data, current_language()), content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="{report_filename(data, "csv")}"'})


def _site_ids(report: Report) -> list[str]:
    ids = {r.site_id for t in report.tables for r in t.site_rows if r.site_id}
    return sorted(ids)


@bp.route("/submit", methods=["POST"])
@require_roles(*ALL_ROLES)
def submit() -> BaseResponse:
    """Freeze the report the form names: its JSON and XLSX are stored as the next version."""
    db = db_session()
    report = report_from_args(request.form)
    data = report_json(report)
    sites = _site_ids(report)
    user = current_user()
    if user is not None and user.role is Role.SITE:
        scope_key = "sites:" + ",".join(sorted(current_scope().site_ids))
    elif report.unit is not None:
        scope_key = f"unit:{report.unit.id}"
    else:
        scope_key = "all"
    p = report.period
    version = (db.scalar(select(func.max(ReportSnapshot.version)).where(
        ReportSnapshot.scope_key == scope_key, ReportSnapshot.period_kind == p.kind,
        ReportSnapshot.first_day == p.first, ReportSnapshot.last_day == p.last)) or 0) + 1
    author = _author()
    snap = ReportSnapshot(
        scope_key=scope_key[:200], unit_id=report.unit.id if report.unit else None,
        site_ids=sites, period_kind=p.kind, first_day=p.first, last_day=p.last,
        version=version, created_at=utcnow(), created_by=user.id if user else None,
        author=author, data=data,
        xlsx=report_xlsx(data, current_language(), author, version))
    db.add(snap)
    db.flush()
    audit("report.submit", scope_key, {**_period_detail(report), "version": version,
                                       "snapshot": snap.id})
    return redirect(url_for("reports.snapshot", snapshot_id=snap.id))


def _visible(snap: ReportSnapshot) -> bool:
    scope = current_scope()
    if scope.everything:
        return True
    if snap.unit_id is not None and not scope.unit_ok(snap.unit_id):
        return False
    return set(snap.site_ids) <= set(scope.site_ids)


def _snapshot(snapshot_id: int) -> ReportSnapshot:
    snap = db_session().get(ReportSnapshot, snapshot_id)
    if snap is None:
        raise NotFoundError(f"snapshot {snapshot_id}")
    if not _visible(snap):
        raise OutOfScope(f"snapshot {snapshot_id}")
    return snap


@bp.route("/snapshots")
@require_roles(*ALL_ROLES)
def snapshots() -> str:
    """Submitted reports the principal may read, newest first."""
    rows = [s for s in db_session().scalars(
        select(ReportSnapshot).order_by(ReportSnapshot.id.desc()).limit(500)) if _visible(s)]
    return render_template("report_snapshots.html", rows=rows)


@bp.route("/snapshots/<int:snapshot_id>")
@require_roles(*ALL_ROLES)
def snapshot(snapshot_id: int) -> str:
    """A submitted report as it was frozen."""
    snap = _snapshot(snapshot_id)
    return render_template("report_snapshot.html", snap=snap, data=snap.data)


@bp.route("/snapshots/<int:snapshot_id>.xlsx")
@require_roles(*ALL_ROLES)
def snapshot_xlsx(snapshot_id: int) -> Response:
    """The XLSX stored when the report was submitted (byte for byte)."""
    snap = _snapshot(snapshot_id)
    audit("report.snapshot.download", str(snap.id), {"version": snap.version})
    name = report_filename(snap.data, "xlsx", snap.version)
    return Response(snap.xlsx, mimetype=XLSX_MIME,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.route("/snapshots/<int:snapshot_id>.json")
@require_roles(*ALL_ROLES)
def snapshot_json(snapshot_id: int) -> Response:
    """The stored JSON of a submitted report."""
    snap = _snapshot(snapshot_id)
    response: Response = jsonify(id=snap.id, version=snap.version, author=snap.author,
                                 created_at=snap.created_at.isoformat(), report=snap.data)
    return response

"""Reports by period and unit: ratio tables, exportable to XLSX and CSV."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from central.db.models import Unit
from central.web.app import current_language
from central.web.exports import report_csv, report_xlsx
from central.web.periods import PERIOD_KINDS, resolve
from central.web.reports import Report, build_report
from central.web.security import (
    ALL_ROLES,
    audit,
    bounded_int,
    current_scope,
    db_session,
    get_unit,
    require_roles,
)

bp = Blueprint("reports", __name__, url_prefix="/reports")


def report_from_args() -> Report:
    """The report the query string names (``period``, ``date``, ``from``, ``to``, ``unit``)."""
    args = request.args
    period = resolve(args.get("period"), args.get("date"), args.get("from"), args.get("to"))
    unit = None
    unit_id = bounded_int(args.get("unit"), "unit")
    if unit_id is not None:
        unit = get_unit(unit_id)
    return build_report(db_session(), current_scope(), period, unit)


def _visible_units() -> list[Unit]:
    scope = current_scope()
    query = select(Unit).order_by(Unit.code)
    if not scope.everything:
        query = query.where(Unit.id.in_(scope.unit_ids))
    return list(db_session().scalars(query))


@bp.route("/")
@require_roles(*ALL_ROLES)
def index() -> str:
    """The report form and its ratio tables."""
    report = report_from_args()
    return render_template("reports.html", report=report, kinds=PERIOD_KINDS,
                           units=_visible_units(), args=request.args)


@bp.route("/export.xlsx")
@require_roles(*ALL_ROLES)
def export_xlsx() -> Response:
    report = report_from_args()
    audit("report.export.xlsx", report.unit.code if report.unit else "scope",
          {"period": report.period.kind, "first": report.period.first.isoformat(),
           "last": report.period.last.isoformat()})
    return Response(report_xlsx(report, current_language()), mimetype=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": 'attachment; filename="bao_cao.xlsx"'})


@bp.route("/export.csv")
@require_roles(*ALL_ROLES)
def export_csv() -> Response:
    report = report_from_args()
    audit("report.export.csv", report.unit.code if report.unit else "scope",
          {"period": report.period.kind, "first": report.period.first.isoformat(),
           "last": report.period.last.isoformat()})
    return Response(report_csv(report, current_language()), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="bao_cao.csv"'})


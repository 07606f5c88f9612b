"""The JSON API ``/api/v1`` (read-only): counts, occupancy, sites, devices, reports.

Authentication: a bearer :class:`~central.db.models.ApiToken` (scoped to a unit subtree) or the
session of a logged-in user (scoped by role). Only GET is routed, so any write is a 405.
The OpenAPI 3.1 description is served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from central.db.models import Site, SiteOccupancy, Unit
from central.web.openapi import OPENAPI
from central.web.periods import Period, resolve
from central.web.queries import counts, device_health
from central.web.reports import build_report, report_json
from central.web.security import (
    bounded_int,
    current_scope,
    db_session,
    get_site,
    get_unit,
    scoped_sites,
    subtree_ids,
    unit_children,
)
from central.web.timeutil import as_utc

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


def _int_arg(name: str) -> int | None:
    return bounded_int(request.args.get(name), name)


def _selected_sites() -> list[Site]:
    """Sites named by ``site`` or ``unit`` (subtree), always within the principal's scope."""
    db = db_session()
    site_id = request.args.get("site")
    if site_id:
        return [get_site(site_id)]
    unit_id = _int_arg("unit")
    if unit_id is not None:
        unit = get_unit(unit_id)
        return scoped_sites(db, current_scope(),
                            unit_ids=subtree_ids(unit_children(db), unit.id))
    return scoped_sites(db, current_scope())


def _period() -> Period:
    a = request.args
    return resolve(a.get("period"), a.get("date"), a.get("from"), a.get("to"))


def _period_json(period: Period) -> dict[str, Any]:
    start, end = period.utc_bounds()
    return {"kind": period.kind, "first": period.first.isoformat(),
            "last": period.last.isoformat(), "start": _iso(start), "end": _iso(end)}


@bp.route("/sites")
def sites() -> Response:
    """Sites in scope with capacity and current occupancy."""
    db = db_session()
    rows = _selected_sites()
    occ = {o.site_id: o for o in db.scalars(
        select(SiteOccupancy).where(SiteOccupancy.site_id.in_([s.id for s in rows])))}
    units = {u.id: u for u in db.scalars(select(Unit))}
    return jsonify(sites=[{
        "id": s.id, "name": s.name, "kind": s.kind.value, "unit_id": s.unit_id,
        "unit_code": units[s.unit_id].code if s.unit_id in units else None,
        "capacity": s.capacity, "occupancy": occ[s.id].occupancy if s.id in occ else 0}
        for s in rows])


@bp.route("/occupancy")
def occupancy() -> Response:
    """People inside each site now, against capacity."""
    db = db_session()
    rows = _selected_sites()
    occ = {o.site_id: o for o in db.scalars(
        select(SiteOccupancy).where(SiteOccupancy.site_id.in_([s.id for s in rows])))}
    out = []
    for s in rows:
        o = occ.get(s.id)
        n = o.occupancy if o else 0
        out.append({"site_id": s.id, "occupancy": n, "capacity": s.capacity,
                    "ratio": (n / s.capacity) if s.capacity else None,
                    "updated_at": _iso(o.updated_at) if o else None})
    return jsonify(sites=out, total=sum(r["occupancy"] for r in out))


@bp.route("/counts")
def counts_view() -> Response:
    """Sums of people and events over a period, grouped by ``group_by`` (comma-separated)."""
    period = _period()
    group_by = [g for g in request.args.get("group_by", "").split(",") if g]
    kinds = [k for k in request.args.get("kind", "").split(",") if k] or None
    start, end = period.utc_bounds()
    rows = counts(db_session(), [s.id for s in _selected_sites()], start, end, group_by,
                  kinds=kinds)
    return jsonify(period=_period_json(period), group_by=group_by, rows=rows,
                   total={"people": sum(r["people"] for r in rows),
                          "events": sum(r["events"] for r in rows)})


@bp.route("/devices")
def devices() -> Response:
    """Device health in scope."""
    site_id = request.args.get("site")
    if site_id:
        get_site(site_id)
    out = []
    for h in device_health(db_session(), current_scope(), site_id or None):
        d = h.device
        out.append({"id": d.id, "site_id": d.site_id, "name": d.name, "state": d.state,
                    "revoked": d.revoked, "last_seen": _iso(d.last_seen),
                    "last_seq": d.last_seq, "contiguous_seq": d.contiguous_seq,
                    "version": d.version, "outbox_depth": d.outbox_depth,
                    "oldest_undelivered_at": _iso(d.oldest_undelivered_at),
                    "open_seq_gaps": h.open_gaps, "rejections": h.rejections,
                    "components": [{"group": g, "uri": u, "state": st, "detail": dt}
                                   for g, u, st, dt in h.components],
                    "faults": h.faults,
                    "backlog_age_s": None if h.backlog_age is None
                    else int(h.backlog_age.total_seconds()),
                    "clock_skew_s": h.clock_skew, "needs_attention": h.needs_attention})
    return jsonify(devices=out)


@bp.route("/reports")
def reports() -> Response:
    """Ratio tables for a period and unit (``unit`` omitted: the whole scope)."""
    unit_id = _int_arg("unit")
    unit = get_unit(unit_id) if unit_id is not None else None
    period = _period()
    report = build_report(db_session(), current_scope(), period, unit)
    body = report_json(report)
    return jsonify(period=_period_json(period), unit=body["unit"], title=body["title"],
                   tables=body["tables"])


@bp.route("/openapi.json")
def openapi() -> Response:
    """This API's OpenAPI 3.1 description."""
    return jsonify(OPENAPI)

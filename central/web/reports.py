"""Ratio tables by period and unit (docs/cccd.md §10): total | via CCCD/VNeID | ratio | target.

For a chosen unit ``U`` each table has

* one row per unit directly below ``U`` (each aggregating its whole subtree, with a drill-down
  link to its own report), then one row per site attached directly to ``U`` (a district may
  have communes *and* a hospital of its own);
* a total row for ``U`` — by construction the sum of the rows above, for every metric;
* ``site_rows``: every site of ``U``'s subtree the metric concerns (a hospital for the
  insured-visit ratio, a heritage site for gate entries, every site for "equipped",
  accommodation and hospitals for notices), whose sum is the total too.

Only sites inside the principal's scope count. Site staff get per-site rows of their own
sites, the total labelled with the sites' names. The figures come from
:func:`central.readside.site_tallies` (three grouped queries per report).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from central.db.models import Site, SiteKind, Target, Unit
from central.readside import Tally, site_tallies
from central.web.periods import Period
from central.web.security import Scope, scoped_sites, subtree_ids, unit_children
from central.web.timeutil import utcnow

METRICS = ("hospital_cccd", "heritage_cccd", "sites_equipped", "stays_notified")
DEFAULT_TARGETS: dict[str, float | None] = {
    "hospital_cccd": 0.8, "heritage_cccd": None, "sites_equipped": 1.0, "stays_notified": 1.0}
"""Programme targets: over 80% of insured hospital visits by CCCD/VNeID, 100% of sites
equipped, 100% of stays notified on time. A :class:`Target` row (per unit, inherited down the
tree, or nationwide with ``unit_id`` NULL) overrides them."""
METRIC_KINDS: dict[str, frozenset[SiteKind]] = {
    "hospital_cccd": frozenset({SiteKind.HOSPITAL}),
    "heritage_cccd": frozenset({SiteKind.HERITAGE}),
    "sites_equipped": frozenset(SiteKind),
    "stays_notified": frozenset({SiteKind.ACCOMMODATION, SiteKind.HOSPITAL}),
}
"""The kinds of site a metric concerns (per-site rows; other sites show only if non-zero)."""


@dataclass(frozen=True)
class RatioRow:
    """One line of a ratio table: a unit (its subtree), a site, or the total."""

    unit_id: int | None
    code: str
    name: str
    total: int
    via: int
    target: float | None
    is_total: bool = False
    site_id: str | None = None
    figures: dict[str, int] = field(default_factory=dict)
    """Figures beside the ratio: ``late`` and ``overdue`` notices for ``stays_notified``."""
    unit_name: str = ""
    """For a site row: the name of the unit the site is attached to."""
    site_kind: str = ""
    """For a site row: heritage, hospital or accommodation."""

    @property
    def kind(self) -> str:
        return "total" if self.is_total else ("site" if self.site_id else "unit")

    @property
    def ratio(self) -> float | None:
        return None if self.total == 0 else self.via / self.total

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
        return ratio >= self.target - 1e-12

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "unit_id": self.unit_id, "site_id": self.site_id,
                "code": self.code, "name": self.name, "unit_name": self.unit_name,
                "site_kind": self.site_kind,
                "total": self.total, "via": self.via, "ratio": self.ratio,
                "target": self.target, "met": self.met, "is_total": self.is_total,
                **{k: v for k, v in self.figures.items()}}


@dataclass(frozen=True)
class RatioTable:
    metric: str
    rows: list[RatioRow]
    """Units below, sites attached directly, then the total (last)."""
    site_rows: list[RatioRow] = field(default_factory=list)
    """Every site of the subtree the metric concerns (their sum is the total too)."""

    @property
    def total(self) -> RatioRow:
        return self.rows[-1]


@dataclass(frozen=True)
class Report:
    period: Period
    unit: Unit | None
    tables: list[RatioTable]
    title: str = ""
    """What the total row is about: the unit's name, or the site staff's site names."""
    path: list[Unit] = field(default_factory=list)
    """The chosen unit's ancestors inside the scope, top first (the drill-down trail)."""
    generated_at: datetime | None = None


def _targets(db: Session) -> dict[tuple[int | None, str], float]:
    return {(t.unit_id, t.metric): t.value for t in db.scalars(select(Target))}


def resolve_target(targets: dict[tuple[int | None, str], float], units: dict[int, Unit],
                   unit_id: int | None, metric: str) -> float | None:
    """The target of ``metric`` for a unit: its own, else its nearest ancestor's, else the
    nationwide row, else :data:`DEFAULT_TARGETS`."""
    seen: set[int] = set()
    current = unit_id
    while current is not None and current not in seen:
        seen.add(current)
        if (current, metric) in targets:
            return targets[(current, metric)]
        parent = units.get(current)
        current = parent.parent_id if parent is not None else None
    if (None, metric) in targets:
        return targets[(None, metric)]
    return DEFAULT_TARGETS.get(metric)


def top_units(scope: Scope, tree: dict[int | None, list[Unit]]) -> list[Unit]:
    """The highest units the scope reaches (the tree's roots for admin)."""
    if scope.everything:
        return tree.get(None, [])
    everything = [u for units in tree.values() for u in units]
    return [u for u in everything if u.id in scope.unit_ids and u.parent_id not in scope.unit_ids]


def _sum(tallies: Iterable[Tally]) -> Tally:
    acc = Tally()
    for t in tallies:
        acc.add(t)
    return acc


def build_report(db: Session, scope: Scope, period: Period, unit: Unit | None,
                 metrics: Iterable[str] = METRICS, *, site_staff: bool = False,
                 now: datetime | None = None) -> Report:
    """The ratio tables of ``metrics`` for ``unit`` (or the whole scope) over ``period``.

    ``site_staff``: rows are the scope's sites themselves (whatever ``unit`` says). Without a
    unit, a scope with a single top unit (province or district staff) reports on that unit.
    """
    now = now or utcnow()
    tree = unit_children(db)
    units = {u.id: u for us in tree.values() for u in us}
    sites = scoped_sites(db, scope)
    start, end = period.utc_bounds()
    tallies = site_tallies(db, sites, start, end, now)
    targets = _targets(db)
    if unit is None and not site_staff and not scope.everything:
        tops = top_units(scope, tree)
        if len(tops) == 1:
            unit = tops[0]

    row_units: list[Unit] = []
    direct: list[Site]
    if site_staff:
        unit = None
        direct = list(sites)
        title = ", ".join(s.name for s in sites)
        in_total = list(sites)
    elif unit is None:
        row_units = top_units(scope, tree)
        covered = set().union(*(subtree_ids(tree, u.id) for u in row_units)) \
            if row_units else set()
        direct = [s for s in sites if s.unit_id not in covered]  # none in a well-formed tree
        title = ""
        in_total = list(sites)
    else:
        row_units = [c for c in tree.get(unit.id, []) if scope.unit_ok(c.id) or any(
            s.unit_id in subtree_ids(tree, c.id) for s in sites)]
        direct = [s for s in sites if s.unit_id == unit.id]
        title = unit.name
        allowed = subtree_ids(tree, unit.id)
        in_total = [s for s in sites if s.unit_id in allowed]

    unit_sets = [(u, subtree_ids(tree, u.id)) for u in row_units]
    unit_tallies = [(u, _sum(tallies[s.id] for s in sites if s.unit_id in ids))
                    for u, ids in unit_sets]
    total = _sum(tallies[s.id] for s in in_total)
    total_unit_id = unit.id if unit is not None else None
    path: list[Unit] = []
    walker = unit
    while walker is not None and scope.unit_ok(walker.id):
        path.insert(0, walker)
        walker = units.get(walker.parent_id) if walker.parent_id is not None else None

    def site_row(s: Site, metric: str) -> RatioRow:
        t = tallies[s.id]
        tot, via = t.pair(metric)
        return RatioRow(s.unit_id, s.id, s.name, tot, via,
                        resolve_target(targets, units, s.unit_id, metric), site_id=s.id,
                        figures=t.figures(metric), site_kind=s.kind.value,
                        unit_name=units[s.unit_id].name if s.unit_id in units else "")

    def concerns(s: Site, metric: str) -> bool:
        return s.kind in METRIC_KINDS[metric] or tallies[s.id].pair(metric)[0] > 0

    out: list[RatioTable] = []
    for metric in metrics:
        rows: list[RatioRow] = []
        for u, t in unit_tallies:
            tot, via = t.pair(metric)
            rows.append(RatioRow(u.id, u.code, u.name, tot, via,
                                 resolve_target(targets, units, u.id, metric),
                                 figures=t.figures(metric)))
        rows.extend(site_row(s, metric) for s in direct if concerns(s, metric))
        tot, via = total.pair(metric)
        rows.append(RatioRow(total_unit_id, unit.code if unit else "", title, tot, via,
                             resolve_target(targets, units, total_unit_id, metric),
                             is_total=True, figures=total.figures(metric)))
        site_rows = [site_row(s, metric) for s in in_total if concerns(s, metric)]
        out.append(RatioTable(metric, rows, site_rows))
    return Report(period, unit, out, title=title, path=path, generated_at=now)


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON (the frozen snapshot's content and the API's answer)."""
    unit = report.unit
    return {
        "period": {"kind": report.period.kind, "first": report.period.first.isoformat(),
                   "last": report.period.last.isoformat(), "label": report.period.label},
        "unit": None if unit is None else {"id": unit.id, "code": unit.code, "name": unit.name,
                                           "level": unit.level.value},
        "title": report.title,
        "generated_at": report.generated_at.isoformat() if report.generated_at else None,
        "tables": [{"metric": t.metric, "rows": [r.as_json() for r in t.rows],
                    "site_rows": [r.as_json() for r in t.site_rows]} for t in report.tables],
    }

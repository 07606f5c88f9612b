"""Ratio tables by period and unit (CCCD.md §10): total | via CCCD/VNeID | ratio | target | met?

Rows are the units directly below the chosen unit (each aggregating its whole subtree:
commune → district → province) plus a total row for the chosen unit; only sites inside the
principal's scope are counted. Counts come from rollups (one grouped query per report).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central.db.models import Device, Rollup, Site, SiteKind, Stay, Target, Unit
from central.web.periods import Period
from central.web.queries import CCCD_METHODS
from central.web.security import Scope, scoped_sites, subtree_ids, unit_children

INSURED = ("valid", "paper-card")
"""Insured hospital visits (the ``hospital_cccd`` denominator): visits whose insurance answer was
``valid`` (any method: the gateway's look-up for chip, card QR and VNeID visits; the card's own
validity for ``bhyt-qr`` visits, the BHYT card's QR) and manual visits counted as
``paper-insurance`` (the paper BHYT card). Visits found uninsured (``invalid``), not answered
(``unknown``) or not asked about (``not-checked``) are outside the ratio: they cannot be called
insured visits. The numerator counts only :data:`CCCD_METHODS`: a visit with the BHYT card's QR
is an insured visit that did not use the CCCD or VNeID."""

METRICS = ("hospital_cccd", "heritage_cccd", "sites_equipped", "stays_notified")
DEFAULT_TARGETS: dict[str, float | None] = {
    "hospital_cccd": 0.8, "heritage_cccd": None, "sites_equipped": 1.0, "stays_notified": 1.0}
"""Programme targets: over 80% of insured hospital visits by CCCD/VNeID, 100% of sites
equipped, 100% of stays notified. A :class:`Target` row (per unit, inherited down the tree,
or nationwide with ``unit_id`` NULL) overrides them."""


@dataclass(frozen=True)
class RatioRow:
    """One line of a ratio table."""

    unit_id: int | None
    code: str
    name: str
    total: int
    via: int
    target: float | None
    is_total: bool = False

    @property
    def ratio(self) -> float | None:
        return None if self.total == 0 else self.via / self.total

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None or self.target is None:
            return None
        return ratio >= self.target - 1e-12


@dataclass(frozen=True)
class RatioTable:
    metric: str
    rows: list[RatioRow]


@dataclass(frozen=True)
class Report:
    period: Period
    unit: Unit | None
    tables: list[RatioTable]


@dataclass
class _Tally:
    hosp_total: int = 0
    hosp_via: int = 0
    her_total: int = 0
    her_via: int = 0
    sites: int = 0
    equipped: int = 0
    stays: int = 0
    notified: int = 0

    def add(self, other: _Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def pair(self, metric: str) -> tuple[int, int]:
        return {"hospital_cccd": (self.hosp_total, self.hosp_via),
                "heritage_cccd": (self.her_total, self.her_via),
                "sites_equipped": (self.sites, self.equipped),
                "stays_notified": (self.stays, self.notified)}[metric]


def _site_tallies(db: Session, sites: list[Site], period: Period) -> dict[str, _Tally]:
    start, end = period.utc_bounds()
    ids = [s.id for s in sites]
    kind_of = {s.id: s.kind for s in sites}
    tallies = {s.id: _Tally(sites=1) for s in sites}
    query = (select(Rollup.site_id, Rollup.kind, Rollup.method, Rollup.insurance,
                    func.sum(Rollup.people))
             .where(Rollup.hour >= start, Rollup.hour < end, Rollup.site_id.in_(ids))
             .group_by(Rollup.site_id, Rollup.kind, Rollup.method, Rollup.insurance))
    for sid, kind, method, insurance, people in db.execute(query):
        t, n, via = tallies[sid], int(people or 0), method in CCCD_METHODS
        if kind_of[sid] is SiteKind.HOSPITAL and insurance in INSURED:
            t.hosp_total += n
            t.hosp_via += n if via and kind == "visit" else 0
        elif kind_of[sid] is SiteKind.HERITAGE and kind in ("entry", "manual:entry"):
            t.her_total += n
            t.her_via += n if via and kind == "entry" else 0
    for (sid,) in db.execute(select(Device.site_id).where(
            Device.site_id.in_(ids), Device.revoked.is_(False)).distinct()):
        tallies[sid].equipped = 1
    for sid, total, notified in db.execute(
            select(Stay.site_id, func.count(), func.count(Stay.notified_at))
            .where(Stay.site_id.in_(ids), Stay.started_at >= start, Stay.started_at < end)
            .group_by(Stay.site_id)):
        tallies[sid].stays += int(total)
        tallies[sid].notified += int(notified)
    return tallies


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


def build_report(db: Session, scope: Scope, period: Period, unit: Unit | None,
                 metrics: Iterable[str] = METRICS) -> Report:
    """The ratio tables of ``metrics`` for ``unit`` (or the whole scope) over ``period``."""
    tree = unit_children(db)
    units = {u.id: u for us in tree.values() for u in us}
    sites = scoped_sites(db, scope)
    tallies = _site_tallies(db, sites, period)
    targets = _targets(db)
    row_units = tree.get(unit.id, []) if unit is not None else top_units(scope, tree)
    if unit is not None and not row_units:
        row_units = [unit]

    def tally_of(root: Unit | None) -> _Tally:
        acc = _Tally()
        allowed = None if root is None else subtree_ids(tree, root.id)
        for s in sites:
            if allowed is None or s.unit_id in allowed:
                acc.add(tallies[s.id])
        return acc

    row_tallies = [(u, tally_of(u)) for u in row_units]
    total = tally_of(unit)
    out: list[RatioTable] = []
    for metric in metrics:
        rows: list[RatioRow] = []
        for u, t in row_tallies:
            tot, via = t.pair(metric)
            rows.append(RatioRow(u.id, u.code, u.name, tot, via,
                                 resolve_target(targets, units, u.id, metric)))
        tot, via = total.pair(metric)
        rows.append(RatioRow(unit.id if unit else None, unit.code if unit else "",
                             unit.name if unit else "", tot, via,
                             resolve_target(targets, units, unit.id if unit else None, metric),
                             is_total=True))
        out.append(RatioTable(metric, rows))
    return Report(period, unit, out)

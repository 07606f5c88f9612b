"""The read side: every counting rule the web pages, the API, the reports and the tests share.

One place for what a rollup row *means* (docs/cccd.md §10):

* :data:`CCCD_METHODS` — the methods that count as "by CCCD / VNeID";
* :func:`insured_visit` — whether a hospital visit is in the insured-visit ratio's denominator
  (:data:`INSURED`) and numerator (a CCCD method on a ``visit``). A new way to present the
  insurance card (a BHYT-card method) belongs in :data:`INSURED_METHODS` or :data:`INSURED`
  here: denominator, never numerator;
* :data:`ARRIVAL_KINDS` / :data:`DEPARTURE_KINDS` — rollup kinds that add to the dashboard's
  "arrivals" and "exits" (a manual count is rolled up as ``manual:<counts_as>``);
  :data:`GATE_ENTRY_KINDS` — heritage gate entries (the heritage ratio's denominator);
* :func:`counts` — sums of rollups over a period grouped by dimensions;
* :func:`site_tallies` — each site's figures for the report tables (central.web.reports);
* :func:`notice_state` — a stay's accommodation notice: due, overdue, on time or late
  (docs/cccd.md §9).

Nothing here reads the ``events`` table: counts come from the per-hour rollups. This module
has no Flask import, so the ingest (central.counting), the web and the tests all use it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.orm import Session

from central.db.models import Event, IngestRejection, Rollup, Site, SiteKind, Stay
from wire.kinds import Method

LOCAL = timezone(timedelta(hours=7), "UTC+07:00")
"""Vietnam's civil time (no daylight saving)."""

METHODS: tuple[str, ...] = tuple(method.value for method in Method)
"""Methods the dashboard breaks arrivals down by (every method of the wire, in its order)."""
CCCD_METHODS = frozenset({Method.CHIP.value, Method.CARD_QR.value, Method.VNEID_QR.value})
"""Methods that count as "by CCCD / VNeID" (the ratios' numerators)."""
INSURED = frozenset({"valid", "paper-card"})
"""Insurance values of an insured hospital visit (the ``hospital_cccd`` denominator): the
answer was ``valid`` (any method: the gateway's look-up for chip, card-QR and VNeID visits; the
BHYT card's own validity dates for ``bhyt-qr`` visits, made with the health-insurance card's
QR), or a manual visit counted as ``paper-insurance`` (the paper BHYT card, rolled up as
``paper-card``). The numerator counts only :data:`CCCD_METHODS`, so a ``bhyt-qr`` visit is an
insured visit that did not use the CCCD or VNeID. ``invalid``, ``unknown`` (gateway down) and
``not-checked`` are outside the ratio: they cannot be called insured visits."""
INSURED_METHODS: frozenset[str] = frozenset()
"""Methods whose visits are insured visits whatever the ``insurance`` dimension says, without
being CCCD visits (the baseline the ratio compares against). Empty today."""

ARRIVAL_KINDS = frozenset({"entry", "visit", "stay.start", "manual:entry", "manual:visit"})
"""Rollup kinds that add to "arrivals" (gate entries, hospital visits, check-ins)."""
DEPARTURE_KINDS = frozenset({"exit", "stay.end", "manual:exit"})
"""Rollup kinds that add to "exits and check-outs"."""
GATE_ENTRY_KINDS = frozenset({"entry", "manual:entry"})
"""Heritage gate entries: the heritage ratio's denominator (``entry`` by a CCCD method is its
numerator)."""
GROUPS = ("site_id", "hour", "day", "kind", "method", "age_band", "sex", "birth_province",
          "insurance")


class ReadError(ValueError):
    """A counting request that cannot be answered (bad group, bad period)."""


def utc(value: datetime) -> datetime:
    """Aware UTC (SQLite gives naive datetimes back: they are UTC by construction)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def insured_visit(kind: str, method: str, insurance: str) -> tuple[bool, bool]:
    """``(in the denominator, in the numerator)`` of the insured-visit ratio for one rollup
    row of a hospital (docs/cccd.md §10): insured visits, and of them those by CCCD/VNeID."""
    if kind not in ("visit", "manual:visit"):
        return False, False
    insured = insurance in INSURED or method in INSURED_METHODS
    return insured, insured and kind == "visit" and method in CCCD_METHODS


def gate_entry(kind: str, method: str) -> tuple[bool, bool]:
    """``(in the denominator, in the numerator)`` of the heritage ratio for one rollup row."""
    if kind not in GATE_ENTRY_KINDS:
        return False, False
    return True, kind == "entry" and method in CCCD_METHODS


# -- counts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountRow:
    """One group of :func:`counts`: the group's values, people (sum of count) and events."""

    key: dict[str, Any]
    people: int
    events: int


def counts(session: Session, site_ids: Sequence[str] | None, start: datetime, end: datetime,
           group_by: Sequence[str] = (), kinds: Iterable[str] | None = None,
           ) -> list[CountRow]:
    """Counts over ``[start, end)`` (hours of ``occurred_at``, UTC) from the rollups.

    ``site_ids`` None means every site. ``group_by`` names among :data:`GROUPS`; ``hour`` is
    the UTC hour, ``day`` the local (UTC+07:00) date. ``kinds`` restricts the rollup kinds.
    Cost depends on the number of rollup rows in the period, not on the events stored.
    """
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise ReadError(f"cannot group by {', '.join(unknown)} (known: {', '.join(GROUPS)})")
    if "hour" in group_by and "day" in group_by:
        raise ReadError("cannot group by hour and day together")
    if utc(end) <= utc(start):
        raise ReadError("end must be after start")
    sql_groups = [g for g in group_by if g != "day"]
    if "day" in group_by:
        sql_groups.append("hour")
    columns = [getattr(Rollup, g) for g in sql_groups]
    query = (select(*columns, func.sum(Rollup.people), func.sum(Rollup.events))
             .where(and_(Rollup.hour >= utc(start), Rollup.hour < utc(end))))
    if site_ids is not None:
        query = query.where(Rollup.site_id.in_(list(site_ids)))
    if kinds is not None:
        query = query.where(Rollup.kind.in_(list(kinds)))
    if columns:
        query = query.group_by(*columns)
    folded: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for row in session.execute(query).all():
        values = dict(zip(sql_groups, row[:len(sql_groups)], strict=True))
        if "hour" in values:
            values["hour"] = utc(values["hour"])
        if "day" in group_by:
            values["day"] = values["hour"].astimezone(LOCAL).date()
        key = tuple(values[g] for g in group_by)
        folded[key][0] += int(row[-2] or 0)
        folded[key][1] += int(row[-1] or 0)
    return [CountRow(dict(zip(group_by, key, strict=True)), p, e)
            for key, (p, e) in sorted(folded.items(), key=lambda kv: tuple(map(str, kv[0])))]


# -- accommodation notices (docs/cccd.md §9) -------------------------------------------------

NOTICE_STATES = ("due", "overdue", "on_time", "late")


def notice_state(deadline_at: datetime, notified_at: datetime | None, now: datetime) -> str:
    """``on_time`` (notified at or before the deadline), ``late`` (notified after it),
    ``overdue`` (not notified, deadline passed) or ``due`` (not notified, still in time)."""
    if notified_at is not None:
        return "on_time" if utc(notified_at) <= utc(deadline_at) else "late"
    return "overdue" if utc(deadline_at) < utc(now) else "due"


# -- report tallies --------------------------------------------------------------------------


@dataclass
class Tally:
    """One site's (or a sum of sites') report figures over a period.

    ``sites``/``equipped``: the site counts, and counts as equipped when at least one event
    signed by one of its devices was accepted with ``occurred_at`` in the period (a period
    figure, docs/web.md "Reports"). ``stays``: stays that began in the period; of them
    ``on_time`` notified by their deadline, ``late`` notified after it, ``overdue`` still not
    notified past it (at the time the report is built).
    """

    hosp_total: int = 0
    hosp_via: int = 0
    her_total: int = 0
    her_via: int = 0
    sites: int = 0
    equipped: int = 0
    stays: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def pair(self, metric: str) -> tuple[int, int]:
        """``(total, via)`` of a report metric (central.web.reports.METRICS)."""
        return {"hospital_cccd": (self.hosp_total, self.hosp_via),
                "heritage_cccd": (self.her_total, self.her_via),
                "sites_equipped": (self.sites, self.equipped),
                "stays_notified": (self.stays, self.on_time)}[metric]

    def figures(self, metric: str) -> dict[str, int]:
        """Figures shown beside the ratio (late and overdue notices)."""
        if metric == "stays_notified":
            return {"late": self.late, "overdue": self.overdue}
        return {}


def site_tallies(db: Session, sites: Sequence[Site], start: datetime, end: datetime,
                 now: datetime) -> dict[str, Tally]:
    """Each site's :class:`Tally` over ``[start, end)`` (three grouped queries in all)."""
    ids = [s.id for s in sites]
    kind_of = {s.id: s.kind for s in sites}
    tallies = {s.id: Tally(sites=1) for s in sites}
    if not ids:
        return tallies
    query = (select(Rollup.site_id, Rollup.kind, Rollup.method, Rollup.insurance,
                    func.sum(Rollup.people), func.sum(Rollup.events))
             .where(Rollup.hour >= utc(start), Rollup.hour < utc(end), Rollup.site_id.in_(ids))
             .group_by(Rollup.site_id, Rollup.kind, Rollup.method, Rollup.insurance))
    for sid, kind, method, insurance, people, events in db.execute(query):
        t, n = tallies[sid], int(people or 0)
        if int(events or 0) > 0:
            t.equipped = 1
        if kind_of[sid] is SiteKind.HOSPITAL:
            den, num = insured_visit(kind, method, insurance)
            t.hosp_total += n if den else 0
            t.hosp_via += n if num else 0
        elif kind_of[sid] is SiteKind.HERITAGE:
            den, num = gate_entry(kind, method)
            t.her_total += n if den else 0
            t.her_via += n if num else 0
    for sid, deadline, notified in db.execute(
            select(Stay.site_id, Stay.deadline_at, Stay.notified_at)
            .where(Stay.site_id.in_(ids), Stay.started_at >= utc(start),
                   Stay.started_at < utc(end))):
        t = tallies[sid]
        t.stays += 1
        state = notice_state(deadline, notified, now)
        if state == "on_time":
            t.on_time += 1
        elif state == "late":
            t.late += 1
        elif state == "overdue":
            t.overdue += 1
    return tallies


# -- trends and hospitals --------------------------------------------------------------------

TREND_BUCKETS = ("day", "week")


def bucket_of(day: date, by: str) -> date:
    """The first day of ``day``'s bucket: itself, or the Monday of its ISO week."""
    return day - timedelta(days=day.weekday()) if by == "week" else day


@dataclass
class Trend:
    """Arrivals per bucket (day or ISO week, Vietnam time) by site and by method, and the
    insured-visit ratio per bucket and hospital (``(insured visits, of them by CCCD)``)."""

    buckets: list[date]
    by_site: dict[date, dict[str, int]]
    by_method: dict[date, dict[str, int]]
    hospital: dict[date, dict[str, tuple[int, int]]]


def trend(session: Session, sites: Sequence[Site], start: datetime, end: datetime,
          by: str = "day") -> Trend:
    """Daily or weekly arrivals (:data:`ARRIVAL_KINDS`) of ``sites`` over ``[start, end)``."""
    if by not in TREND_BUCKETS:
        raise ReadError(f"by: one of {', '.join(TREND_BUCKETS)}")
    hospitals = {s.id for s in sites if s.kind is SiteKind.HOSPITAL}
    by_site: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_method: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    hospital: dict[date, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rows = counts(session, [s.id for s in sites], start, end,
                  ["day", "site_id", "kind", "method", "insurance"]) if sites else []
    for row in rows:
        key = row.key
        b = bucket_of(key["day"], by)
        if key["kind"] in ARRIVAL_KINDS:
            by_site[b][key["site_id"]] += row.people
            by_method[b][key["method"]] += row.people
        if key["site_id"] in hospitals:
            den, num = insured_visit(key["kind"], key["method"], key["insurance"])
            acc = hospital[b][key["site_id"]]
            acc[0] += row.people if den else 0
            acc[1] += row.people if num else 0
    first = utc(start).astimezone(LOCAL).date()
    last = (utc(end) - timedelta(microseconds=1)).astimezone(LOCAL).date()
    buckets: list[date] = []
    day = bucket_of(first, by)
    while day <= last:
        buckets.append(day)
        day += timedelta(days=7 if by == "week" else 1)
    return Trend(buckets, {b: dict(v) for b, v in by_site.items()},
                 {b: dict(v) for b, v in by_method.items()},
                 {b: {s: (v[0], v[1]) for s, v in d.items()} for b, d in hospital.items()})


@dataclass(frozen=True)
class InPatients:
    """Stays open now at one hospital ward (or accommodation room group)."""

    site_id: str
    ward: str
    stays: int


def in_patients(session: Session, sites: Sequence[Site], now: datetime) -> list[InPatients]:
    """Open stays (begun, not ended) per hospital and ward, now."""
    ids = [s.id for s in sites if s.kind is SiteKind.HOSPITAL]
    if not ids:
        return []
    query = (select(Stay.site_id, Stay.ward_or_room, func.count())
             .where(Stay.site_id.in_(ids), Stay.ended_at.is_(None),
                    Stay.started_at <= utc(now))
             .group_by(Stay.site_id, Stay.ward_or_room))
    return sorted((InPatients(str(s), str(w or ""), int(n))
                   for s, w, n in session.execute(query)),
                  key=lambda r: (r.site_id, r.ward))


# -- refusals and security events (docs/protocol.md §4.5) ------------------------------------

SECURITY_FIRST = ("clone-suspected", "signature-invalid", "dg-hash-mismatch", "csca-untrusted",
                  "signer-expired", "inconsistent-data", "malformed-data", "qr-invalid",
                  "expired-card")
"""Gate refusal reasons that point at a forged or cloned document, most severe first; other
reasons (``capacity-full``, reading failures) follow, by count."""
FORGED_AT_CENTRE = ("bad-signature", "replay", "topic-device-mismatch", "site-mismatch",
                    "revoked-device", "unknown-device")
"""Ingest refusals that mean forged or misdirected data, shown before the others."""


def severity(reason: str, first: Sequence[str] = SECURITY_FIRST) -> int:
    """Sort rank of a reason: its place in ``first``, else after all of them."""
    return first.index(reason) if reason in first else len(first)


@dataclass(frozen=True)
class RefusalRow:
    """Gate refusals (``rejected`` events) of one reason at one device over a period."""

    site_id: str
    device_id: str
    reason: str
    events: int
    people: int
    last_at: datetime


def refusals(session: Session, site_ids: Sequence[str], start: datetime,
             end: datetime) -> list[RefusalRow]:
    """``rejected`` events by site, device and reason over ``[start, end)``, security reasons
    first. Reads the events table (rollups keep no reason) through its ``occurred_at`` index:
    refusals are few, and the period bounds the scan."""
    if not site_ids:
        return []
    query = (select(Event.site_id, Event.device_id, Event.reason, func.count(),
                    func.sum(Event.count), func.max(Event.occurred_at))
             .where(Event.occurred_at >= utc(start), Event.occurred_at < utc(end),
                    Event.kind == "rejected", Event.site_id.in_(list(site_ids)),
                    not_training())
             .group_by(Event.site_id, Event.device_id, Event.reason))
    rows = [RefusalRow(str(s), str(d), str(r or ""), int(n), int(p or 0), utc(last))
            for s, d, r, n, p, last in session.execute(query)]
    return sorted(rows, key=lambda r: (severity(r.reason), -r.events, r.site_id, r.device_id))


def not_training() -> ColumnElement[bool]:
    """Events of a device in training mode are stored marked (``details.training``) and never
    counted (docs/protocol.md §4.13)."""
    return func.coalesce(Event.details["training"].as_boolean(), false()).is_(false())


@dataclass(frozen=True)
class IngestRefusalRow:
    """Messages the centre refused from one device for one reason over a period."""

    device_id: str
    reason: str
    count: int
    last_at: datetime


def ingest_refusals(session: Session, device_ids: Sequence[str] | None, start: datetime,
                    end: datetime) -> list[IngestRefusalRow]:
    """Ingest rejections by device and reason (forged data first); ``device_ids`` None: all,
    those without a known device included."""
    query = (select(IngestRejection.device_id, IngestRejection.reason, func.count(),
                    func.max(IngestRejection.at))
             .where(IngestRejection.at >= utc(start), IngestRejection.at < utc(end))
             .group_by(IngestRejection.device_id, IngestRejection.reason))
    if device_ids is not None:
        query = query.where(IngestRejection.device_id.in_(list(device_ids)))
    rows = [IngestRefusalRow(str(d or ""), str(r), int(n), utc(last))
            for d, r, n, last in session.execute(query)]
    return sorted(rows, key=lambda r: (severity(r.reason, FORGED_AT_CENTRE), -r.count,
                                       r.device_id))

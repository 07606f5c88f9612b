"""Read models of the dashboard: counts from :class:`Rollup`, occupancy from
:class:`SiteOccupancy`. The counting rules themselves (which kinds are arrivals, which
methods are CCCD) and the grouped counts are central.readside's.

Nothing here reads :class:`~central.db.models.Event`: every count is a sum over the per-hour
rollups the ingest keeps current, so a query costs the same with ten thousand or ten million
events behind it (bench/counts.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from central import readside
from central.db.models import Alarm, Device, IngestRejection, Rollup, Site, SiteOccupancy, Stay
from central.readside import ARRIVAL_KINDS, DEPARTURE_KINDS, METHODS
from central.web.errors import BadRequest
from central.web.security import Scope, scoped_sites
from central.web.timeutil import VN, as_utc, day_start_utc, local_today, utcnow

GROUP_BY = ("hour", "day", "site", "kind", "method", "age_band", "sex", "birth_province",
            "insurance")
CAPACITY_ALERT = 0.9


def counts(db: Session, site_ids: Iterable[str] | None, start: datetime, end: datetime,
           group_by: Iterable[str] = (), kinds: Iterable[str] | None = None,
           ) -> list[dict[str, Any]]:
    """:func:`central.readside.counts` shaped for the API: ``site`` for the site dimension,
    ``hour`` as ISO UTC text, ``day`` as an ISO Vietnam-time date; 400 on a bad group."""
    dims = list(group_by)
    for dim in dims:
        if dim not in GROUP_BY:
            raise BadRequest(f"group_by: {dim!r} is not one of {', '.join(GROUP_BY)}")
    if "hour" in dims and "day" in dims:
        raise BadRequest("group_by: hour and day together")
    if as_utc(end) <= as_utc(start):
        return []
    inner = ["site_id" if d == "site" else d for d in dims]
    rows = readside.counts(db, None if site_ids is None else list(site_ids), start, end,
                           inner, kinds)
    out: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {}
        for dim, name in zip(dims, inner, strict=True):
            value = row.key[name]
            if dim == "hour":
                value = as_utc(value).isoformat().replace("+00:00", "Z")
            elif dim == "day":
                value = value.isoformat()
            item[dim] = value
        out.append({**item, "people": row.people, "events": row.events})
    return out


@dataclass
class SiteStatus:
    """One site on the dashboard."""

    site: Site
    occupancy: int
    entries: int
    exits: int

    @property
    def ratio(self) -> float | None:
        cap = self.site.capacity
        return None if not cap else self.occupancy / cap

    @property
    def alert(self) -> bool:
        r = self.ratio
        return r is not None and r >= CAPACITY_ALERT


@dataclass
class Snapshot:
    """Everything the live dashboard shows (also the SSE payload's source)."""

    sites: list[SiteStatus]
    hourly: list[int]
    methods: dict[str, int]
    entries: int
    exits: int
    occupancy: int
    capacity: int
    alarms: list[Alarm]
    overdue_stays: int
    at: datetime
    alert_sites: list[SiteStatus] = field(default_factory=list)
    refused: int = 0
    """People refused at the gates today (``rejected`` rollups; reasons on /security)."""

    def fingerprint(self) -> tuple[Any, ...]:
        """What changes when the numbers change (the SSE generator pushes on change)."""
        return (tuple((s.site.id, s.occupancy, s.entries, s.exits) for s in self.sites),
                tuple(self.hourly), tuple(sorted(self.methods.items())),
                tuple(a.id for a in self.alarms), self.overdue_stays, self.refused)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "entries": self.entries, "exits": self.exits,
            "occupancy": self.occupancy, "capacity": self.capacity, "hourly": self.hourly,
            "methods": self.methods, "overdue_stays": self.overdue_stays,
            "alarms": len(self.alarms), "refused": self.refused,
            "sites": [{"id": s.site.id, "occupancy": s.occupancy, "entries": s.entries,
                       "exits": s.exits} for s in self.sites]}


def occupancy_map(db: Session, site_ids: Iterable[str] | None) -> dict[str, int]:
    query = select(SiteOccupancy.site_id, SiteOccupancy.occupancy)
    if site_ids is not None:
        query = query.where(SiteOccupancy.site_id.in_(list(site_ids)))
    return {sid: int(occ) for sid, occ in db.execute(query)}


def snapshot(db: Session, scope: Scope, site_id: str | None = None,
             now: datetime | None = None) -> Snapshot:
    """Today's numbers (Vietnam date) for the sites in ``scope`` (or one site)."""
    now = as_utc(now or utcnow())
    sites = scoped_sites(db, scope)
    if site_id is not None:
        sites = [s for s in sites if s.id == site_id]
    ids = [s.id for s in sites]
    start = day_start_utc(local_today(now))
    end = start + timedelta(days=1)
    occ = occupancy_map(db, ids)
    per_site: dict[str, list[int]] = {sid: [0, 0] for sid in ids}
    hourly = [0] * 24
    methods = dict.fromkeys(METHODS, 0)
    refused = 0
    query = select(Rollup.site_id, Rollup.hour, Rollup.kind, Rollup.method,
                   func.sum(Rollup.people)).where(
        Rollup.hour >= start, Rollup.hour < end, Rollup.site_id.in_(ids),
    ).group_by(Rollup.site_id, Rollup.hour, Rollup.kind, Rollup.method)
    for sid, hour, kind, method, people in db.execute(query):
        n = int(people or 0)
        if kind in ARRIVAL_KINDS:
            per_site[sid][0] += n
            hourly[as_utc(hour).astimezone(VN).hour] += n
            if method in methods:
                methods[method] += n
        elif kind in DEPARTURE_KINDS:
            per_site[sid][1] += n
        elif kind == "rejected":
            refused += n
    statuses = [SiteStatus(s, occ.get(s.id, 0), per_site[s.id][0], per_site[s.id][1])
                for s in sites]
    alarm_q = select(Alarm).where(Alarm.cleared_at.is_(None)).order_by(Alarm.raised_at.desc())
    if not scope.everything or site_id is not None:
        alarm_q = alarm_q.where(Alarm.site_id.in_(ids))
    alarms = list(db.scalars(alarm_q.limit(50)))
    overdue = db.scalar(select(func.count()).select_from(Stay).where(
        Stay.site_id.in_(ids), Stay.notified_at.is_(None), Stay.deadline_at < now)) or 0
    return Snapshot(
        sites=statuses, hourly=hourly, methods=methods,
        entries=sum(s.entries for s in statuses), exits=sum(s.exits for s in statuses),
        occupancy=sum(s.occupancy for s in statuses),
        capacity=sum(s.site.capacity or 0 for s in statuses), alarms=alarms,
        overdue_stays=int(overdue), at=now, alert_sites=[s for s in statuses if s.alert],
        refused=refused)


BACKLOG_AGE_ALERT = timedelta(minutes=10)
"""A device whose oldest undelivered event is older than this is flagged."""
CLOCK_SKEW_ALERT = 60.0
"""Seconds between the device's clock (its heartbeat's ``at``) and the centre's, flagged."""
HEALTHY = ("ok", "disabled", "starting")


@dataclass
class DeviceHealth:
    """One device row of the health page: seq gaps, rejections, reader and scanner states
    from its last heartbeat (docs/protocol.md §6), backlog age and clock skew."""

    device: Device
    open_gaps: int
    rejections: dict[str, int]
    now: datetime = field(default_factory=utcnow)

    @property
    def missing(self) -> int:
        return max(self.device.last_seq - self.device.contiguous_seq, 0)

    @property
    def components(self) -> list[tuple[str, str, str, str]]:
        """``(readers|scanners, uri, state, detail)`` from the last heartbeat."""
        out: list[tuple[str, str, str, str]] = []
        health = self.device.health or {}
        for group in ("readers", "scanners"):
            items = health.get(group) or {}
            if not isinstance(items, dict):
                continue
            for uri, value in sorted(items.items()):
                if isinstance(value, dict):
                    out.append((group, str(uri), str(value.get("state", "")),
                                str(value.get("detail") or "")))
                else:
                    out.append((group, str(uri), str(value), ""))
        return out

    @property
    def faults(self) -> list[str]:
        """Readers and scanners not working: ``uri: state (detail)``."""
        return [f"{uri}: {state}" + (f" ({detail})" if detail else "")
                for _g, uri, state, detail in self.components if state not in HEALTHY]

    @property
    def backlog_age(self) -> timedelta | None:
        oldest = self.device.oldest_undelivered_at
        return None if oldest is None else max(self.now - as_utc(oldest), timedelta(0))

    @property
    def backlog_stale(self) -> bool:
        age = self.backlog_age
        return age is not None and age > BACKLOG_AGE_ALERT

    @property
    def clock_skew(self) -> float | None:
        """Seconds the centre's receipt of the last heartbeat is ahead of the device's clock
        (negative: the device is ahead). Includes the network delay."""
        at = (self.device.health or {}).get("at")
        seen = self.device.last_seen
        if not isinstance(at, str) or seen is None:
            return None
        try:
            device_time = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (as_utc(seen) - as_utc(device_time)).total_seconds()

    @property
    def needs_attention(self) -> bool:
        skew = self.clock_skew
        return (self.device.state != "online" or bool(self.open_gaps) or bool(self.faults)
                or self.backlog_stale or (skew is not None and abs(skew) > CLOCK_SKEW_ALERT))


def device_health(db: Session, scope: Scope, site_id: str | None = None) -> list[DeviceHealth]:
    """Devices in scope with their open seq-gap alarms and ingest rejections by reason."""
    query = select(Device).order_by(Device.site_id, Device.id)
    if not scope.everything:
        query = query.where(Device.site_id.in_(scope.site_ids))
    if site_id is not None:
        query = query.where(Device.site_id == site_id)
    devices = list(db.scalars(query))
    ids = [d.id for d in devices]
    gaps = {str(dev): int(n) for dev, n in db.execute(
        select(Alarm.device_id, func.count()).where(
            Alarm.kind == "seq-gap", Alarm.cleared_at.is_(None), Alarm.device_id.in_(ids))
        .group_by(Alarm.device_id))}
    rej: dict[str, dict[str, int]] = {}
    for dev, reason, n in db.execute(
            select(IngestRejection.device_id, IngestRejection.reason, func.count())
            .where(IngestRejection.device_id.in_(ids))
            .group_by(IngestRejection.device_id, IngestRejection.reason)):
        rej.setdefault(str(dev), {})[reason] = int(n)
    return [DeviceHealth(d, int(gaps.get(d.id, 0)), rej.get(d.id, {})) for d in devices]


def unattributed_rejections(db: Session) -> dict[str, int]:
    """Rejections with no known device (admin only: they name no site)."""
    return {r: int(n) for r, n in db.execute(
        select(IngestRejection.reason, func.count()).where(IngestRejection.device_id.is_(None))
        .group_by(IngestRejection.reason))}

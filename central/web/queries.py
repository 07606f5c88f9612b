"""Read models: counts from :class:`Rollup`, occupancy from :class:`SiteOccupancy`.

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

from central.db.models import Alarm, Device, IngestRejection, Rollup, Site, SiteOccupancy, Stay
from central.web.errors import BadRequest
from central.web.security import Scope, scoped_sites
from central.web.timeutil import VN, as_utc, day_start_utc, local_today, utcnow

METHODS = ("chip", "card-qr", "vneid-qr", "bhyt-qr", "manual")
CCCD_METHODS = ("chip", "card-qr", "vneid-qr")
ENTRY_KINDS = ("entry", "visit", "stay.start", "manual:entry", "manual:visit")
"""Rollup kinds that add to "entries" (central.counting rolls a manual count up under
``manual:<counts_as>``)."""
EXIT_KINDS = ("exit", "stay.end", "manual:exit")
GROUP_BY = ("hour", "day", "site", "kind", "method", "age_band", "sex", "birth_province")
CAPACITY_ALERT = 0.9


def _site_filter(query: Any, site_ids: Iterable[str] | None) -> Any:
    return query if site_ids is None else query.where(Rollup.site_id.in_(list(site_ids)))


def counts(db: Session, site_ids: Iterable[str] | None, start: datetime, end: datetime,
           group_by: Iterable[str] = (), kinds: Iterable[str] | None = None,
           ) -> list[dict[str, Any]]:
    """Sums of people and events over ``[start, end)`` grouped by dimensions of :data:`GROUP_BY`.

    ``site_ids`` None means every site. ``day`` groups by Vietnam-time date (folded from UTC
    hours in Python: at most 24 rows per day per other group). Rows are sorted by their keys.
    """
    dims = list(group_by)
    for dim in dims:
        if dim not in GROUP_BY:
            raise BadRequest(f"group_by: {dim!r} is not one of {', '.join(GROUP_BY)}")
    if "hour" in dims and "day" in dims:
        raise BadRequest("group_by: hour and day together")
    columns: list[Any] = []
    for dim in dims:
        col = {"hour": Rollup.hour, "day": Rollup.hour, "site": Rollup.site_id}.get(
            dim, getattr(Rollup, dim, None))
        columns.append(col)
    query = select(*columns, func.sum(Rollup.people), func.sum(Rollup.events)).where(
        Rollup.hour >= as_utc(start), Rollup.hour < as_utc(end))
    query = _site_filter(query, site_ids)
    if kinds is not None:
        query = query.where(Rollup.kind.in_(list(kinds)))
    if columns:
        query = query.group_by(*columns)
    folded: dict[tuple[Any, ...], list[int]] = {}
    for row in db.execute(query):
        key: list[Any] = []
        for dim, value in zip(dims, row[: len(dims)], strict=True):
            if dim == "hour":
                key.append(as_utc(value).isoformat().replace("+00:00", "Z"))
            elif dim == "day":
                key.append(as_utc(value).astimezone(VN).date().isoformat())
            else:
                key.append(value)
        acc = folded.setdefault(tuple(key), [0, 0])
        acc[0] += int(row[-2] or 0)
        acc[1] += int(row[-1] or 0)
    return [{**dict(zip(dims, key, strict=True)), "people": v[0], "events": v[1]}
            for key, v in sorted(folded.items(), key=lambda kv: tuple(str(k) for k in kv[0]))]


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

    def fingerprint(self) -> tuple[Any, ...]:
        """What changes when the numbers change (the SSE generator pushes on change)."""
        return (tuple((s.site.id, s.occupancy, s.entries, s.exits) for s in self.sites),
                tuple(self.hourly), tuple(sorted(self.methods.items())),
                tuple(a.id for a in self.alarms), self.overdue_stays)

    def as_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "entries": self.entries, "exits": self.exits,
            "occupancy": self.occupancy, "capacity": self.capacity, "hourly": self.hourly,
            "methods": self.methods, "overdue_stays": self.overdue_stays,
            "alarms": len(self.alarms),
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
    query = select(Rollup.site_id, Rollup.hour, Rollup.kind, Rollup.method,
                   func.sum(Rollup.people)).where(
        Rollup.hour >= start, Rollup.hour < end, Rollup.site_id.in_(ids),
    ).group_by(Rollup.site_id, Rollup.hour, Rollup.kind, Rollup.method)
    for sid, hour, kind, method, people in db.execute(query):
        n = int(people or 0)
        if kind in ENTRY_KINDS:
            per_site[sid][0] += n
            hourly[as_utc(hour).astimezone(VN).hour] += n
            if method in methods:
                methods[method] += n
        elif kind in EXIT_KINDS:
            per_site[sid][1] += n
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
        overdue_stays=int(overdue), at=now, alert_sites=[s for s in statuses if s.alert])


@dataclass
class DeviceHealth:
    """One device row of the health page."""

    device: Device
    open_gaps: int
    rejections: dict[str, int]

    @property
    def missing(self) -> int:
        return max(self.device.last_seq - self.device.contiguous_seq, 0)


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

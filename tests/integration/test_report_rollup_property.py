"""Reports add up at every level (property test on SQLite and PostgreSQL).

Random unit trees, sites attached anywhere in them (also to units that have children), random
rollups and stays: for every unit, and for the whole tree, each table's total equals the sum
of its rows (units below + sites attached directly) and the sum of its per-site rows, for every
metric and every figure; and the total equals a naive count of the generated data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session

from central.db.engine import make_engine, make_sessionmaker
from central.db.models import Device, Rollup, Site, SiteKind, Stay, Target, Unit, UnitLevel
from central.migrations import upgrade
from central.web.periods import Period
from central.web.reports import METRICS, Report, build_report
from central.web.security import Scope, scope_for_units
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401

World = dict[str, list[Any]]
_MIGRATED: set[str] = set()
EVERYTHING = Scope(True, frozenset(), frozenset())
PERIOD = Period("custom", date(2026, 11, 1), date(2026, 11, 30))
START = datetime(2026, 10, 31, 17, tzinfo=UTC)  # 01/11/2026 00:00 Vietnam time
KINDS = ["entry", "manual:entry", "visit", "manual:visit", "exit", "rejected"]
METHOD = ["chip", "card-qr", "vneid-qr", "manual"]
INSURANCE = ["", "valid", "paper-card", "invalid", "unknown"]


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n_units = draw(st.integers(1, 7))
    parents: list[int | None] = [None]
    for i in range(1, n_units):
        parents.append(draw(st.one_of(st.none(), st.integers(0, i - 1))))
    n_sites = draw(st.integers(0, 8))
    sites = [(f"s{i}", draw(st.sampled_from(list(SiteKind))), draw(st.integers(0, n_units - 1)))
             for i in range(n_sites)]
    rollups: list[tuple[int, int, str, str, str, int]] = []
    stays: list[tuple[int, int, int | None]] = []
    if sites:
        for _ in range(draw(st.integers(0, 25))):
            rollups.append((draw(st.integers(0, n_sites - 1)), draw(st.integers(-48, 30 * 24 + 48)),
                            draw(st.sampled_from(KINDS)), draw(st.sampled_from(METHOD)),
                            draw(st.sampled_from(INSURANCE)), draw(st.integers(1, 9))))
        for _ in range(draw(st.integers(0, 8))):
            stays.append((draw(st.integers(0, n_sites - 1)), draw(st.integers(-30, 32 * 24)),
                          draw(st.sampled_from([None, -5, 0, 3, 40]))))
    return {"parents": [(p,) for p in parents], "sites": sites, "rollups": rollups,
            "stays": stays}


def _load(db: Session, world: World) -> list[int]:
    for model in (Stay, Rollup, Device, Target, Site, Unit):
        db.execute(delete(model))
    db.flush()
    ids: list[int] = []
    levels = [UnitLevel.PROVINCE, UnitLevel.DISTRICT, UnitLevel.COMMUNE]
    for i, (parent,) in enumerate(world["parents"]):
        unit = Unit(code=f"u{i}", name=f"Đơn vị {i}", level=levels[min(i, 2)],
                    parent_id=None if parent is None else ids[int(str(parent))])
        db.add(unit)
        db.flush()
        ids.append(unit.id)
    for sid, kind, unit_index in world["sites"]:
        db.add(Site(id=str(sid), name=f"Điểm {sid}", kind=kind, unit_id=ids[int(str(unit_index))],
                    close_time="23:00"))
    db.flush()
    for sid, *_ in world["sites"]:
        db.add(Device(id=f"d-{sid}", site_id=str(sid), name="", signing_public_key=b"\0" * 32,
                      enrolled_at=START, revoked=False))
    db.flush()
    seen: dict[tuple[object, ...], Rollup] = {}
    for site_index, hour, kind, method, insurance, people in world["rollups"]:
        site = world["sites"][int(str(site_index))][0]
        key = (site, hour, kind, method, insurance)
        if key in seen:
            seen[key].people += int(str(people))
            seen[key].events += 1
            continue
        row = Rollup(site_id=str(site), hour=START + timedelta(hours=int(str(hour))),
                     kind=str(kind), method=str(method), age_band="", sex="",
                     birth_province="", insurance=str(insurance), people=int(str(people)),
                     events=1)
        seen[key] = row
        db.add(row)
    for n, (site_index, hour, notified) in enumerate(world["stays"]):
        site = world["sites"][int(str(site_index))][0]
        started = START + timedelta(hours=int(str(hour)))
        deadline = started + timedelta(hours=10)
        db.add(Stay(stay_id=f"stay-{n}", site_id=str(site), device_id=f"d-{site}",
                    started_at=started, deadline_at=deadline,
                    notified_at=None if notified is None
                    else deadline + timedelta(hours=int(str(notified))),
                    personal_sealed=b""))
    db.commit()
    return ids


def _check(report: Report) -> None:
    for table in report.tables:
        total = table.total
        parts = table.rows[:-1]
        for figure in ("total", "via"):
            assert getattr(total, figure) == sum(getattr(r, figure) for r in parts), (
                table.metric, figure, [(r.code, getattr(r, figure)) for r in table.rows])
            assert getattr(total, figure) == sum(getattr(r, figure) for r in table.site_rows)
        for name in total.figures:
            assert total.figures[name] == sum(r.figures.get(name, 0) for r in parts)
            assert total.figures[name] == sum(r.figures.get(name, 0) for r in table.site_rows)
        assert 0 <= total.via <= total.total


def _naive_heritage(world: World, site_ids: set[str]) -> int:
    end_hour = 30 * 24
    out = 0
    for site_index, hour, kind, _m, _i, people in world["rollups"]:
        sid, kind_of, _u = world["sites"][int(str(site_index))]
        if sid in site_ids and kind_of is SiteKind.HERITAGE and kind in (
                "entry", "manual:entry") and 0 <= int(str(hour)) < end_hour:
            out += int(str(people))
    return out


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(world=worlds())
def test_totals_equal_the_sum_of_rows_at_every_level(db_url: str,  # noqa: F811
                                                      world: World,
                                                      ) -> None:
    engine = make_engine(db_url)
    if db_url not in _MIGRATED:  # the same database for every example of one run
        upgrade(engine)
        _MIGRATED.add(db_url)
    maker = make_sessionmaker(engine)
    try:
        with maker() as db:
            ids = _load(db, world)
            report = build_report(db, EVERYTHING, PERIOD, None, METRICS, now=START)
            _check(report)
            all_sites = {str(s[0]) for s in world["sites"]}
            heritage = {t.metric: t for t in report.tables}["heritage_cccd"].total
            assert heritage.total == _naive_heritage(world, all_sites)
            for uid in ids:
                unit = db.get(Unit, uid)
                assert unit is not None
                _check(build_report(db, EVERYTHING, PERIOD, unit, now=START))
                scope = scope_for_units(db, uid)  # the unit's own staff
                _check(build_report(db, scope, PERIOD, None, now=START))
                mine = build_report(db, scope, PERIOD, unit, now=START)
                _check(mine)
                herit = {t.metric: t for t in mine.tables}["heritage_cccd"].total
                assert herit.total == _naive_heritage(world, set(scope.site_ids))
            if world["sites"]:  # site staff: their own sites, labelled with them
                first = str(world["sites"][0][0])
                staff = build_report(db, Scope(False, frozenset(), frozenset({first})),
                                     PERIOD, None, site_staff=True, now=START)
                _check(staff)
                assert staff.title == f"Điểm {first}"
    finally:
        engine.dispose()

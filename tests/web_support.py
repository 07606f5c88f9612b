"""A synthetic world for the collector's web tests: units, sites, devices, users, rollups,
occupancy and accommodation notices (synthetic people only), and login helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from central.at_rest import encrypt_personal
from central.counting import stay_deadline
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import (
    Alarm,
    Base,
    Device,
    IngestRejection,
    Role,
    Rollup,
    Site,
    SiteKind,
    SiteOccupancy,
    Stay,
    Unit,
    UnitLevel,
    User,
)
from central.web import create_app
from central.web.security import hash_password, make_hasher
from central.web.timeutil import VN, day_start_utc, local_today

PASSWORD = "correct horse battery 1"
DATA_KEY = bytes(range(32))
FAST = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, "ARGON2_PARALLELISM": 1}
USERS = {"admin": Role.ADMIN, "tinh": Role.PROVINCE, "huyen": Role.DISTRICT, "diem": Role.SITE,
         "hanoi": Role.PROVINCE, "kiemtra": Role.AUDITOR}
GUESTS = [
    {"full_name": "Nguyễn Thị Mai", "id_number": "079303001234", "date_of_birth": "2003-05-15",
     "sex": "F", "nationality": "VNM", "address": "1 Đường C, Phường A, TP. Hồ Chí Minh",
     "document_type": "cccd"},
    {"full_name": "Trần Văn Dũng", "id_number": "001085004321", "date_of_birth": "1985-01-02",
     "sex": "M", "nationality": "VNM", "address": None, "document_type": "cccd"},
    {"full_name": "Lê Ngọc Ánh", "id_number": "046199000777", "date_of_birth": "1999-12-31",
     "sex": "F", "nationality": "VNM", "address": "Ngõ 12 Phố Huế, Hà Nội",
     "document_type": "cccd"},
]


@dataclass
class World:
    app: Flask
    maker: sessionmaker[Session]
    units: dict[str, int]
    today: date


def now_utc() -> datetime:
    return datetime.now(UTC)


def seed(db: Session, today: date) -> dict[str, int]:
    """Units, sites, devices, users, rollups for today, occupancy, stays, alarms."""
    units: dict[str, int] = {}

    def unit(code: str, name: str, level: UnitLevel, parent: str | None) -> None:
        u = Unit(code=code, name=name, level=level, parent_id=units.get(parent or ""))
        db.add(u)
        db.flush()
        units[code] = u.id

    unit("046", "Thừa Thiên Huế", UnitLevel.PROVINCE, None)
    unit("474", "Thành phố Huế", UnitLevel.DISTRICT, "046")
    unit("19927", "Phường Phú Hậu", UnitLevel.COMMUNE, "474")
    unit("481", "Huyện Phú Vang", UnitLevel.DISTRICT, "046")
    unit("001", "Hà Nội", UnitLevel.PROVINCE, None)
    unit("002", "Quận Đống Đa", UnitLevel.DISTRICT, "001")
    sites = [
        Site(id="hue-dai-noi", name="Đại Nội Huế", kind=SiteKind.HERITAGE,
             unit_id=units["19927"], capacity=100, close_time="17:30"),
        Site(id="bv-hue", name="Bệnh viện Trung ương Huế", kind=SiteKind.HOSPITAL,
             unit_id=units["474"], capacity=None),
        Site(id="ks-phu-vang", name="Khách sạn Phú Vang", kind=SiteKind.ACCOMMODATION,
             unit_id=units["481"], capacity=50),
        Site(id="van-mieu", name="Văn Miếu – Quốc Tử Giám", kind=SiteKind.HERITAGE,
             unit_id=units["002"], capacity=500),
    ]
    db.add_all(sites)
    db.flush()
    now = now_utc()
    for site, dev in (("hue-dai-noi", "gate-ngo-mon-01"), ("bv-hue", "desk-bv-hue-01"),
                      ("ks-phu-vang", "desk-ks-01"), ("van-mieu", "gate-van-mieu-01")):
        db.add(Device(id=dev, site_id=site, name=dev, signing_public_key=b"\x01" * 32,
                      enrolled_at=now - timedelta(days=10), revoked=False, state="online",
                      last_seen=now - timedelta(seconds=20), last_seq=120, contiguous_seq=117,
                      version="1.4.0", outbox_depth=3, oldest_undelivered_at=now
                      - timedelta(minutes=2)))
    db.flush()
    db.add(Alarm(kind="seq-gap", device_id="gate-ngo-mon-01", site_id="hue-dai-noi",
                 raised_at=now - timedelta(minutes=5), detail={"from": 118, "to": 120}))
    db.add(Alarm(kind="seq-gap", device_id="gate-van-mieu-01", site_id="van-mieu",
                 raised_at=now - timedelta(minutes=5)))
    db.add(IngestRejection(at=now, reason="bad-signature", topic="checkin/v1/x/events",
                           device_id="gate-ngo-mon-01"))
    db.add(IngestRejection(at=now, reason="bad-signature", topic="checkin/v1/x/events",
                           device_id="gate-ngo-mon-01"))
    db.add(IngestRejection(at=now, reason="unknown-device", topic="checkin/v1/y/events"))
    hasher = make_hasher(1, 1024, 1)
    for name, role in USERS.items():
        user = User(username=name, password_hash=hash_password(PASSWORD, hasher), role=role,
                    unit_id={"tinh": units["046"], "huyen": units["474"],
                             "hanoi": units["001"]}.get(name), created_at=now, active=True,
                    language="vi", failed_logins=0)
        if name == "diem":
            user.sites = [sites[0]]
        db.add(user)
    start = day_start_utc(today)
    rollups = [
        # hours after local midnight. Đại Nội: 90 entries (chip 50, card-qr 20, vneid 10, manual 10)
        ("hue-dai-noi", 2, "entry", "chip", 50), ("hue-dai-noi", 2, "entry", "card-qr", 20),
        ("hue-dai-noi", 3, "entry", "vneid-qr", 10), ("hue-dai-noi", 3, "manual:entry",
                                                       "manual", 10),
        ("hue-dai-noi", 4, "exit", "chip", 5),
        # hospital: 60 CCCD visits, 40 manual → 60%
        ("bv-hue", 2, "visit", "chip", 40), ("bv-hue", 2, "visit", "vneid-qr", 20),
        ("bv-hue", 3, "manual:visit", "manual", 40),
        ("van-mieu", 2, "entry", "chip", 7),
    ]
    for site_id, hour, kind, method, people in rollups:
        db.add(Rollup(site_id=site_id, hour=start + timedelta(hours=hour), kind=kind,
                      method=method, age_band="25-44" if method != "manual" else "",
                      sex="F" if method == "chip" else "", birth_province="046"
                      if method == "chip" else "", people=people, events=people))
    for site_id, occ in (("hue-dai-noi", 95), ("ks-phu-vang", 2), ("van-mieu", 7)):
        db.add(SiteOccupancy(site_id=site_id, occupancy=occ, updated_at=now))
    # Stays at the hotel: one notified, one overdue, one due.
    arrivals = [start + timedelta(hours=3), start - timedelta(days=1, hours=-3),
                start + timedelta(hours=4)]
    deadlines = [now - timedelta(hours=1), now - timedelta(hours=2), now + timedelta(hours=6)]
    for i, (guest, arrived, deadline) in enumerate(zip(GUESTS, arrivals, deadlines,
                                                       strict=True)):
        stay_id = f"0190a0c0-0000-7000-8000-00000000000{i}"
        db.add(Stay(stay_id=stay_id, site_id="ks-phu-vang", device_id="desk-ks-01",
                    subject=f"{i:032x}", started_at=arrived, ended_at=None,
                    expected_departure=today + timedelta(days=2), ward_or_room=f"20{i}",
                    reason_code=["tourism", "business", "family"][i], deadline_at=deadline,
                    notified_at=now - timedelta(hours=2) if i == 0 else None,
                    personal_sealed=encrypt_personal(DATA_KEY, stay_id, guest)))
    db.commit()
    return units


def make_world(tmp_path: Path, database_url: str | None = None, **config: Any) -> World:
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'central.sqlite3'}")
    Base.metadata.create_all(engine)
    maker = make_sessionmaker(engine)
    today = local_today()
    with maker() as db:
        units = seed(db, today)
    app = create_app({"SECRET_KEY": "test-secret", "SESSIONMAKER": maker, "DATA_KEY": DATA_KEY,
                      "SESSION_COOKIE_SECURE": False, "TESTING": True, **FAST, **config})
    return World(app, maker, units, today)


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


PURPOSE = {"reason": "police-notice", "note": "CV 12/CAT-PC06"}
"""A stated purpose, as the register's forms post it (docs/privacy.md §3)."""


def export_stays(client: FlaskClient, fmt: str, query: str = "",
                 purpose: dict[str, str] | None = None) -> Any:
    """POST a register export (``xlsx`` or ``csv``) with the filters of ``query`` (as the
    register's query string) and a purpose, as the register's export form does."""
    data = dict(parse_qsl(query))
    data.update(PURPOSE if purpose is None else purpose)
    data["csrf_token"] = csrf(client)
    return client.post(f"/stays/export.{fmt}", data=data)


def view_personal(client: FlaskClient, stay_id: str,
                  purpose: dict[str, str] | None = None) -> Any:
    """POST the purpose form of a stay's personal data, as the browser does."""
    return client.post(f"/stays/{stay_id}/personal", data={
        **(PURPOSE if purpose is None else purpose), "csrf_token": csrf(client)})


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    token = csrf(client)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})


def local_hour(today: date, hour: int) -> datetime:
    return datetime(today.year, today.month, today.day, hour, tzinfo=VN)


# -- November 2026, figures worked out by hand (tests/integration/test_web_report_handset.py) --

NOV_H = datetime(2026, 11, 10, 3, tzinfo=UTC)
"""10/11/2026 10:00 Vietnam time."""
STAY_A = "0190b000-0000-7000-8000-00000000000a"
STAY_B = "0190b000-0000-7000-8000-00000000000b"
STAY_C = "0190b000-0000-7000-8000-00000000000c"


def _nov_rollup(site: str, kind: str, method: str, people: int, insurance: str = "",
                hour: datetime = NOV_H) -> Rollup:
    return Rollup(site_id=site, hour=hour, kind=kind, method=method, age_band="", sex="",
                  birth_province="", insurance=insurance, people=people, events=people)


def seed_november(world: World) -> None:
    """Lăng Tự Đức attached directly to the province, November 2026 traffic and three stays
    (the figures are listed in test_web_report_handset's docstring)."""
    with world.maker() as db:
        db.add(Site(id="lang-tu-duc", name="Lăng Tự Đức", kind=SiteKind.HERITAGE,
                    unit_id=world.units["046"], capacity=200, close_time="17:30"))
        db.flush()
        db.add_all([
            _nov_rollup("hue-dai-noi", "entry", "chip", 10),
            _nov_rollup("hue-dai-noi", "manual:entry", "manual", 6),
            _nov_rollup("lang-tu-duc", "entry", "card-qr", 5),
            _nov_rollup("lang-tu-duc", "manual:entry", "manual", 2),
            _nov_rollup("bv-hue", "visit", "chip", 4, "valid"),
            _nov_rollup("bv-hue", "manual:visit", "manual", 1, "paper-card"),
            _nov_rollup("bv-hue", "visit", "chip", 3, "invalid"),
            # outside November (31/10 23:00 and 01/12 00:00 Vietnam time)
            _nov_rollup("lang-tu-duc", "entry", "chip", 100,
                        hour=datetime(2026, 10, 31, 16, tzinfo=UTC)),
            _nov_rollup("lang-tu-duc", "entry", "chip", 100,
                        hour=datetime(2026, 11, 30, 17, tzinfo=UTC)),
        ])
        guest = {"full_name": "Phạm Thị Thử", "id_number": "046303000001",
                 "date_of_birth": "1990-03-02", "sex": "F", "nationality": "VNM",
                 "address": "Thôn 3, Xã Phú Thượng, Thừa Thiên Huế", "document_type": "cccd"}
        for stay_id, arrived, notified in (
                (STAY_A, NOV_H, NOV_H + timedelta(hours=2)),
                (STAY_B, NOV_H + timedelta(days=1), NOV_H + timedelta(days=33)),
                (STAY_C, NOV_H + timedelta(days=2), None)):
            db.add(Stay(stay_id=stay_id, site_id="ks-phu-vang", device_id="desk-ks-01",
                        started_at=arrived, ended_at=arrived + timedelta(days=1, hours=2)
                        if stay_id == STAY_A else None, deadline_at=stay_deadline(arrived),
                        notified_at=notified, expected_departure=None, ward_or_room="101",
                        reason_code="tourism",
                        personal_sealed=encrypt_personal(DATA_KEY, stay_id, guest)))
        db.commit()

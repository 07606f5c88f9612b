"""Security and device health in sight: gate refusals by reason, site and device (security
reasons first), ingest refusals, reader / scanner faults, backlog age and clock skew, alarms
acknowledged with a note (audited, scoped)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from central.db.models import Alarm, AuditLog, Device, Event, Rollup
from central.web.queries import snapshot
from central.web.security import Scope
from central.web.timeutil import day_start_utc
from tests.web_support import World, csrf, login, make_world, now_utc

EVERYTHING = Scope(True, frozenset(), frozenset())


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = make_world(tmp_path)
    now = now_utc()
    with w.maker() as db:
        seq = 1000
        for device, site, reason, n in (("gate-ngo-mon-01", "hue-dai-noi", "capacity-full", 5),
                                        ("gate-ngo-mon-01", "hue-dai-noi", "clone-suspected", 1),
                                        ("gate-ngo-mon-01", "hue-dai-noi", "card-lost", 2),
                                        ("gate-van-mieu-01", "van-mieu", "clone-suspected", 3)):
            for _ in range(n):
                seq += 1
                db.add(Event(device_id=device, event_id=str(uuid.uuid4()), seq=seq,
                             site_id=site, occurred_at=now - timedelta(minutes=30),
                             received_at=now, kind="rejected", method="chip",
                             assurance="none", count=1, reason=reason))
        db.add(Rollup(site_id="hue-dai-noi", hour=day_start_utc(w.today) + timedelta(hours=1),
                      kind="rejected", method="chip", age_band="", sex="", birth_province="",
                      people=8, events=8))
        dev = db.get(Device, "gate-ngo-mon-01")
        assert dev is not None
        dev.health = {"at": (now - timedelta(seconds=95)).isoformat(),
                      "readers": {"pcsc": {"state": "error", "detail": "reader unplugged"}},
                      "scanners": {"serial:/dev/ttyACM0": "ok"}}
        dev.last_seen = now
        dev.outbox_depth = 37
        dev.oldest_undelivered_at = now - timedelta(minutes=42)
        db.commit()
    return w


def _client(world: World, user: str) -> FlaskClient:
    c = world.app.test_client()
    assert login(c, user).status_code == 302
    return c


def test_refusals_page_security_first_and_scoped(world: World) -> None:
    page = _client(world, "tinh").get("/security").get_data(as_text=True)
    gate = page[page.index('id="gate-refusals"'):page.index("</table>",
                                                             page.index('id="gate-refusals"'))]
    reasons = [r for r in ("clone-suspected", "capacity-full", "card-lost") if r in gate]
    order = sorted(reasons, key=gate.index)
    assert order == ["clone-suspected", "capacity-full", "card-lost"]  # security first
    assert "van-mieu" not in gate and "Văn Miếu" not in gate  # another province
    assert 'data-reason="bad-signature"' in page  # refused at the centre (seeded twice)
    # reader fault, 42-minute backlog and 95 s clock skew flag the device
    assert "pcsc: lỗi (reader unplugged)" in page
    assert "Tồn đọng lâu 42 phút" in page and "+95 s" in page
    admin = _client(world, "admin").get("/security").get_data(as_text=True)
    assert admin.count('data-reason="clone-suspected"') == 2


def test_dashboard_counts_todays_refusals(world: World) -> None:
    with world.maker() as db:
        snap = snapshot(db, EVERYTHING)
    assert snap.refused == 8
    page = _client(world, "tinh").get("/").get_data(as_text=True)
    assert 'id="refused-today"' in page


def test_alarm_acknowledged_with_a_note(world: World) -> None:
    with world.maker() as db:
        alarms = {a.site_id: a.id for a in db.scalars(select(Alarm))}
    huyen = _client(world, "huyen")
    token = csrf(huyen, "/security")
    assert huyen.post(f"/alarms/{alarms['van-mieu']}/ack",
                      data={"csrf_token": token, "note": "x"}).status_code == 403
    r = huyen.post(f"/alarms/{alarms['hue-dai-noi']}/ack", data={"csrf_token": token,
                                                                 "note": "  "})
    assert r.status_code == 400 and "note:" in r.get_data(as_text=True)
    r = huyen.post(f"/alarms/{alarms['hue-dai-noi']}/ack",
                   data={"csrf_token": token, "note": "Đã gọi kỹ thuật viên"})
    assert r.status_code == 302
    with world.maker() as db:
        alarm = db.get(Alarm, alarms["hue-dai-noi"])
        assert alarm is not None and alarm.ack_note == "Đã gọi kỹ thuật viên"
        assert alarm.acked_at is not None and alarm.cleared_at is None  # still open
        [row] = db.scalars(select(AuditLog).where(AuditLog.action == "alarm.ack"))
        assert row.actor == "huyen"
    page = huyen.get("/security").get_data(as_text=True)
    assert "Đã xác nhận" in page and "Đã gọi kỹ thuật viên" in page


def test_api_devices_show_health(world: World) -> None:
    data = _client(world, "tinh").get("/api/v1/devices").get_json()
    gate = next(d for d in data["devices"] if d["id"] == "gate-ngo-mon-01")
    assert gate["faults"] == ["pcsc: error (reader unplugged)"]
    assert gate["backlog_age_s"] >= 42 * 60 and gate["needs_attention"] is True
    assert gate["clock_skew_s"] == pytest.approx(95, abs=1)

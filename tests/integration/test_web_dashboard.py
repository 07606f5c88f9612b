"""Dashboard numbers, site page, device health, and the SSE stream."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from central.db.models import Rollup, SiteOccupancy
from central.web.queries import snapshot
from central.web.security import Scope
from central.web.timeutil import day_start_utc
from tests.web_support import World, login, make_world, now_utc


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, SSE_POLL_SECONDS=0.05, SSE_MAX_SECONDS=3)


def test_snapshot_numbers(world: World) -> None:
    with world.maker() as db:
        snap = snapshot(db, Scope(True, frozenset(), frozenset()))
    by_site = {s.site.id: s for s in snap.sites}
    assert by_site["hue-dai-noi"].entries == 90
    assert by_site["hue-dai-noi"].exits == 5
    assert by_site["hue-dai-noi"].occupancy == 95
    assert by_site["hue-dai-noi"].alert  # 95 / 100 ≥ 90%
    assert not by_site["van-mieu"].alert
    assert by_site["bv-hue"].entries == 100
    assert snap.methods == {"chip": 97, "card-qr": 20, "vneid-qr": 30, "bhyt-qr": 0,
                            "manual": 50}
    assert snap.hourly[2] == 50 + 20 + 40 + 20 + 7 and snap.hourly[3] == 60
    assert snap.overdue_stays == 1
    assert {a.kind for a in snap.alarms} == {"seq-gap"}


def test_dashboard_page_for_site_staff(world: World) -> None:
    c = world.app.test_client()
    login(c, "diem")
    page = c.get("/").get_data(as_text=True)
    assert 'id="total-entries">90<' in page
    assert 'id="total-occupancy">95<' in page
    assert "Gần đầy sức chứa" in page
    assert "<svg" in page and "Lượt vào theo giờ" in page
    assert "Chip CCCD" in page and "VNeID" in page and "Thủ công" in page


def test_site_page_breakdown_and_devices(world: World) -> None:
    c = world.app.test_client()
    login(c, "huyen")
    page = c.get("/sites/hue-dai-noi").get_data(as_text=True)
    assert "Đại Nội Huế" in page and "gate-ngo-mon-01" in page
    assert "Nữ" in page and "25-44" in page and "046" in page


def test_device_health(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    page = c.get("/devices").get_data(as_text=True)
    assert "bad-signature: 2" in page
    assert "117 / 120" in page and "(−3)" in page
    assert "unknown-device" in page  # admin sees unattributed rejections
    devices = c.get("/api/v1/devices").get_json()["devices"]
    gate = next(d for d in devices if d["id"] == "gate-ngo-mon-01")
    assert gate["open_seq_gaps"] == 1 and gate["rejections"] == {"bad-signature": 2}
    assert gate["outbox_depth"] == 3 and gate["version"] == "1.4.0"


def test_sse_pushes_a_change(world: World) -> None:
    c = world.app.test_client()
    login(c, "diem")
    response = c.get("/dashboard/stream", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = response.response
    first = ""
    for chunk in chunks:
        first += chunk.decode() if isinstance(chunk, bytes) else chunk
        if "event: update" in first:
            break
    assert '"entries": 90' in first
    with world.maker() as db:
        start = day_start_utc(world.today)
        db.add(Rollup(site_id="hue-dai-noi", hour=start + timedelta(hours=5), kind="entry",
                      method="chip", age_band="", sex="", birth_province="", people=3,
                      events=3))
        occ = db.get(SiteOccupancy, "hue-dai-noi")
        assert occ is not None
        occ.occupancy = 98
        occ.updated_at = now_utc()
        db.commit()
    second = ""
    for chunk in chunks:
        second += chunk.decode() if isinstance(chunk, bytes) else chunk
        if "event: update" in second:
            break
    assert '"entries": 93' in second and '"occupancy": 98' in second
    response.close()

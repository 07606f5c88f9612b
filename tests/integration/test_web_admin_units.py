"""Administration of units and targets: edit, move (never into its own subtree), delete only
what nothing refers to, every change audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from central.db.models import AuditLog, Target, Unit, UnitLevel
from tests.web_support import World, csrf, login, make_world


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _unit(world: World, code: str) -> Unit | None:
    with world.maker() as db:
        return db.scalar(select(Unit).where(Unit.code == code))


def test_unit_rename_move_and_cycle_refused(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/units")
    commune, district, province = world.units["19927"], world.units["474"], world.units["046"]
    r = c.post(f"/admin/units/{commune}", data={
        "csrf_token": token, "code": "19927", "name": "Phường Phú Hậu (mới)",
        "parent_id": str(world.units["481"])})
    assert r.status_code == 302
    moved = _unit(world, "19927")
    assert moved is not None and moved.name == "Phường Phú Hậu (mới)"
    assert moved.parent_id == world.units["481"]
    # A province under its own district, or a unit under itself: refused, nothing changed.
    for unit_id, parent in ((province, district), (district, district)):
        r = c.post(f"/admin/units/{unit_id}", data={
            "csrf_token": token, "code": "x", "parent_id": str(parent)})
        assert r.status_code == 400 and "under itself" in r.get_data(as_text=True)
    # A district needs a parent; a code must stay unique.
    r = c.post(f"/admin/units/{district}", data={"csrf_token": token, "code": "474"})
    assert r.status_code == 400 and "required below province" in r.get_data(as_text=True)
    r = c.post(f"/admin/units/{district}", data={
        "csrf_token": token, "code": "481", "parent_id": str(province)})
    assert r.status_code == 400 and "already used" in r.get_data(as_text=True)
    unchanged = _unit(world, "474")
    assert unchanged is not None and unchanged.parent_id == province
    with world.maker() as db:
        actions = db.scalars(select(AuditLog.action)).all()
    assert actions.count("unit.update") == 1


def test_unit_delete_only_when_unused_and_target_delete(world: World) -> None:
    c = world.app.test_client()
    login(c, "admin")
    token = csrf(c, "/admin/units")
    r = c.post(f"/admin/units/{world.units['474']}/delete", data={"csrf_token": token})
    body = r.get_data(as_text=True)
    assert r.status_code == 400 and "child units" in body and "sites" in body
    assert _unit(world, "474") is not None
    with world.maker() as db:
        spare = Unit(code="999", name="Xã thử", level=UnitLevel.COMMUNE,
                     parent_id=world.units["481"])
        db.add(spare)
        db.flush()
        db.add(Target(unit_id=spare.id, metric="hospital_cccd", value=0.9))
        db.commit()
        spare_id = spare.id
    r = c.post(f"/admin/units/{spare_id}/delete", data={"csrf_token": token})
    assert r.status_code == 302 and _unit(world, "999") is None
    with world.maker() as db:
        assert db.scalar(select(Target).where(Target.unit_id == spare_id)) is None
        target = Target(unit_id=world.units["474"], metric="stays_notified", value=0.95)
        db.add(target)
        db.commit()
        target_id = target.id
    r = c.post(f"/admin/targets/{target_id}/delete", data={"csrf_token": token})
    assert r.status_code == 302
    with world.maker() as db:
        assert db.get(Target, target_id) is None
        actions = db.scalars(select(AuditLog.action)).all()
    assert "unit.delete" in actions and "target.delete" in actions
    # Not an administrator: refused before anything happens.
    other = world.app.test_client()
    login(other, "tinh")
    r = other.post(f"/admin/units/{world.units['481']}/delete",
                   data={"csrf_token": csrf(other, "/")})
    assert r.status_code in (302, 403) and _unit(world, "481") is not None

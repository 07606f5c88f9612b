"""Administration (admin role only): users, sites, units, devices and enrolment, targets,
API tokens, and the audit log. Every change is written to the audit log."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from sqlalchemy import func, select
from werkzeug.wrappers.response import Response as BaseResponse

from central.db.models import (
    ApiToken,
    Device,
    Role,
    Site,
    SiteKind,
    Target,
    Unit,
    UnitLevel,
    User,
)
from central.enrol import (
    DIRECTIONS,
    DeviceCA,
    EnrolmentError,
    centre_public_from_private_file,
    enrol,
)
from central.registry import DRAIN_PERIOD, revoke_device
from central.web.app import end_user_sessions
from central.web.errors import BadRequest, NotFoundError
from central.web.forms import (
    MIN_PASSWORD,
    TOKEN_DEFAULT_DAYS,
    TOKEN_MAX_DAYS,
    EnrolForm,
    PasswordForm,
    SiteForm,
    TargetForm,
    TokenForm,
    UnitForm,
    UnitUpdateForm,
    UserCreateForm,
    UserScopeForm,
    bind,
)
from central.web.reports import DEFAULT_TARGETS, METRICS
from central.web.security import (
    audit,
    current_user,
    db_session,
    require_roles,
    token_hash,
)
from central.web.timeutil import utcnow

bp = Blueprint("admin", __name__, url_prefix="/admin")
ADMIN = Role.ADMIN
__all__ = ["MIN_PASSWORD", "bp"]


def _hasher() -> PasswordHasher:
    hasher: PasswordHasher = current_app.extensions["central.hasher"]
    return hasher


def _units() -> list[Unit]:
    return list(db_session().scalars(select(Unit).order_by(Unit.code)))


def _sites() -> list[Site]:
    return list(db_session().scalars(select(Site).order_by(Site.name)))


def _site_choices() -> list[str]:
    return [s.id for s in _sites()]


@bp.route("/")
@require_roles(ADMIN)
def index() -> BaseResponse:
    return redirect(url_for("admin.users"))


@bp.route("/users", methods=["GET", "POST"])
@require_roles(ADMIN)
def users() -> str | BaseResponse:
    """List users; POST creates one (role, unit, sites for site staff)."""
    db = db_session()
    if request.method == "POST":
        form = bind(UserCreateForm, request.form, site_ids=_site_choices())
        username = str(form.username.data)
        if db.scalar(select(User).where(User.username == username)) is not None:
            raise BadRequest("username: already taken")
        user = User(username=username, password_hash=_hasher().hash(str(form.password.data)),
                    created_at=utcnow(), language="vi", failed_logins=0, active=True,
                    role=Role.SITE)
        _apply_user_form(user, form)
        db.add(user)
        db.flush()
        audit("user.create", username, {"role": user.role.value, "unit": user.unit_id,
                                        "sites": [s.id for s in user.sites]})
        return redirect(url_for("admin.users"))
    rows = list(db.scalars(select(User).order_by(User.username)))
    return render_template("admin/users.html", rows=rows, units=_units(), sites=_sites(),
                           roles=list(Role))


def _apply_user_form(user: User, form: UserScopeForm) -> None:
    user.role = Role(str(form.role.data))
    unit_id = form.unit_id.data
    if unit_id is not None and db_session().get(Unit, unit_id) is None:
        raise BadRequest("unit_id: no such unit")
    if user.role in (Role.PROVINCE, Role.DISTRICT) and unit_id is None:
        raise BadRequest("unit_id: required for province and district staff")
    user.unit_id = unit_id if user.role is not Role.AUDITOR else None  # sees no unit's data
    site_ids = list(form.site_ids.data or [])
    sites = list(db_session().scalars(select(Site).where(Site.id.in_(site_ids))))
    if user.role is Role.SITE and not sites:
        raise BadRequest("site_ids: site staff need at least one site")
    user.sites = sites if user.role is Role.SITE else []


def _user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        raise NotFoundError(str(user_id))
    return user


@bp.route("/users/<int:user_id>", methods=["POST"])
@require_roles(ADMIN)
def user_update(user_id: int) -> BaseResponse:
    """Change a user's role, unit, sites and active flag."""
    user = _user(user_id)
    form = bind(UserScopeForm, request.form, site_ids=_site_choices())
    _apply_user_form(user, form)
    user.active = bool(form.active.data)
    if not user.active:
        end_user_sessions(db_session(), user.id)
    audit("user.update", user.username, {"role": user.role.value, "unit": user.unit_id,
                                         "sites": [s.id for s in user.sites],
                                         "active": user.active})
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@require_roles(ADMIN)
def user_password(user_id: int) -> BaseResponse:
    """Set a new password (ends the user's other sessions) and unlock the account."""
    user = _user(user_id)
    form = bind(PasswordForm, request.form)
    user.password_hash = _hasher().hash(str(form.password.data))
    end_user_sessions(db_session(), user.id)
    user.failed_logins = 0
    user.locked_until = None
    audit("user.password-reset", user.username)
    return redirect(url_for("admin.users"))


@bp.route("/users/<int:user_id>/unlock", methods=["POST"])
@require_roles(ADMIN)
def user_unlock(user_id: int) -> BaseResponse:
    user = _user(user_id)
    user.failed_logins = 0
    user.locked_until = None
    audit("user.unlock", user.username)
    return redirect(url_for("admin.users"))


@bp.route("/sites", methods=["GET", "POST"])
@require_roles(ADMIN)
def sites() -> str | BaseResponse:
    """List sites; POST creates or updates one (by id)."""
    db = db_session()
    if request.method == "POST":
        form = bind(SiteForm, request.form)
        site_id = str(form.id.data)
        kind = SiteKind(str(form.kind.data))
        unit_id = form.unit_id.data
        if unit_id is None or db.get(Unit, unit_id) is None:
            raise BadRequest("unit_id: an existing unit")
        capacity = form.capacity.data
        close_time = str(form.close_time.data or "23:00")
        site = db.get(Site, site_id)
        created = site is None
        if site is None:
            site = Site(id=site_id)
            db.add(site)
        site.name = str(form.name.data or "") or site_id
        site.kind = kind
        site.unit_id = unit_id
        site.capacity = capacity
        site.close_time = close_time
        audit("site.create" if created else "site.update", site_id,
              {"kind": kind.value, "unit": unit_id, "capacity": capacity,
               "close_time": close_time})
        return redirect(url_for("admin.sites"))
    return render_template("admin/sites.html", rows=_sites(), units=_units(),
                           kinds=list(SiteKind))


@bp.route("/units", methods=["GET", "POST"])
@require_roles(ADMIN)
def units() -> str | BaseResponse:
    """List units (province → district → commune); POST creates one."""
    db = db_session()
    if request.method == "POST":
        form = bind(UnitForm, request.form)
        code = str(form.code.data)
        if db.scalar(select(Unit).where(Unit.code == code)) is not None:
            raise BadRequest("code: already used")
        level = UnitLevel(str(form.level.data))
        parent_id = form.parent_id.data
        if parent_id is not None and db.get(Unit, parent_id) is None:
            raise BadRequest("parent_id: no such unit")
        if level is not UnitLevel.PROVINCE and parent_id is None:
            raise BadRequest("parent_id: required below province level")
        db.add(Unit(code=code, name=str(form.name.data or "") or code,
                    level=level, parent_id=parent_id))
        audit("unit.create", code, {"level": level.value, "parent": parent_id})
        return redirect(url_for("admin.units"))
    return render_template("admin/units.html", rows=_units(), levels=list(UnitLevel))


def _unit(unit_id: int) -> Unit:
    unit = db_session().get(Unit, unit_id)
    if unit is None:
        raise NotFoundError(f"unit {unit_id}")
    return unit


@bp.route("/units/<int:unit_id>", methods=["POST"])
@require_roles(ADMIN)
def unit_update(unit_id: int) -> BaseResponse:
    """Rename a unit, change its code or move it under another parent (never under itself
    or one of its own descendants)."""
    db = db_session()
    unit = _unit(unit_id)
    data = request.form.copy()
    data.setdefault("code", unit.code)
    form = bind(UnitUpdateForm, data)
    code = str(form.code.data)
    other = db.scalar(select(Unit).where(Unit.code == code, Unit.id != unit.id))
    if other is not None:
        raise BadRequest("code: already used")
    parent_id = form.parent_id.data
    if parent_id is not None:
        if db.get(Unit, parent_id) is None:
            raise BadRequest("parent_id: no such unit")
        ancestor: int | None = parent_id
        while ancestor is not None:  # the new parent's chain must not pass through the unit
            if ancestor == unit.id:
                raise BadRequest("parent_id: a unit cannot be placed under itself or below")
            above = db.get(Unit, ancestor)
            ancestor = above.parent_id if above is not None else None
    if unit.level is not UnitLevel.PROVINCE and parent_id is None:
        raise BadRequest("parent_id: required below province level")
    before = {"code": unit.code, "name": unit.name, "parent": unit.parent_id}
    unit.code = code
    unit.name = str(form.name.data or "") or unit.name
    unit.parent_id = parent_id
    audit("unit.update", code, {"before": before,
                                "after": {"code": code, "name": unit.name,
                                          "parent": parent_id}})
    return redirect(url_for("admin.units"))


@bp.route("/units/<int:unit_id>/delete", methods=["POST"])
@require_roles(ADMIN)
def unit_delete(unit_id: int) -> BaseResponse:
    """Delete a unit nothing depends on; otherwise say what still refers to it."""
    db = db_session()
    unit = _unit(unit_id)
    users = db.scalar(select(func.count()).select_from(User).where(User.unit_id == unit.id))
    tokens = db.scalar(select(func.count()).select_from(ApiToken).where(
        ApiToken.unit_id == unit.id, ApiToken.revoked.is_(False)))
    blockers = {
        "child units": db.scalar(select(func.count()).select_from(Unit).where(
            Unit.parent_id == unit.id)),
        "sites": db.scalar(select(func.count()).select_from(Site).where(
            Site.unit_id == unit.id)),
        "users": users, "API tokens": tokens}
    named = [f"{n} {what}" for what, n in blockers.items() if n]
    if named:
        raise BadRequest(f"unit {unit.code} is still used by {', '.join(named)}: move or "
                         "delete them first")
    for target in db.scalars(select(Target).where(Target.unit_id == unit.id)):
        db.delete(target)
    revoked = list(db.scalars(select(ApiToken).where(ApiToken.unit_id == unit.id)))
    for token in revoked:  # only revoked ones are left; their issue is in the audit log
        db.delete(token)
    audit("unit.delete", unit.code, {"name": unit.name, "level": unit.level.value,
                                     "revoked_tokens_removed": [t.name for t in revoked]},
          commit=False)
    db.delete(unit)
    db.commit()
    return redirect(url_for("admin.units"))


def _device_ca() -> DeviceCA | None:
    ca = current_app.config.get("DEVICE_CA")
    if isinstance(ca, DeviceCA):
        return ca
    cert, key = current_app.config.get("DEVICE_CA_CERT"), current_app.config.get("DEVICE_CA_KEY")
    if cert and key:
        return DeviceCA.load(Path(cert), Path(key))
    return None


def _centre_public() -> bytes | None:
    value: Any = current_app.config.get("CENTRE_X25519_PUBLIC")
    if isinstance(value, bytes):
        return value
    if isinstance(value, str | Path):
        return Path(value).read_bytes()
    private = current_app.config.get("CENTRE_X25519_PRIVATE")
    if private:
        return centre_public_from_private_file(Path(private))
    return None


def _optional_file(name: str) -> bytes | None:
    value = current_app.config.get(name)
    return Path(value).read_bytes() if value else None


@bp.route("/devices")
@require_roles(ADMIN)
def devices() -> str:
    """Devices with enrolment and revocation."""
    rows = list(db_session().scalars(select(Device).order_by(Device.id)))
    ready = _device_ca() is not None and _centre_public() is not None
    return render_template("admin/devices.html", rows=rows, sites=_sites(), ready=ready,
                           directions=DIRECTIONS)


@bp.route("/devices/enrol", methods=["POST"])
@require_roles(ADMIN)
def device_enrol() -> Response:
    """Enrol a device and download its bundle (keys exist only in this download)."""
    db = db_session()
    ca, centre = _device_ca(), _centre_public()
    if ca is None or centre is None:
        raise BadRequest("enrolment: DEVICE_CA_CERT / DEVICE_CA_KEY and the centre's X25519 "
                         "key are not configured")
    form = bind(EnrolForm, request.form)
    site = db.get(Site, str(form.site_id.data))
    if site is None:
        raise BadRequest("site_id: no such site")
    device_id = str(form.device_id.data)
    direction = form.direction.data or None
    if direction is not None and direction not in DIRECTIONS:
        raise BadRequest(f"direction: one of {', '.join(DIRECTIONS)} or empty")
    try:
        result = enrol(db, device_id=device_id, site=site, ca=ca, centre_public=centre,
                       broker_url=str(current_app.config["BROKER_URL"]),
                       name=str(form.name.data or ""), direction=direction,
                       broker_ca_pem=_optional_file("BROKER_CA_CERT"))
    except EnrolmentError as exc:
        db.rollback()
        raise BadRequest(str(exc)) from None
    audit("device.enrol", device_id, {"site": site.id,
                                      "cert_fingerprint": result.device.cert_fingerprint})
    return Response(result.bundle, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{result.filename}"'})


@bp.route("/devices/<device_id>/revoke", methods=["POST"])
@require_roles(ADMIN)
def device_revoke(device_id: str) -> BaseResponse:
    """Revoke a device. ``drain=1`` *retires* it instead (a broken device being replaced,
    docs/operations.md §3): for :data:`~central.registry.DRAIN_PERIOD` its events recorded
    before now are still accepted, so its backlog reaches the centre; without, everything it
    sends is refused at once (a lost or stolen device). A retiring device can be revoked
    outright later (the same route without ``drain``)."""
    db = db_session()
    if db.get(Device, device_id) is None:
        raise NotFoundError(device_id)
    drain = request.form.get("drain") == "1"
    device = revoke_device(db, device_id, drain=DRAIN_PERIOD if drain else None, now=utcnow())
    audit("device.retire" if drain else "device.revoke", device_id,
          {"drain_until": device.drain_until.isoformat()} if device.drain_until else None)
    return redirect(url_for("admin.devices"))


@bp.route("/targets", methods=["GET", "POST"])
@require_roles(ADMIN)
def targets() -> str | BaseResponse:
    """KPI targets per unit (inherited down the tree) or nationwide."""
    db = db_session()
    if request.method == "POST":
        form = bind(TargetForm, request.form, metric=list(METRICS))
        metric = str(form.metric.data)
        value = float(form.value.data or 0)
        unit_id = form.unit_id.data
        if unit_id is not None and db.get(Unit, unit_id) is None:
            raise BadRequest("unit_id: no such unit")
        target = db.scalar(select(Target).where(Target.metric == metric,
                                                Target.unit_id.is_(None) if unit_id is None
                                                else Target.unit_id == unit_id))
        if target is None:
            target = Target(unit_id=unit_id, metric=metric, value=value)
            db.add(target)
        target.value = value
        audit("target.set", metric, {"unit": unit_id, "value": value})
        return redirect(url_for("admin.targets"))
    rows = list(db.scalars(select(Target).order_by(Target.metric, Target.unit_id)))
    return render_template("admin/targets.html", rows=rows, units=_units(), metrics=METRICS,
                           defaults=DEFAULT_TARGETS,
                           unit_names={u.id: u.name for u in _units()})


@bp.route("/targets/<int:target_id>/delete", methods=["POST"])
@require_roles(ADMIN)
def target_delete(target_id: int) -> BaseResponse:
    """Remove a target: the unit falls back to its parent's, the nationwide or the default."""
    db = db_session()
    target = db.get(Target, target_id)
    if target is None:
        raise NotFoundError(f"target {target_id}")
    audit("target.delete", target.metric, {"unit": target.unit_id, "value": target.value},
          commit=False)
    db.delete(target)
    db.commit()
    return redirect(url_for("admin.targets"))


@bp.route("/tokens", methods=["GET", "POST"])
@require_roles(ADMIN)
def tokens() -> str | BaseResponse:
    """Read-only API tokens scoped to a unit; the token is shown once, only its hash stays."""
    db = db_session()
    new_token = None
    if request.method == "POST":
        form = bind(TokenForm, request.form)
        name = str(form.name.data)
        unit_id = form.unit_id.data
        if unit_id is not None and db.get(Unit, unit_id) is None:
            raise BadRequest("unit_id: no such unit")
        days = form.days
        new_token = "cct_" + secrets.token_urlsafe(32)
        user = current_user()
        row = ApiToken(name=name, token_hash=token_hash(new_token), unit_id=unit_id,
                       created_by=user.id if user else None, created_at=utcnow(),
                       expires_at=utcnow() + timedelta(days=days),
                       revoked=False)
        db.add(row)
        db.flush()
        audit("token.create", name, {"unit": unit_id, "id": row.id, "days": days})
    rows = list(db.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())))
    return render_template("admin/tokens.html", rows=rows, units=_units(), new_token=new_token,
                           default_days=TOKEN_DEFAULT_DAYS, max_days=TOKEN_MAX_DAYS,
                           unit_names={u.id: u.name for u in _units()})


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@require_roles(ADMIN)
def token_revoke(token_id: int) -> BaseResponse:
    token = db_session().get(ApiToken, token_id)
    if token is None:
        raise NotFoundError(str(token_id))
    token.revoked = True
    audit("token.revoke", token.name, {"id": token.id})
    return redirect(url_for("admin.tokens"))


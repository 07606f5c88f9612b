"""Principals, role scoping, password hashing and the audit trail.

Every request resolves one principal: a logged-in :class:`~central.db.models.User` (session
cookie) or, under ``/api/v1`` only, a read-only :class:`~central.db.models.ApiToken` (bearer).
Its :class:`Scope` is what it may see: admin everything; province / district staff their unit and
every unit below it; site staff only the sites assigned to them; a token its unit's subtree.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from central.db.models import ApiToken, AuditLog, Role, Site, Unit, User
from central.web.errors import BadRequest, NotFoundError, OutOfScope
from central.web.timeutil import utcnow

P = ParamSpec("P")
R = TypeVar("R")


def make_hasher(time_cost: int = 3, memory_cost: int = 65536,
                parallelism: int = 4) -> PasswordHasher:
    """An argon2id hasher (argon2-cffi's default type is ID)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash of ``password`` (PHC string)."""
    return (hasher or make_hasher()).hash(password)


def verify_password(hasher: PasswordHasher, stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; never raises for a wrong or corrupt hash."""
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    """SHA-256 hex of an API token, as stored in :attr:`ApiToken.token_hash`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def unit_children(db: Session) -> dict[int | None, list[Unit]]:
    """Units by parent id (the whole tree; a few thousand rows at most)."""
    tree: dict[int | None, list[Unit]] = {}
    for unit in db.scalars(select(Unit).order_by(Unit.code)):
        tree.setdefault(unit.parent_id, []).append(unit)
    return tree


def subtree_ids(tree: dict[int | None, list[Unit]], root: int) -> set[int]:
    """``root`` and every unit below it."""
    out, stack = {root}, [root]
    while stack:
        for child in tree.get(stack.pop(), []):
            if child.id not in out:
                out.add(child.id)
                stack.append(child.id)
    return out


@dataclass(frozen=True)
class Scope:
    """What a principal may see. ``everything`` for admin (and unscoped tokens)."""

    everything: bool
    unit_ids: frozenset[int]
    site_ids: frozenset[str]

    def site_ok(self, site_id: str) -> bool:
        return self.everything or site_id in self.site_ids

    def unit_ok(self, unit_id: int) -> bool:
        return self.everything or unit_id in self.unit_ids


def scope_for_units(db: Session, root_unit: int | None) -> Scope:
    """The scope of a unit's subtree (``None`` = everything)."""
    if root_unit is None:
        return Scope(True, frozenset(), frozenset())
    units = subtree_ids(unit_children(db), root_unit)
    sites = db.scalars(select(Site.id).where(Site.unit_id.in_(units))).all()
    return Scope(False, frozenset(units), frozenset(sites))


def scope_for_user(db: Session, user: User) -> Scope:
    """Admin: everything; province / district: their unit subtree; site: their sites."""
    if user.role is Role.ADMIN:
        return Scope(True, frozenset(), frozenset())
    if user.role in (Role.PROVINCE, Role.DISTRICT):
        if user.unit_id is None:
            return Scope(False, frozenset(), frozenset())
        return scope_for_units(db, user.unit_id)
    sites = list(user.sites)
    return Scope(False, frozenset(s.unit_id for s in sites), frozenset(s.id for s in sites))


def scope_for_token(db: Session, token: ApiToken) -> Scope:
    return scope_for_units(db, token.unit_id)


def current_scope() -> Scope:
    scope: Scope = g.scope
    return scope


def current_user() -> User | None:
    user: User | None = g.get("user")
    return user


def db_session() -> Session:
    """The request's database session (opened lazily, closed at teardown)."""
    if "db" not in g:
        g.db = current_app.extensions["central.sessionmaker"]()
    db: Session = g.db
    return db


def client_ip() -> str:
    """The client address: the peer, or, when ``TRUSTED_PROXY_HOPS`` is set, the address the
    trusted proxy put in ``X-Forwarded-For`` (Werkzeug's ProxyFix rewrites ``REMOTE_ADDR``)."""
    return (request.remote_addr or "?")[:64]


DB_INT_MAX = 2**31 - 1
"""The largest id or count a query parameter may carry (a 32-bit ``INTEGER`` column)."""


def bounded_int(raw: str | None, name: str, *, low: int = 0, high: int = DB_INT_MAX,
                default: int | None = None) -> int | None:
    """An integer query or form parameter within ``low`` … ``high``; anything else is a
    :class:`BadRequest` (400) naming the parameter, never a 500 from the database driver.
    Only ASCII digits (with an optional ``-``) are accepted: ``int()`` alone also takes
    ``"٣"``, ``"1_000"`` and surrounding spaces."""
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > 12 or not (digits.isascii() and digits.isdigit()):
        raise BadRequest(f"{name}: an integer from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"{name}: an integer from {low} to {high}")
    return value


def _local_path(candidate: str) -> bool:
    if not candidate.startswith("/") or candidate.startswith("//"):
        return False
    if any(c == "\\" or ord(c) < 0x21 or ord(c) == 0x7F for c in candidate):
        return False
    parts = urlsplit(candidate)
    return not parts.scheme and not parts.netloc


def safe_next_path(target: str | None, fallback: str) -> str:
    """``target`` if it is a path on this site, else ``fallback`` (no open redirect).

    Only ``/path?query`` is kept: no scheme, no host, no ``//`` or ``/\\`` start (browsers
    read both as another host), no backslash, whitespace or control character anywhere (a
    browser or Werkzeug drops tabs and newlines, so ``/\t/evil.example`` would become
    ``//evil.example``), and the same again after percent-decoding (``/%2f/…``, ``%09``).
    """
    if not target or len(target) > 2000:
        return fallback
    probe = target
    for _ in range(4):
        if not _local_path(probe):
            return fallback
        decoded = unquote(probe)
        if decoded == probe:
            return target
        probe = decoded
    return fallback


def audit(action: str, target: str | None = None, detail: dict[str, Any] | None = None,
          *, user: User | None = None, actor: str | None = None, commit: bool = True) -> None:
    """Write one :class:`AuditLog` row (user, action, target, ip) in the request's session."""
    db = db_session()
    who = user if user is not None else current_user()
    token: ApiToken | None = g.get("token")
    name = actor or (who.username if who else (f"token:{token.name}" if token else "anonymous"))
    db.add(AuditLog(at=utcnow(), user_id=who.id if who else None, actor=name[:100],
                    action=action, target=target[:200] if target else None, detail=detail,
                    ip=client_ip()))
    if commit:
        db.commit()


def require_roles(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse (403) a logged-in user whose role is not among ``roles`` (empty = any role).

    Authentication itself is enforced for every endpoint by the app's ``before_request``;
    each view also names its roles here, and the route-walking test checks both.
    """
    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            if roles and (user is None or user.role not in roles):
                raise OutOfScope("role")
            return view(*args, **kwargs)
        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper
    return decorate


ALL_ROLES = (Role.ADMIN, Role.PROVINCE, Role.DISTRICT, Role.SITE)
"""Every role that works with the sites' data (the auditor reads only the audit log)."""
STAFF_ROLES = ALL_ROLES
PERSONAL_ROLES = ALL_ROLES
"""May open or export the personal data of stays in their scope, for a stated purpose."""
SEARCH_ROLES = (Role.ADMIN, Role.PROVINCE, Role.DISTRICT)
"""May search whether a person (by ID number) was at a site in their scope: not site staff."""
AUDIT_ROLES = (Role.ADMIN, Role.AUDITOR)
"""May read the audit log."""


def audit_denied(reason: str) -> None:
    """Log a refused request (403) of a logged-in principal: what was asked and why not.
    Written in a clean transaction, so nothing the refused view did is committed with it."""
    if current_user() is None and g.get("token") is None:
        return
    db = db_session()
    db.rollback()
    audit("access.denied", request.path[:200],
          {"endpoint": request.endpoint or "", "method": request.method,
           "reason": reason[:200]})


def get_site(site_id: str) -> Site:
    """The site, if the principal's scope covers it (404 if absent, 403 if out of scope)."""
    site = db_session().get(Site, site_id)
    if site is None:
        raise NotFoundError(site_id)
    if not current_scope().site_ok(site.id):
        raise OutOfScope(site_id)
    return site


def get_unit(unit_id: int) -> Unit:
    """The unit, if the scope covers it."""
    unit = db_session().get(Unit, unit_id)
    if unit is None:
        raise NotFoundError(str(unit_id))
    if not current_scope().unit_ok(unit.id):
        raise OutOfScope(str(unit_id))
    return unit


def scoped_sites(db: Session, scope: Scope, kinds: Iterable[str] | None = None,
                 unit_ids: Iterable[int] | None = None) -> list[Site]:
    """Sites visible in ``scope`` (optionally of ``kinds`` or in ``unit_ids``), by name."""
    query = select(Site).order_by(Site.name)
    if not scope.everything:
        query = query.where(Site.id.in_(scope.site_ids))
    if kinds is not None:
        query = query.where(Site.kind.in_(list(kinds)))
    if unit_ids is not None:
        query = query.where(Site.unit_id.in_(list(unit_ids)))
    return list(db.scalars(query))

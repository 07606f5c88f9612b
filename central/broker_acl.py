"""What the broker grants each identity, generated from the device registry (docs/protocol.md §2).

The broker is mosquitto 2.0 with its dynamic-security plugin. Its ``acl_file`` is not enough:
mosquitto 2.0.11 checks an ``acl_file`` only when it delivers a message, never at SUBSCRIBE, so
a device certificate could join the collector's share group (``$share/ingest/…``) and have the
broker hand it, then drop, other devices' events. The plugin checks every SUBSCRIBE against the
topic filter as sent, ``$share/<group>/`` included, and denies by default.

Identities (the certificate CN is the broker username, ``use_identity_as_username``):

* a **device** (an active, not revoked registry entry) gets a role ``device-<id>`` allowing:
  publish ``checkin/v1/<id>/events`` and ``…/status``; subscribe to and receive
  ``checkin/v1/<id>/config``, ``checkin/v1/<id>/receipts`` (wire v2) and
  ``checkin/v1/sites/<its site>/occupancy``. Nothing else: no
  wildcard, no ``$share/…``, no other device's or site's topic.
* a **collector** (``collector`` or ``collector-<n>``, :func:`collector_name`) gets the role
  ``collector``: subscribe ``$share/<group>/checkin/v1/#`` and ``checkin/v1/#``, receive
  ``checkin/v1/#``, publish occupancy, configuration and receipts.
* the **broker administrator** (``broker-admin``) gets the role ``broker-admin``: it may only
  send dynamic-security commands and read their answers (``central broker-sync``).

A revoked or unknown certificate has no client entry, so it is granted nothing: every SUBSCRIBE
is answered 0x87 and every PUBLISH refused; the sync disconnects it when it removes its entry.
Names that the broker grants more than a device (:func:`reserved`) can never be enrolled.

Pure: builds the plugin's configuration document and the commands that bring a running broker
to the wanted state; the MQTT exchange is in :mod:`central.broker_sync`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wire.topics import TOPIC_PREFIX

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
ADMIN = "broker-admin"
COLLECTOR_ROLE = "collector"
ADMIN_ROLE = "broker-admin"
DEVICE_ROLE_PREFIX = "device-"
DEFAULT_GROUP = "ingest"

RESERVED_NAMES = frozenset({"sites", "collector", "central", "broker", ADMIN})
RESERVED_PREFIXES = ("collector-", "central-", "broker-")

PLUGIN_PATHS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
                "/usr/lib/mosquitto_dynamic_security.so")

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_COLLECTOR = re.compile(r"^collector(?:-[a-z0-9](?:[a-z0-9-]{0,52}[a-z0-9])?)?$")
_GROUP = re.compile(r"^[^/+#$\x00]{1,64}$")


class BrokerAclError(ValueError):
    """A broker access rule that cannot be generated (bad name, bad share group)."""


def reserved(name: str) -> bool:
    """True for a name no device may have: the broker grants it more than a device."""
    return name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES)


def collector_name(name: str) -> bool:
    """``collector`` or ``collector-<label>``: the ingest workers' certificate CNs."""
    return bool(_COLLECTOR.match(name))


def plugin_path() -> Path | None:
    """Where Debian's ``mosquitto`` package put the dynamic-security plugin, if anywhere."""
    return next((Path(p) for p in PLUGIN_PATHS if Path(p).exists()), None)


@dataclass(frozen=True, order=True)
class Acl:
    """One dynamic-security ACL entry (acltype as the plugin names it)."""

    acltype: str
    topic: str
    allow: bool = True
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "priority": self.priority,
                "allow": self.allow}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Acl:
        return cls(str(obj["acltype"]), str(obj["topic"]), bool(obj.get("allow", True)),
                   int(obj.get("priority", 0)))


def device_acls(device_id: str, site_id: str) -> frozenset[Acl]:
    """docs/protocol.md §3: own events and status out; own config and own site's occupancy in."""
    for what, name in (("device id", device_id), ("site id", site_id)):
        if not _LABEL.match(name):
            raise BrokerAclError(f"{what} {name!r} is not a lower-case DNS label")
    if reserved(device_id):
        raise BrokerAclError(f"device id {device_id!r} is reserved for the broker or collector")
    own = f"{TOPIC_PREFIX}/{device_id}"
    occupancy = f"{TOPIC_PREFIX}/sites/{site_id}/occupancy"
    return frozenset({
        Acl("publishClientSend", f"{own}/events"),
        Acl("publishClientSend", f"{own}/status"),
        Acl("subscribeLiteral", f"{own}/config"),
        Acl("publishClientReceive", f"{own}/config"),
        Acl("subscribeLiteral", f"{own}/receipts"),
        Acl("publishClientReceive", f"{own}/receipts"),
        Acl("subscribeLiteral", occupancy),
        Acl("publishClientReceive", occupancy),
    })


def collector_acls(group: str = DEFAULT_GROUP) -> frozenset[Acl]:
    """The ingest workers: their share group, every protocol topic in, occupancy/config out."""
    if not _GROUP.match(group):
        raise BrokerAclError(f"share group {group!r}: 1-64 characters, none of / + # $")
    return frozenset({
        Acl("subscribePattern", f"$share/{group}/{TOPIC_PREFIX}/#"),
        Acl("subscribePattern", f"{TOPIC_PREFIX}/#"),
        Acl("publishClientReceive", f"{TOPIC_PREFIX}/#"),
        Acl("publishClientSend", f"{TOPIC_PREFIX}/sites/+/occupancy"),
        Acl("publishClientSend", f"{TOPIC_PREFIX}/+/config"),
        Acl("publishClientSend", f"{TOPIC_PREFIX}/+/receipts"),
    })


def admin_acls() -> frozenset[Acl]:
    """``central broker-sync``: dynamic-security commands and their answers, nothing else."""
    return frozenset({
        Acl("publishClientSend", CONTROL_TOPIC),
        Acl("subscribeLiteral", RESPONSE_TOPIC),
        Acl("publishClientReceive", RESPONSE_TOPIC),
    })


DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False,
                  "subscribe": False, "unsubscribe": True}


@dataclass(frozen=True)
class Wanted:
    """The broker state the registry asks for: username → role, role → ACLs."""

    clients: Mapping[str, str]
    roles: Mapping[str, frozenset[Acl]]
    skipped: tuple[str, ...] = ()
    """Registry devices given nothing: a reserved id (enrolled before the rule) or a device or
    site id that is not a lower-case DNS label (no topic can carry it)."""


def wanted(devices: Iterable[tuple[str, str]], collectors: Iterable[str] = ("collector",),
           group: str = DEFAULT_GROUP, admin: str | None = ADMIN) -> Wanted:
    """From the active devices ``(device_id, site_id)`` and the collectors' CNs."""
    clients: dict[str, str] = {}
    roles: dict[str, frozenset[Acl]] = {}
    skipped: list[str] = []
    names = sorted(set(collectors))
    if names:
        roles[COLLECTOR_ROLE] = collector_acls(group)
    for name in names:
        if not collector_name(name):
            raise BrokerAclError(f"collector {name!r}: must be 'collector' or 'collector-<n>'")
        clients[name] = COLLECTOR_ROLE
    if admin is not None:
        roles[ADMIN_ROLE] = admin_acls()
        clients[admin] = ADMIN_ROLE
    for device_id, site_id in sorted(devices):
        try:
            acls = device_acls(device_id, site_id)
        except BrokerAclError:  # reserved, or an id no topic can carry: granted nothing
            skipped.append(device_id)
            continue
        role = DEVICE_ROLE_PREFIX + device_id
        roles[role] = acls
        clients[device_id] = role
    return Wanted(clients, roles, tuple(skipped))


def document(state: Wanted) -> dict[str, Any]:
    """The plugin's configuration file (``plugin_opt_config_file``) for a broker's first start."""
    return {
        "defaultACLAccess": dict(DEFAULT_ACCESS),
        "clients": [{"username": name, "roles": [{"rolename": role}]}
                    for name, role in sorted(state.clients.items())],
        "groups": [],
        "roles": [{"rolename": role, "acls": [a.to_json() for a in sorted(acls)]}
                  for role, acls in sorted(state.roles.items())],
    }


@dataclass(frozen=True)
class Current:
    """What a running broker holds (``listClients``/``listRoles`` verbose, default access)."""

    clients: Mapping[str, tuple[str, ...]]
    roles: Mapping[str, frozenset[Acl]]
    disabled: frozenset[str] = frozenset()
    default_access: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_responses(cls, clients: Mapping[str, Any], roles: Mapping[str, Any],
                       default_access: Mapping[str, Any]) -> Current:
        """From the ``data`` members of the three answers."""
        return cls(
            {str(c["username"]): tuple(str(r["rolename"]) for r in c.get("roles", []))
             for c in clients.get("clients", [])},
            {str(r["rolename"]): frozenset(Acl.from_json(a) for a in r.get("acls", []))
             for r in roles.get("roles", [])},
            frozenset(str(c["username"]) for c in clients.get("clients", [])
                      if c.get("disabled")),
            {str(a["acltype"]): bool(a["allow"]) for a in default_access.get("acls", [])})


@dataclass(frozen=True)
class Plan:
    commands: tuple[dict[str, Any], ...]
    granted: tuple[str, ...]
    removed: tuple[str, ...]


def plan(current: Current, state: Wanted, keep: Iterable[str] = ()) -> Plan:
    """The dynamic-security commands that turn ``current`` into ``state``.

    A client that the registry does not ask for (revoked, deleted, or never enrolled) is deleted,
    which also disconnects it; collectors already on the broker and ``keep`` stay (an operator
    adds an ingest worker with ``central broker-sync --collector collector-3``). Roles
    ``device-*`` no longer used are deleted.
    """
    commands: list[dict[str, Any]] = []
    if {k: current.default_access.get(k) for k in DEFAULT_ACCESS} != DEFAULT_ACCESS:
        commands.append({"command": "setDefaultACLAccess",
                         "acls": [{"acltype": k, "allow": v} for k, v in DEFAULT_ACCESS.items()]})
    for role, acls in sorted(state.roles.items()):
        if role not in current.roles:
            commands.append({"command": "createRole", "rolename": role,
                             "acls": [a.to_json() for a in sorted(acls)]})
        elif current.roles[role] != acls:
            commands.append({"command": "modifyRole", "rolename": role,
                             "acls": [a.to_json() for a in sorted(acls)]})
    granted: list[str] = []
    for name, role in sorted(state.clients.items()):
        if name not in current.clients:
            commands.append({"command": "createClient", "username": name,
                             "roles": [{"rolename": role}]})
            granted.append(name)
        else:
            if current.clients[name] != (role,):
                commands.append({"command": "modifyClient", "username": name,
                                 "roles": [{"rolename": role}]})
                granted.append(name)
            if name in current.disabled:
                commands.append({"command": "enableClient", "username": name})
    kept = set(keep)
    removed: list[str] = []
    for name, roles in sorted(current.clients.items()):
        if name in state.clients or name in kept:
            continue
        if collector_name(name):
            if roles != (COLLECTOR_ROLE,) and COLLECTOR_ROLE in state.roles:
                commands.append({"command": "modifyClient", "username": name,
                                 "roles": [{"rolename": COLLECTOR_ROLE}]})
            continue
        commands.append({"command": "deleteClient", "username": name})
        removed.append(name)
    for role in sorted(current.roles):
        if role.startswith(DEVICE_ROLE_PREFIX) and role not in state.roles:
            commands.append({"command": "deleteRole", "rolename": role})
    return Plan(tuple(commands), tuple(granted), tuple(removed))

"""Keeps the broker's identities in step with the device registry (docs/protocol.md §2).

``central broker-acl --output FILE`` writes the dynamic-security plugin's configuration for the
broker's first start; ``central broker-sync`` connects as ``broker-admin`` and sends the
commands of :func:`central.broker_acl.plan`: enrolled devices get their role, revoked and
unknown identities are deleted (and so disconnected, and granted nothing from then on). With
``--crl`` both also rewrite the device CA's CRL (:mod:`central.revocation`), which the broker
reads again on SIGHUP, so a revoked certificate fails the TLS handshake.
"""

from __future__ import annotations

import itertools
import json
import os
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from central.broker_acl import (
    ADMIN,
    CONTROL_TOPIC,
    RESPONSE_TOPIC,
    Current,
    Plan,
    Wanted,
    plan,
    wanted,
)
from central.db.models import Device, DeviceGeneration
from central.enrol import DeviceCA
from central.revocation import build_crl, needs_rewrite
from central.settings import BrokerSettings

CHUNK = 40
"""Commands per control message: 40 device roles are about 16 KiB, under the deploy
configuration's ``max_packet_size`` of 64 KiB."""


class BrokerSyncError(RuntimeError):
    """The broker could not be reached or refused a command (the message says which)."""


def registry_devices(session: Session, now: datetime | None = None) -> list[tuple[str, str]]:
    """``(device_id, site_id)`` of every device that is not revoked, or retired and still
    draining its backlog (docs/operations.md §3)."""
    now = now or datetime.now(UTC)
    rows = session.execute(select(Device.id, Device.site_id).where(or_(
        Device.revoked.is_(False), Device.drain_until > now)))
    return [(str(d), str(s)) for d, s in rows]


def revoked_keys(session: Session, now: datetime) -> list[bytes]:
    """The signing keys whose certificates the CRL names: revoked devices past their drain
    period, and every earlier key generation of a re-enrolled id."""
    keys = [bytes(k) for k in session.scalars(select(Device.signing_public_key).where(
        Device.revoked.is_(True),
        or_(Device.drain_until.is_(None), Device.drain_until <= now)))]
    keys += [bytes(k) for k in session.scalars(select(DeviceGeneration.signing_public_key))]
    return keys


def write_crl(session: Session, ca: DeviceCA, path: Path, now: datetime) -> tuple[int, bool]:
    """Rewrite the CRL naming every revoked device when that list changed (atomically, mode
    0644: the broker reads it and it holds no secret). Returns (devices named, rewritten)."""
    keys = revoked_keys(session, now)
    try:
        current: bytes | None = path.read_bytes()
    except FileNotFoundError:
        current = None
    if not needs_rewrite(current, keys, now):
        return len(set(keys)), False
    pem = build_crl(ca.cert, ca.key, keys, now)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.fchmod(fd, 0o644)  # whatever the umask: the broker runs as another user
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(set(keys)), True


def wanted_from_registry(session: Session, collectors: Iterable[str],
                         group: str) -> Wanted:
    return wanted(registry_devices(session), collectors, group)


@dataclass(frozen=True)
class SyncResult:
    plan: Plan
    skipped: tuple[str, ...]


class _Control:
    """A request/response exchange on the dynamic-security control topic."""

    def __init__(self, broker: BrokerSettings, cert: Path, key: Path, timeout: float) -> None:
        self.timeout = timeout
        self._responses: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._failure: str | None = None
        # Client id = the certificate CN (use_username_as_clientid): never a collector's, so
        # the sync cannot take over an ingest worker's session.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=ADMIN,
                                  protocol=mqtt.MQTTv5)
        if broker.tls:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(broker.ca) if broker.ca else None)
            ctx.load_cert_chain(str(cert), str(key))
            self.client.tls_set_context(ctx)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.broker = broker

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any,
                    _p: Any) -> None:
        if reason.is_failure:
            self._failure = f"the broker refused the connection: {reason}"
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _p: Any) -> None:
        if any(r.is_failure for r in reasons):
            self._failure = (f"{ADMIN} may not read {RESPONSE_TOPIC}: is the dynamic-security "
                             "plugin loaded with this identity (central broker-acl)?")
        self._ready.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with self._cond:
            self._responses.extend(body.get("responses", []))
            self._cond.notify_all()

    def __enter__(self) -> _Control:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30,
                                clean_start=True)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerSyncError(f"broker {self.broker.url}: {exc}") from None
        self.client.loop_start()
        if not self._ready.wait(self.timeout) or self._failure:
            self.client.loop_stop()
            raise BrokerSyncError(self._failure or f"broker {self.broker.url}: no answer")
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands, a few per message (the broker's ``max_packet_size``); return their
        answers in order, one per command."""
        return [answer for start in range(0, len(commands), CHUNK)
                for answer in self._send(commands[start:start + CHUNK])]

    def _send(self, commands: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        tagged = [dict(c, correlationData=f"sync-{n}") for n, c in
                  zip(itertools.count(), commands, strict=False)]
        with self._cond:
            self._responses.clear()
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._responses) >= len(tagged),
                                       self.timeout):
                raise BrokerSyncError(f"the broker answered {len(self._responses)} of "
                                      f"{len(tagged)} commands: is {ADMIN} allowed to send "
                                      f"them (central broker-acl)?")
            answers = {r.get("correlationData"): r for r in self._responses}
        out = [answers.get(c["correlationData"], {"error": "no answer"}) for c in tagged]
        errors = [f"{c['command']} {c.get('username') or c.get('rolename') or ''}: "
                  f"{a['error']}" for c, a in zip(commands, out, strict=True) if "error" in a]
        if errors:
            raise BrokerSyncError("; ".join(errors))
        return out


def sync(broker: BrokerSettings, cert: Path, key: Path, state: Wanted,
         keep: Iterable[str] = (), timeout: float = 10.0) -> SyncResult:
    """Bring the running broker to ``state``; raises :class:`BrokerSyncError`."""
    with _Control(broker, cert, key, timeout) as control:
        clients, roles, access = control.send([
            {"command": "listClients", "verbose": True, "count": -1},
            {"command": "listRoles", "verbose": True, "count": -1},
            {"command": "getDefaultACLAccess"},
        ])
        current = Current.from_responses(clients.get("data", {}), roles.get("data", {}),
                                         access.get("data", {}))
        steps = plan(current, state, keep)
        control.send(steps.commands)
    return SyncResult(steps, state.skipped)

"""``central``: the collector's command line.

``central migrate|ingest|purge --config FILE`` (storage and ingest), ``central web --config FILE``
(the dashboard and API), ``central create-admin --config FILE --username NAME``,
``central broker-acl|broker-sync --config FILE`` (the broker's identities from the registry),
``central broker-identity NAME`` (a collector's or broker-admin's certificate),
``central device-config --config FILE DEVICE_ID [--language …]`` (a device's runtime
configuration, docs/protocol.md §8), ``central rekey-subjects --config FILE`` (stored subjects
to the centre subject key).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from werkzeug.serving import run_simple

from central.broker_acl import ADMIN, BrokerAclError, collector_name, document
from central.broker_sync import BrokerSyncError, sync, wanted_from_registry, write_crl
from central.db.engine import make_engine, make_sessionmaker
from central.db.models import AuditLog, Device, Role, Site, SiteKind, User
from central.device_config import SETTINGS, DeviceConfigError
from central.device_config import publish as publish_device_config
from central.enrol import DeviceCA, EnrolmentError, issue_certificate
from central.ingest.cli import register as register_ingest
from central.rekey import rekey_subjects
from central.settings import CentralSettings, SettingsError, load_settings
from central.subjects import SubjectError, load_subject_keys
from central.web import create_app
from central.web.security import hash_password


class CentralCliError(Exception):
    """Ends a command with a one-line message (exit 2)."""


def _settings(path: Path) -> CentralSettings:
    try:
        return load_settings(path)
    except SettingsError as exc:
        raise CentralCliError(str(exc)) from None


def web_overrides(settings: CentralSettings, args: argparse.Namespace) -> dict[str, Any]:
    """What the web app needs beyond the settings file: the session secret, enrolment CA."""
    secret_path = Path(args.secret_key_file) if args.secret_key_file else None
    secret = (secret_path.read_bytes() if secret_path and secret_path.exists()
              else os.environ.get("CENTRAL_SECRET_KEY", "").encode())
    if not secret:
        raise CentralCliError("no session secret: give --secret-key-file or CENTRAL_SECRET_KEY")
    overrides: dict[str, Any] = {"SECRET_KEY": secret,
                                 "SESSION_COOKIE_SECURE": not args.insecure_cookies}
    if args.device_ca_cert and args.device_ca_key:
        overrides["DEVICE_CA_CERT"] = args.device_ca_cert
        overrides["DEVICE_CA_KEY"] = args.device_ca_key
    if settings.broker.url:
        overrides["BROKER_URL"] = settings.broker.url
    if settings.broker.ca:
        overrides["BROKER_CA_CERT"] = str(settings.broker.ca)
    return overrides


def run_web(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    app = create_app(settings, web_overrides(settings, args))
    print(f"central web on http://{args.host}:{args.port}/", flush=True)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False)
    return 0


def create_admin(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    password = args.password or os.environ.get("CENTRAL_ADMIN_PASSWORD") or getpass.getpass()
    if len(password) < 10:
        raise CentralCliError("the password must have at least 10 characters")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session, session.begin():
        user = session.scalars(select(User).where(User.username == args.username)).first()
        if user is None:
            user = User(username=args.username, role=Role.ADMIN, created_at=datetime.now(UTC))
            session.add(user)
        user.password_hash = hash_password(password)
        user.role = Role.ADMIN
        user.active = True
    print(f"administrator {args.username} ready")
    return 0


def _broker_state(settings: CentralSettings, collectors: list[str] | None) -> Any:
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        state = wanted_from_registry(session, collectors or [settings.broker.client_id],
                                     settings.broker.group)
    for device_id in state.skipped:
        print(f"central: device {device_id!r} gets nothing at the broker: its id is reserved "
              "or its id or site id is not a lower-case DNS label; revoke it and enrol it "
              "under another id or site", file=sys.stderr)
    return state


def _write_crl(settings: CentralSettings, args: argparse.Namespace) -> None:
    """``--crl FILE`` with the device CA: the revoked devices' certificates, for the broker."""
    if args.crl is None:
        return
    if not (args.device_ca_cert and args.device_ca_key):
        raise CentralCliError("--crl needs --device-ca-cert and --device-ca-key (it signs it)")
    try:
        ca = DeviceCA.load(Path(args.device_ca_cert), Path(args.device_ca_key))
    except (OSError, ValueError, EnrolmentError) as exc:
        raise CentralCliError(f"device CA: {exc}") from None
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        count, rewritten = write_crl(session, ca, Path(args.crl), datetime.now(UTC))
    print(f"{args.crl}: {count} revoked devices"
          + (" (rewritten: reload the broker)" if rewritten else " (unchanged)"))


def broker_identity(args: argparse.Namespace) -> int:
    """A collector's or broker-admin's client certificate from the device CA (names that
    enrolment refuses to mint for a device)."""
    name = args.name
    if not (collector_name(name) or name == ADMIN):
        raise CentralCliError(f"{name!r}: only 'collector', 'collector-<n>' or '{ADMIN}' "
                              "(devices are enrolled, not issued here)")
    try:
        ca = DeviceCA.load(Path(args.device_ca_cert), Path(args.device_ca_key))
    except (OSError, ValueError, EnrolmentError) as exc:
        raise CentralCliError(f"device CA: {exc}") from None
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_certificate(ca, name, key.public_key(), datetime.now(UTC))
    out = Path(args.output_dir)
    key_path, cert_path = out / f"{name}.key", out / f"{name}.crt"
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CentralCliError(f"{key_path} exists: remove it to issue a new identity") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    print(f"{cert_path}, {key_path}: {name}")
    return 0


def broker_acl(args: argparse.Namespace) -> int:
    """Write the dynamic-security plugin's file for the broker's first start."""
    settings = _settings(args.config)
    try:
        state = _broker_state(settings, args.collector)
    except BrokerAclError as exc:
        raise CentralCliError(str(exc)) from None
    _write_crl(settings, args)
    out = Path(args.output)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document(state), fh, indent=1)
    print(f"{out}: {len(state.clients)} identities ({', '.join(sorted(state.clients))[:200]})")
    return 0


def broker_sync(args: argparse.Namespace) -> int:
    """Bring the running broker to the registry: grant enrolled devices, drop the rest."""
    settings = _settings(args.config)
    _write_crl(settings, args)
    try:
        state = _broker_state(settings, args.collector)
        result = sync(settings.broker, Path(args.cert), Path(args.key), state,
                      timeout=args.timeout)
    except (BrokerAclError, BrokerSyncError) as exc:
        raise CentralCliError(f"broker-sync: {exc}") from None
    print(f"broker-sync: {len(result.plan.commands)} changes; granted: "
          f"{', '.join(result.plan.granted) or '-'}; removed: "
          f"{', '.join(result.plan.removed) or '-'}")
    return 1 if result.skipped else 0


_INGEST_CN = re.compile(r"^collector(?:-[0-9]+)?$")
"""The ingest workers' certificate CNs (docs/operations.md §1): never for device-config."""


def _certificate_cn(path: Path) -> str:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CentralCliError(f"{path}: {exc}") from None
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def device_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (docs/configuration.md, "Set by the centre")."""
    return {name: getattr(args, name) for name in SETTINGS
            if getattr(args, name, None) is not None}


def device_config(args: argparse.Namespace) -> int:
    """Publish a device's runtime configuration, retained (docs/protocol.md §8): the settings
    given, the others kept from the retained message; refused for an unknown or revoked
    device; one audit row."""
    settings = _settings(args.config)
    given = device_settings(args)
    if not given and not args.reset:
        raise CentralCliError("nothing to set: give at least one of "
                              + ", ".join("--" + n.replace("_", "-") for n in SETTINGS))
    cert = Path(args.cert) if args.cert else settings.broker.cert
    key = Path(args.key) if args.key else settings.broker.key
    if cert is None or key is None:
        raise CentralCliError("no client certificate: give --cert and --key (a collector "
                              "identity, central broker-identity collector-<n>)")
    cn = _certificate_cn(cert)
    if not collector_name(cn):
        raise CentralCliError(f"{cert}: CN {cn!r} is not a collector identity "
                              "(collector or collector-<n>)")
    if (cn == settings.broker.client_id or _INGEST_CN.match(cn)) \
            and not args.allow_ingest_identity:
        raise CentralCliError(
            f"{cert}: CN {cn!r} is an ingest worker's name (collector, collector-<digits>) and "
            "the broker would take over that worker's session. Use a collector identity of "
            "its own (central broker-identity collector-config, granted once by central "
            "broker-sync --collector collector-config), or --allow-ingest-identity when no "
            "ingest worker uses this certificate")
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        device = session.get(Device, args.device_id)
        if device is None:
            raise CentralCliError(f"device {args.device_id!r} is not in the registry")
        if device.revoked:
            raise CentralCliError(f"device {args.device_id!r} is revoked")
        site = session.get(Site, device.site_id)
        if "direction" in given and (site is None or site.kind is not SiteKind.HERITAGE):
            raise CentralCliError(f"--direction applies to heritage-site gates only; "
                                  f"{args.device_id!r} is at {device.site_id!r}")
    try:
        result = publish_device_config(
            settings.broker, cert, key, args.device_id, given, reset=args.reset,
            timeout=args.timeout)
    except DeviceConfigError as exc:
        raise CentralCliError(f"device-config: {exc}") from None
    message = result.message
    with sessions() as session, session.begin():
        session.add(AuditLog(
            at=datetime.now(UTC), user_id=None, actor=f"cli:{getpass.getuser()}"[:100],
            action="device.config", target=args.device_id,
            detail={"revision": message["revision"], "settings": message["settings"],
                    "previous_revision": (result.previous or {}).get("revision")}))
    print(f"device-config: {args.device_id} revision {message['revision']}: "
          f"{json.dumps(message['settings'], sort_keys=True)}")
    return 0


def _device_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("device_id", metavar="DEVICE_ID")
    parser.add_argument("--direction", choices=("entry", "exit", "both"))
    parser.add_argument("--language", choices=("vi", "en"))
    parser.add_argument("--name-display", dest="name_display",
                        choices=("full", "given", "initials", "none"))
    parser.add_argument("--capacity-policy", dest="capacity_policy", choices=("warn", "refuse"))
    parser.add_argument("--dedupe-window-s", dest="dedupe_window_s", type=int, metavar="N",
                        help="0..3600")
    parser.add_argument("--heartbeat-s", dest="heartbeat_s", type=int, metavar="N",
                        help="5..3600")
    parser.add_argument("--reset", action="store_true",
                        help="publish exactly the settings given (the others return to the "
                             "device's own configuration)")
    parser.add_argument("--cert", help="a collector client certificate (default broker.cert)")
    parser.add_argument("--key", help="its private key (default broker.key)")
    parser.add_argument("--allow-ingest-identity", action="store_true",
                        help="allow an ingest worker's certificate (when no worker uses it)")
    parser.add_argument("--timeout", type=float, default=10.0)


def rekey(args: argparse.Namespace) -> int:
    """Convert stored legacy subjects to the centre's (central/rekey.py); idempotent."""
    settings = _settings(args.config)
    if settings.centre_subject_key is None:
        raise CentralCliError("rekey-subjects needs keys.centre_subject_key in the settings")
    try:
        keys = load_subject_keys(settings.centre_subject_key, settings.subject_key)
    except SubjectError as exc:
        raise CentralCliError(str(exc)) from None
    assert keys is not None
    report = rekey_subjects(make_engine(settings.database_url), keys, batch=args.batch)
    print("rekey-subjects: " + ", ".join(
        f"{table} {n} converted ({report.already[table]} already keyed)"
        for table, n in report.converted.items()))
    return 0


def _crl_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--crl", type=Path,
                        help="also rewrite this CRL of revoked devices (the broker's crlfile)")
    parser.add_argument("--device-ca-cert", help="the device CA certificate (signs the CRL)")
    parser.add_argument("--device-ca-key", help="the device CA private key")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="central", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_ingest(commands)
    web = commands.add_parser("web", help="the dashboard, register, reports and API")
    web.add_argument("--config", required=True, type=Path)
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--secret-key-file")
    web.add_argument("--device-ca-cert")
    web.add_argument("--device-ca-key")
    web.add_argument("--insecure-cookies", action="store_true",
                     help="allow the session cookie over plain http (local trials only)")
    web.set_defaults(handler=run_web)
    admin = commands.add_parser("create-admin", help="create or reset an administrator")
    admin.add_argument("--config", required=True, type=Path)
    admin.add_argument("--username", required=True)
    admin.add_argument("--password", help="default: CENTRAL_ADMIN_PASSWORD or a prompt")
    admin.set_defaults(handler=create_admin)
    ident = commands.add_parser("broker-identity",
                                help="issue a collector-N or broker-admin client certificate")
    ident.add_argument("name", help="collector, collector-<n> or broker-admin")
    ident.add_argument("--device-ca-cert", required=True)
    ident.add_argument("--device-ca-key", required=True)
    ident.add_argument("--output-dir", required=True, type=Path)
    ident.set_defaults(handler=broker_identity)
    acl = commands.add_parser("broker-acl",
                              help="write the broker's dynamic-security file from the registry")
    acl.add_argument("--config", required=True, type=Path)
    acl.add_argument("--output", required=True, type=Path)
    acl.add_argument("--collector", action="append", metavar="CN",
                     help="an ingest worker's certificate CN (repeat; default broker.client_id)")
    _crl_arguments(acl)
    acl.set_defaults(handler=broker_acl)
    bsync = commands.add_parser("broker-sync",
                                help="grant enrolled devices at the broker, remove revoked ones")
    bsync.add_argument("--config", required=True, type=Path)
    bsync.add_argument("--cert", required=True, help="the broker-admin client certificate")
    bsync.add_argument("--key", required=True, help="its private key")
    bsync.add_argument("--collector", action="append", metavar="CN",
                       help="an ingest worker's certificate CN (repeat; default "
                            "broker.client_id; collectors already at the broker are kept)")
    bsync.add_argument("--timeout", type=float, default=10.0)
    _crl_arguments(bsync)
    bsync.set_defaults(handler=broker_sync)
    dconf = commands.add_parser("device-config",
                                help="publish a device's runtime configuration (retained)")
    _device_config_arguments(dconf)
    dconf.set_defaults(handler=device_config)
    rk = commands.add_parser("rekey-subjects",
                             help="key stored subjects with the centre subject key (idempotent)")
    rk.add_argument("--config", required=True, type=Path)
    rk.add_argument("--batch", type=int, default=5000, help="rows per transaction")
    rk.set_defaults(handler=rekey)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    handler = getattr(args, "handler", None) or args.func
    try:
        result: int = handler(args)
    except (CentralCliError, SettingsError) as exc:
        print(f"central: {exc}", file=sys.stderr)
        return 2
    return result

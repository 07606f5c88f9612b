"""``edge-agent run --config FILE`` and ``edge-agent doctor --config FILE``.

``run`` starts the agent (readers, scanners, flows, outbox, uplink, kiosk, metrics) until SIGINT
or SIGTERM. Invalid configuration stops start-up with a message naming the key (exit 2).
``doctor`` checks what a technician would check at a gate and exits 1 when anything fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Any

from cryptography import x509

from drivers.uri import open_reader, open_scanner
from edge_agent.agent import create_agent
from edge_agent.cli.common import CliError, print_json
from edge_agent.config import Config, ConfigError, load_config, load_keys
from edge_agent.trust_folder import load_trust_folder
from edge_agent.uplink.config import TlsFiles


def register(commands: Any) -> None:
    run_parser = commands.add_parser("run", help="run the agent of this gate or desk")
    run_parser.add_argument("--config", required=True, type=Path)
    run_parser.add_argument("--log-level", default="INFO")
    run_parser.set_defaults(handler=run)
    doctor = commands.add_parser("doctor", help="check readers, scanners, certificates, "
                                                "broker and clock")
    doctor.add_argument("--config", required=True, type=Path)
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(handler=run_doctor)


def _config(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _config(args.config)
    try:
        agent = create_agent(config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    print(f"edge-agent {config.device.id}: kiosk on http://{config.kiosk.host}:"
          f"{agent.kiosk_port}/", flush=True)
    try:
        stop.wait()
    finally:
        agent.stop()
    return 0


def _check(name: str, fn: Any) -> dict[str, Any]:
    try:
        detail = fn()
        return {"check": name, "ok": True, "detail": detail}
    except Exception as exc:  # every failure becomes a line of the report
        return {"check": name, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}


class UnavailableError(RuntimeError):
    """A reader or scanner that opened but reports itself unusable."""


def _healthy(health: dict[str, Any]) -> str:
    """The health report of a reader or scanner as a line, or :class:`UnavailableError`.

    Opening a PC/SC reader does not talk to pcscd, so its health is what tells: the service
    must answer (``service``) and the configured reader must be attached (``reader``). A
    scanner's ``state`` must be ``ok`` (not ``disconnected``, ``closed`` or ``exhausted``).
    """
    if health.get("service") is False:
        raise UnavailableError(f"PC/SC service (pcscd) not answering: {health}")
    if "service" in health and health.get("reader") is None:
        raise UnavailableError(f"no such PC/SC reader attached: {health}")
    if "state" in health and health["state"] != "ok":
        raise UnavailableError(f"state {health['state']}: {health}")
    return str(health)


def doctor_checks(config: Config) -> list[dict[str, Any]]:
    """The checks, each ``{"check", "ok", "detail"}``."""
    results = [_check("keys", lambda: (load_keys(config.keys), "signing and sealing keys "
                                                                "readable")[1])]
    if config.keys.subject_key is not None:
        results.append({"check": "keys.subject_key", "ok": True, "detail": (
            "warning: the province subject key is no longer used: remove keys.subject_key "
            "and delete the file (docs/operations.md, retiring the province subject key)")})
    for uri in config.readers:
        def reader_check(uri: str = uri) -> str:
            with open_reader(uri) as reader:
                health = getattr(reader, "health", None)
                if not callable(health):
                    return f"{reader.name} opened"
                return _healthy(health())
        results.append(_check(f"reader {uri}", reader_check))
    for uri in config.scanners:
        def scanner_check(uri: str = uri) -> str:
            scanner = open_scanner(uri)
            try:
                return _healthy(scanner.health())
            finally:
                scanner.close()
        results.append(_check(f"scanner {uri}", scanner_check))
    if config.chip.trust_dir is not None:
        trust_dir = config.chip.trust_dir
        results.append(_check("trust store", lambda: f"{len(load_trust_folder(trust_dir))}"
                                                     " CSCA certificates"))
    if config.broker.tls and config.broker.cert is not None:
        cert_path = config.broker.cert

        def certificate() -> str:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            name = str(cn[0].value) if cn else ""
            if name != config.device.id:
                raise ValueError(f"certificate CN {name!r} is not device.id "
                                 f"{config.device.id!r}")
            left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
            if left.total_seconds() <= 0:
                raise ValueError(f"certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}")
            return f"CN={name}, valid {left.days} more days"
        results.append(_check("device certificate", certificate))

    def broker() -> str:
        with socket.create_connection((config.broker.host, config.broker.port), timeout=3) as s:
            if not config.broker.tls:
                return f"{config.broker.host}:{config.broker.port} reachable (no TLS)"
            if config.broker.cert is None or config.broker.key is None:
                raise ValueError("broker.cert and broker.key are required with mqtts://")
            context = TlsFiles(config.broker.ca, config.broker.cert, config.broker.key).context()
            with context.wrap_socket(s, server_hostname=config.broker.host) as tls:
                return f"{config.broker.host}:{config.broker.port} TLS {tls.version()}"
    results.append(_check("broker", broker))

    def clock() -> str:
        now = dt.datetime.now(dt.UTC)
        if now.year < 2025:
            raise ValueError(f"system clock reads {now:%Y-%m-%d}: set the time (NTP)")
        synced = Path("/run/systemd/timesync/synchronized").exists()
        return f"{now:%Y-%m-%d %H:%M:%S} UTC" + (", NTP synchronised" if synced else "")
    results.append(_check("clock", clock))
    return results


def run_doctor(args: argparse.Namespace) -> int:
    config = _config(args.config)
    results = doctor_checks(config)
    if args.json:
        print_json(results)
    else:
        for item in results:
            print(f"{'OK  ' if item['ok'] else 'FAIL'} {item['check']}: {item['detail']}")
    return 0 if all(item["ok"] for item in results) else 1



"""Sub-commands ``ingest``, ``purge`` and ``migrate`` (``register(subparsers)``).

``central ingest --config central.toml`` runs an ingest worker (and, if
``ingest.publish_occupancy``, the occupancy publisher) until SIGTERM/SIGINT;
``central purge --config FILE`` applies the retention rules once; ``central migrate --config FILE``
brings the database to the newest schema. Also runnable as ``python -m central.ingest``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from central.db.engine import make_engine
from central.settings import CentralSettings, SettingsError, load_settings

log = logging.getLogger("central.ingest")


def _settings(args: argparse.Namespace) -> CentralSettings:
    return load_settings(Path(args.config))


def cmd_migrate(args: argparse.Namespace) -> int:
    from central.migrations import upgrade  # noqa: PLC0415 (alembic only when migrating)

    settings = _settings(args)
    upgrade(settings.database_url)
    print("database at the newest schema")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from central.purge import purge  # noqa: PLC0415

    settings = _settings(args)
    engine = make_engine(settings.database_url)
    with Session(engine) as session, session.begin():
        report = purge(session, datetime.now(UTC), settings.retention)
    print(f"purged: {report.events} events, {report.presences} presences, "
          f"{report.stays_erased} stays erased, {report.audit} audit entries, "
          f"{report.rejections} rejections, {report.throttle} login throttle rows")
    if report.partitions_dropped or report.partitions_created:
        print(f"events partitions dropped: {', '.join(report.partitions_dropped) or '-'}; "
              f"created: {', '.join(report.partitions_created) or '-'}")
    engine.dispose()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from central.ingest.worker import IngestWorker, freeze_startup_heap  # noqa: PLC0415
    from central.occupancy_publisher import OccupancyPublisher  # noqa: PLC0415

    settings = _settings(args)
    if settings.centre_private_key is None or settings.data_key is None:
        raise SettingsError("keys", "ingest needs keys.centre_private_key and keys.data_key "
                            "(stay events would be refused)")
    if settings.metrics_port:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(settings.metrics_port, addr="127.0.0.1")
    engine = make_engine(settings.database_url)
    worker = IngestWorker(settings, engine)
    freeze_startup_heap()
    worker.start()
    publisher = None
    if settings.publish_occupancy:
        publisher = OccupancyPublisher(engine, worker.client).start()
    done = threading.Event()

    def _stop(_sig: int, _frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("ingest running as %s", settings.broker.client_id)
    while not done.wait(0.5):
        if worker.stopping.is_set():
            log.error("ingest worker stopped on an error")
            break
    failed = worker.stopping.is_set() and not done.is_set()
    if publisher is not None:
        publisher.stop()
    worker.stop()
    engine.dispose()
    return 1 if failed else 0


def register(subparsers: Any) -> None:
    """Add ``ingest``, ``purge`` and ``migrate`` to an argparse sub-parser set."""
    for name, func, text in (("ingest", cmd_ingest, "run an ingest worker"),
                             ("purge", cmd_purge, "apply the retention rules once"),
                             ("migrate", cmd_migrate, "migrate the database to head")):
        parser = subparsers.add_parser(name, help=text)
        parser.add_argument("--config", required=True, help="collector settings (TOML)")
        parser.set_defaults(func=func)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="central")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        print(f"central: {exc}", file=sys.stderr)
        return 2
    return result

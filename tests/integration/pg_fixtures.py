"""A throw-away PostgreSQL 15 server for the integration tests, and engines on both databases.

``postgres_server`` (session scope): ``initdb`` as the ``postgres`` user (PostgreSQL refuses to
run as root) in a temp dir chowned to it, ``pg_ctl start`` on a free 127.0.0.1 port with the unix
socket in that dir, trust authentication; stopped at the end of the session. Missing binaries
FAIL the test (docs/design.md §5: never a silent skip).

``fresh_database(server)`` creates a new database and returns its SQLAlchemy URL;
``db_url`` is parametrised over ``sqlite`` and ``postgresql`` and gives a migrated database.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.integration.broker_fixtures import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class PgServer:
    root: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                          text=True, check=False, timeout=120)


def start_postgres() -> PgServer:
    for tool in ("initdb", "pg_ctl"):
        if not (PG_BIN / tool).exists():
            pytest.fail(f"PostgreSQL binary {PG_BIN / tool} missing (apt-get install "
                        "postgresql-15): the integration tests need the real database")
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("no 'postgres' user: install the postgresql package")
    root = Path(tempfile.mkdtemp(prefix="central-pg-"))
    os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    done = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
    if done.returncode:
        done = _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--no-locale")
    if done.returncode:
        pytest.fail(f"initdb failed: {done.stderr}")
    port = free_port()
    opts = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
    done = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
                        "-o", opts, "-w", "-t", "60", "start")
    if done.returncode:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        pytest.fail(f"pg_ctl start failed: {done.stderr}\n{log}")
    return PgServer(root, port)


def stop_postgres(server: PgServer) -> None:
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(server.root / "data"), "-m", "fast", "-w",
                 "stop")
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        stop_postgres(server)


def fresh_database(server: PgServer) -> str:
    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(server.url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty (not migrated) database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.sqlite3'}"
    server: PgServer = request.getfixturevalue("postgres_server")
    return fresh_database(server)


# -- a seeded collector database and events built by the agent's own code --------------------

from datetime import UTC, datetime, timedelta, timezone  # noqa: E402
from typing import Any  # noqa: E402

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from central.db.engine import make_engine  # noqa: E402
from central.db.models import Site, SiteKind, Unit, UnitLevel  # noqa: E402
from central.migrations import upgrade  # noqa: E402
from central.registry import enrol_device  # noqa: E402
from edge_agent.events.ids import Uuid7Generator  # noqa: E402
from edge_agent.events.model import (  # noqa: E402
    Demographics,
    EventAssurance,
    EventDraft,
    EventKind,
    Method,
    build_event,
)

VN = timezone(timedelta(hours=7))
PERSONAL = {"full_name": "Nguyễn Thị Mai", "id_number": "079303001234",
            "date_of_birth": "2003-05-15", "sex": "F", "nationality": "VNM",
            "address": "12 Lê Lợi, Phường Bến Nghé, Quận 1, TP Hồ Chí Minh",
            "document_type": "cccd"}


_UUID7 = Uuid7Generator()


def migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


@dataclass
class FakeDevice:
    """A device with its signing key, building events with edge_agent's build_event."""

    device_id: str
    site_id: str
    key: Ed25519PrivateKey
    centre_public: Any
    seq: int = 0

    def event(self, kind: str = "entry", *, seq: int | None = None,
              occurred_at: datetime | None = None, subject: str | None = "a" * 32,
              count: int = 1, event_id: uuid.UUID | None = None, site_id: str | None = None,
              details: dict[str, Any] | None = None, ref: str | None = None) -> dict[str, Any]:
        """An event of ``kind``; ``subject`` travels in clear (an older agent) unless ``ref``
        is given, which is sealed to the centre as the current agent does (docs/protocol.md
        §4.7.1)."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        at = occurred_at or datetime.now(VN)
        k = EventKind(kind)
        personal = None
        if kind == "manual":
            draft = EventDraft(k, Method.MANUAL, EventAssurance.MANUAL, at, None, count,
                               Demographics(), "child", details or {"counts_as": "entry"})
        else:
            if k.is_stay:
                personal = PERSONAL
                details = details or {"stay_id": str(uuid.uuid4()), "ward_or_room": "204",
                                      "expected_departure": "2025-05-02",
                                      "reason_code": "tourism"}
            draft = EventDraft(k, Method.CHIP, EventAssurance.CHIP_ANCHORED, at, subject,
                               count, Demographics("15-24", "F", "079"), None, details or {},
                               personal, subject_ref=ref)
        return build_event(draft, device_id=self.device_id, site_id=site_id or self.site_id,
                           seq=seq, event_id=event_id or _UUID7(), signing_key=self.key,
                           centre_key=self.centre_public)


def seed(engine: Engine, sites: dict[str, str] | None = None,
         devices: dict[str, str] | None = None,
         centre_key: X25519PrivateKey | None = None) -> dict[str, FakeDevice]:
    """Sites {id: kind} and devices {id: site}; returns the devices' fakes."""
    sites = sites or {"hue-dai-noi": "heritage", "ks-song-huong": "accommodation"}
    devices = devices or {"gate-ngo-mon-01": "hue-dai-noi", "gate-ngo-mon-02": "hue-dai-noi",
                          "ks-song-huong-le-tan": "ks-song-huong"}
    centre = centre_key or X25519PrivateKey.generate()
    out: dict[str, FakeDevice] = {}
    with Session(engine) as session, session.begin():
        unit = Unit(code="46", name="Thừa Thiên Huế", level=UnitLevel.PROVINCE)
        session.add(unit)
        session.flush()
        for site_id, kind in sites.items():
            session.add(Site(id=site_id, name=site_id, kind=SiteKind(kind), unit_id=unit.id,
                             capacity=6000, close_time="17:30"))
        session.flush()
        for device_id, site_id in devices.items():
            key = Ed25519PrivateKey.generate()
            enrol_device(session, device_id, site_id, key.public_key(),
                         now=datetime.now(UTC))
            out[device_id] = FakeDevice(device_id, site_id, key, centre.public_key())
    return out

"""Engines and sessions: SQLite in WAL mode by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from central.private_files import ensure_private_file

DEFAULT_URL = "sqlite:///var/central.sqlite3"


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """An engine; for SQLite, WAL with a busy timeout so several workers can share the file,
    and the database file created 0600 before SQLite opens it (its ``-wal`` and ``-shm``
    follow the database's mode). A server database pings each pooled connection before
    handing it out: after PostgreSQL restarts (a crash, a failover) every pooled connection
    is dead, and without the ping the next request on each one fails (docs/operations.md,
    faults and recovery)."""
    if not url.startswith("sqlite"):
        kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            if path.parent.is_dir():
                ensure_private_file(path)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)

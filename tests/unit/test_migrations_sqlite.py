"""Migrations on a fresh SQLite (the PostgreSQL twin is tests/integration/test_ingest_migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from central.db.engine import make_engine
from central.db.models import Base
from central.migrations import current, upgrade


def test_sqlite_migrates_to_head_without_diff(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    assert current(engine) == "0004"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()

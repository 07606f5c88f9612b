"""Migrations on a fresh SQLite (the PostgreSQL twin is tests/integration/test_ingest_migrations)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from central.db.engine import make_engine
from central.db.models import Base
from central.migrations import current, include_name, upgrade


def test_sqlite_migrates_to_head_without_diff(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    assert current(engine) == "0007"
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(
            conn, opts={"include_name": include_name}), Base.metadata) == []
    engine.dispose()


def test_0005_downgrade_drops_snapshots_and_notice_refs(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import inspect, text

    from central.migrations import alembic_config

    url = f"sqlite:///{tmp_path / 'd.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO report_snapshots (scope_key, site_ids, period_kind, first_day, "
            "last_day, version, created_at, author, data, xlsx) VALUES ('all', '[]', 'month', "
            "'2026-11-01', '2026-11-30', 1, '2026-12-01 00:00:00', 'x', '{}', X'00')"))
    assert "notice_ref" in {c["name"] for c in inspect(engine).get_columns("stays")}
    command.downgrade(alembic_config(engine), "0004")
    assert current(engine) == "0004"
    inspector = inspect(engine)
    assert "report_snapshots" not in inspector.get_table_names()
    assert "notice_ref" not in {c["name"] for c in inspector.get_columns("stays")}
    assert "acked_at" not in {c["name"] for c in inspector.get_columns("alarms")}
    upgrade(engine)
    assert current(engine) == "0007"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_snapshots")).scalar() == 0
    engine.dispose()

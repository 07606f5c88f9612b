"""Migrations: a fresh SQLite and a fresh PostgreSQL reach head, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from central.db.engine import make_engine
from central.db.models import Base
from central.migrations import current, upgrade
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401


def test_fresh_database_migrates_to_head_and_matches_models(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    upgrade(engine)
    assert current(engine) == "0003"
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff
    upgrade(engine)  # idempotent at head
    engine.dispose()

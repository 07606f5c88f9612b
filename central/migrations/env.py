"""Alembic environment: online migrations over the engine handed in by ``central.migrations``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from central.db.models import Base
from central.migrations import include_name

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through central.migrations.upgrade(engine_or_url)")

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite", compare_type=True,
                      include_name=include_name)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()

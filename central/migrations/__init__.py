"""Alembic migrations of the collector's schema, driven from Python (no ``alembic.ini``).

``upgrade(engine_or_url)`` brings a database to the newest revision; ``alembic_config()`` gives
the programmatic :class:`alembic.config.Config` (script location inside this package) for
``alembic.command`` calls such as ``revision(autogenerate=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from central.db.engine import make_engine
from central.db.partitions import is_partition_name

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config pointing at this package; ``engine`` is used by ``env.py``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("version_locations", str(SCRIPT_LOCATION / "versions"))
    config.set_main_option("path_separator", "os")
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Schema comparison filter: the month partitions of ``events`` (and their indexes) are
    made by central.db.partitions, not by the models."""
    if type_ == "table":
        return not is_partition_name(name)
    return True


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (default: the newest)."""
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        command.upgrade(alembic_config(engine), revision)
    finally:
        if isinstance(engine_or_url, str):
            engine.dispose()


def current(engine: Engine) -> str | None:
    """The revision the database is at (``None`` before the first migration)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()

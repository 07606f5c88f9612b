"""Migrations: a fresh SQLite and a fresh PostgreSQL reach head, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from central.db.engine import make_engine
from central.db.models import Base
from central.migrations import current, include_name, upgrade
from tests.integration.pg_fixtures import db_url, postgres_server  # noqa: F401


def test_fresh_database_migrates_to_head_and_matches_models(db_url: str) -> None:  # noqa: F811
    engine = make_engine(db_url)
    upgrade(engine)
    assert current(engine) == "0007"
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "include_name": include_name})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff
    upgrade(engine)  # idempotent at head
    engine.dispose()


def test_upgrade_keeps_rollups_and_downgrade_merges_the_insurance_dimension(
        db_url: str) -> None:  # noqa: F811
    from alembic import command
    from sqlalchemy import text

    from central.migrations import alembic_config

    engine = make_engine(db_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO units (id, code, name, level) "
                          "VALUES (1, '46', 'Huế', 'PROVINCE')"))
        conn.execute(text("INSERT INTO sites (id, name, kind, unit_id, close_time) "
                          "VALUES ('bv', 'BV', 'HOSPITAL', 1, '23:00')"))
        conn.execute(text(
            "INSERT INTO rollups (site_id, hour, kind, method, age_band, sex, birth_province, "
            "people, events) VALUES ('bv', '2025-03-01 02:00:00+00:00', 'visit', 'chip', "
            "'', '', '', 5, 5)"))
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT insurance, people FROM rollups")).all() == [("", 5)]
        conn.execute(text(
            "INSERT INTO rollups (site_id, hour, kind, method, age_band, sex, birth_province, "
            "insurance, people, events) VALUES ('bv', '2025-03-01 02:00:00+00:00', 'visit', "
            "'chip', '', '', '', 'valid', 7, 7)"))
    command.downgrade(alembic_config(engine), "0001")
    assert current(engine) == "0001"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT people, events FROM rollups")).all() == [(12, 12)]
        names = {i["name"] for i in inspect(conn).get_indexes("events")}
    assert {"ix_events_device_seq", "ix_events_site_time", "ix_events_subject"} <= names
    upgrade(engine)
    assert current(engine) == "0007"
    engine.dispose()


def test_device_version_widened_to_the_schema_and_cut_back_on_downgrade(
        db_url: str) -> None:  # noqa: F811
    """0004: a 40-character version (status.v1's maximum) fits; the downgrade cuts it to 32."""
    from alembic import command
    from sqlalchemy import text

    from central.migrations import alembic_config

    engine = make_engine(db_url)
    upgrade(engine)
    long_version = "0.1.0+build.20261205.g0123456789abcdef0"
    assert len(long_version) == 39
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO units (id, code, name, level) "
                          "VALUES (1, '46', 'Huế', 'PROVINCE')"))
        conn.execute(text("INSERT INTO sites (id, name, kind, unit_id, close_time) "
                          "VALUES ('s', 'S', 'HERITAGE', 1, '23:00')"))
        conn.execute(text(
            "INSERT INTO devices (id, site_id, name, signing_public_key, enrolled_at, revoked, "
            "state, last_seq, contiguous_seq, version) VALUES ('d', 's', 'd', :k, "
            "'2026-12-01 00:00:00+00:00', false, 'online', 0, 0, :v)"),
            {"k": bytes(32), "v": long_version + "1"})
    command.downgrade(alembic_config(engine), "0003")
    assert current(engine) == "0003"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version FROM devices")).scalar_one() == \
            (long_version + "1")[:32]
    upgrade(engine)
    assert current(engine) == "0007"
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True,
                                                             "include_name": include_name})
        assert compare_metadata(ctx, Base.metadata) == []
    engine.dispose()

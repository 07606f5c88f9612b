"""An engine outlives a PostgreSQL restart (found by the chaos suite: after the postmaster was
SIGKILLed and started again, the web answered its next request with 500, the pooled connection
being dead). ``make_engine`` pings a pooled connection before handing it out, so the first
request after the restart is served like any other."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from central.db.engine import make_engine
from central.ingest.worker import unsafe_commit_setting
from tests.integration.pg_fixtures import PgServer, fresh_database, postgres_server  # noqa: F401


def test_pooled_connection_killed_by_the_server_is_replaced(
        postgres_server: PgServer) -> None:  # noqa: F811
    engine = make_engine(fresh_database(postgres_server))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The server ends that backend, as a crash and restart ends every one.
        killer = make_engine(postgres_server.url())
        with killer.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        killer.dispose()
        with engine.connect() as conn:  # the same pooled connection, dead: replaced
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        engine.dispose()


def test_ingest_warns_when_commits_are_not_durable(
        postgres_server: PgServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    """A receipt promises what the commit promises: ``synchronous_commit = off`` lets a crash
    of the server lose commits already receipted (the chaos suite lost 1 of 299 that way)."""
    url = fresh_database(postgres_server)
    # (the test cluster itself runs with it off, for speed: each session sets its own)
    engine = make_engine(url, connect_args={"options": "-c synchronous_commit=on"})
    off = make_engine(url, connect_args={"options": "-c synchronous_commit=off"})
    try:
        with caplog.at_level(logging.WARNING, logger="central.ingest"):
            assert unsafe_commit_setting(engine) is None
            assert not caplog.records
            assert unsafe_commit_setting(off) == "off"
        assert "synchronous_commit is off" in caplog.text
        assert unsafe_commit_setting(make_engine("sqlite://")) is None
    finally:
        engine.dispose()
        off.dispose()

"""An engine outlives a PostgreSQL restart (found by the chaos suite: after the postmaster was
SIGKILLed and started again, the web answered its next request with 500, the pooled connection
being dead). ``make_engine`` pings a pooled connection before handing it out, so the first
request after the restart is served like any other."""

from __future__ import annotations

from sqlalchemy import text

from central.db.engine import make_engine
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

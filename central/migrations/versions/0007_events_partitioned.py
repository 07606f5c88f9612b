"""Events partitioned by month on PostgreSQL; the dedupe keys move to a ledger.

* events: primary key ``(device_id, seq, occurred_at)`` (the partition key in every key, as
  PostgreSQL requires of a partitioned table); the surrogate ``id`` and the two unique keys go.
  On PostgreSQL the table becomes ``PARTITION BY RANGE (occurred_at)`` with one partition per
  month of the rows it holds up to three months ahead, and ``events_default``
  (central.db.partitions); on SQLite it stays one table.
* event_keys: ``(device_id, seq)`` primary key and ``(device_id, event_id)`` unique, not
  partitioned, so the dedupe stays exact across months (docs/protocol.md §4.9); filled from the
  events in place.

The rows are copied in place (a rename, a new table, ``INSERT … SELECT``, the old table
dropped): the migration holds the table for the time of the copy (docs/operations.md §7).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 03:30:00

"""
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from central.db.partitions import DEFAULT, ensure_partitions

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("device_id", "event_id", "seq", "site_id", "occurred_at", "received_at", "kind",
           "method", "assurance", "subject", "count", "age_band", "sex", "birth_province",
           "reason", "details", "sig")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("assurance", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("age_band", sa.String(length=8), nullable=True),
        sa.Column("sex", sa.String(length=1), nullable=True),
        sa.Column("birth_province", sa.String(length=3), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("sig", sa.String(length=86), nullable=True),
    ]


def _foreign_keys() -> list[sa.ForeignKeyConstraint]:
    return [sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                    name=op.f("fk_events_device_id_devices")),
            sa.ForeignKeyConstraint(["site_id"], ["sites.id"],
                                    name=op.f("fk_events_site_id_sites"))]


def _set_old_table_aside(postgresql: bool) -> None:
    """``events`` → ``events_0006``, its index names freed (they are per schema)."""
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.rename_table("events", "events_0006")
    if postgresql:
        op.execute("ALTER INDEX pk_events RENAME TO pk_events_0006")
        op.execute("ALTER TABLE events_0006 DROP CONSTRAINT uq_events_device_event")
        op.execute("ALTER TABLE events_0006 DROP CONSTRAINT uq_events_device_seq")
        op.execute("ALTER TABLE events_0006 DROP CONSTRAINT fk_events_device_id_devices")
        op.execute("ALTER TABLE events_0006 DROP CONSTRAINT fk_events_site_id_sites")


def upgrade() -> None:
    """The new events (partitioned on PostgreSQL), the ledger, the rows copied into both."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    _set_old_table_aside(postgresql)
    op.create_table(
        "events", *_columns(), *_foreign_keys(),
        sa.PrimaryKeyConstraint("device_id", "seq", "occurred_at", name=op.f("pk_events")),
        postgresql_partition_by="RANGE (occurred_at)")
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"], unique=False)
    op.create_table(
        "event_keys",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sig", sa.String(length=86), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "seq", name=op.f("pk_event_keys")),
        sa.UniqueConstraint("device_id", "event_id", name="uq_event_keys_device_event"))
    op.create_index("ix_event_keys_occurred_at", "event_keys", ["occurred_at"], unique=False,
                    postgresql_using="brin")
    conn = op.get_bind()
    names = ", ".join(COLUMNS)
    if postgresql:
        op.execute(f"CREATE TABLE {DEFAULT} PARTITION OF events DEFAULT")
        oldest = conn.execute(sa.text("SELECT min(occurred_at) FROM events_0006")).scalar()
        now = datetime.now(UTC)
        back = now - oldest if oldest is not None and oldest < now else timedelta(0)
        ensure_partitions(conn, now, back=back, ahead=3)
        # Rows beyond the months above (the future, past the skew bound) land in the default.
    conn.execute(sa.text(f"INSERT INTO events ({names}) SELECT {names} "  # noqa: S608
                         "FROM events_0006"))
    conn.execute(sa.text("INSERT INTO event_keys (device_id, seq, event_id, occurred_at, sig) "
                         "SELECT device_id, seq, event_id, occurred_at, sig FROM events_0006"))
    op.drop_table("events_0006")


def downgrade() -> None:
    """Back to 0006: one unpartitioned events table with its ``id`` and unique keys."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_events_occurred_at", table_name="events")
    op.rename_table("events", "events_0007")
    if postgresql:
        op.execute("ALTER INDEX pk_events RENAME TO pk_events_0007")
        op.execute("ALTER TABLE events_0007 DROP CONSTRAINT fk_events_device_id_devices")
        op.execute("ALTER TABLE events_0007 DROP CONSTRAINT fk_events_site_id_sites")
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),
        *_columns(), *_foreign_keys(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("device_id", "event_id", name="uq_events_device_event"),
        sa.UniqueConstraint("device_id", "seq", name="uq_events_device_seq"))
    op.create_index("ix_events_occurred_at", "events", ["occurred_at"], unique=False)
    names = ", ".join(COLUMNS)
    op.get_bind().execute(sa.text(
        f"INSERT INTO events ({names}) SELECT {names} FROM events_0007 "  # noqa: S608
        "ORDER BY occurred_at, device_id, seq"))
    op.drop_table("events_0007")  # with its partitions on PostgreSQL
    op.drop_index("ix_event_keys_occurred_at", table_name="event_keys")
    op.drop_table("event_keys")

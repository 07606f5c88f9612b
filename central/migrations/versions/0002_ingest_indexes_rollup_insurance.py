"""Ingest indexes, the rollups' insurance dimension, the seq-gap grace period.

* presences: ``ix_presences_subject`` (the ingest pairs a batch by subject).
* events: only the indexes something reads are kept (the two unique keys and
  ``ix_events_occurred_at`` for the purge); ``ix_events_device_seq`` duplicated a unique key,
  ``ix_events_site_time`` and ``ix_events_subject`` had no reader. Every index costs each insert.
* rollups: ``insurance`` (the insured-visit ratio of docs/cccd.md §10), part of ``uq_rollups_key``;
  existing rows get ``''`` (not known).
* devices: ``gap_since`` (a seq gap becomes an alarm only after a grace period); a device with a
  gap today gets the migration's time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 08:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["site_id", "hour", "kind", "method", "age_band", "sex", "birth_province"]


def upgrade() -> None:
    """Indexes as above; rollups.insurance in uq_rollups_key; devices.gap_since."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("gap_since", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE devices SET gap_since = CURRENT_TIMESTAMP WHERE last_seq > contiguous_seq")
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.create_index("ix_presences_subject", ["subject"], unique=False)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_subject")
        batch_op.drop_index("ix_events_site_time")
        batch_op.drop_index("ix_events_device_seq")
        batch_op.create_index("ix_events_occurred_at", ["occurred_at"], unique=False)
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insurance", sa.String(length=16), server_default="",
                                      nullable=False))
        batch_op.drop_constraint("uq_rollups_key", type_="unique")
        batch_op.create_unique_constraint("uq_rollups_key", [*OLD_KEY, "insurance"])


def downgrade() -> None:
    """Back to 0001: rollups merged per old key, the old indexes rebuilt."""
    conn = op.get_bind()
    keys = ", ".join(OLD_KEY)
    conn.execute(sa.text(
        f"CREATE TEMPORARY TABLE rollups_merged AS SELECT {keys}, "  # noqa: S608
        f"SUM(people) AS people, SUM(events) AS events FROM rollups GROUP BY {keys}"))
    conn.execute(sa.text("DELETE FROM rollups"))
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.drop_constraint("uq_rollups_key", type_="unique")
        batch_op.drop_column("insurance")
        batch_op.create_unique_constraint("uq_rollups_key", OLD_KEY)
    conn.execute(sa.text(
        f"INSERT INTO rollups ({keys}, people, events) "  # noqa: S608
        f"SELECT {keys}, people, events FROM rollups_merged"))
    conn.execute(sa.text("DROP TABLE rollups_merged"))
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_occurred_at")
        batch_op.create_index("ix_events_device_seq", ["device_id", "seq"], unique=False)
        batch_op.create_index("ix_events_site_time", ["site_id", "occurred_at"], unique=False)
        batch_op.create_index("ix_events_subject", ["subject"], unique=False)
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.drop_index("ix_presences_subject")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("gap_since")

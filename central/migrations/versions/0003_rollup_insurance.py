"""Rollups gain an insurance dimension (the insured-visit ratio of CCCD.md §10).

Existing rows get ``''`` (not known), the unique key is rebuilt with the new column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 08:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["site_id", "hour", "kind", "method", "age_band", "sex", "birth_province"]


def upgrade() -> None:
    """Add rollups.insurance and put it in uq_rollups_key."""
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insurance", sa.String(length=16), server_default="",
                                      nullable=False))
        batch_op.drop_constraint("uq_rollups_key", type_="unique")
        batch_op.create_unique_constraint("uq_rollups_key", [*OLD_KEY, "insurance"])


def downgrade() -> None:
    """Fold the insurance dimension back (sums merged per old key) and drop the column."""
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

"""Accommodation notices' portal reference, frozen report snapshots.

* stays: ``notice_ref`` (the police portal's reference of the notice; with ``notified_at`` and
  ``deadline_at`` it tells an on-time notice from a late one, docs/cccd.md §9).
* report_snapshots: submitted reports, frozen (JSON of the tables + the XLSX rendered from it),
  versioned per scope, period and dates.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-06 01:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """stays.notice_ref; the report_snapshots table."""
    with op.batch_alter_table("stays", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_ref", sa.String(length=64), nullable=True))
    op.create_table(
        "report_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_key", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("site_ids", sa.JSON(), nullable=False),
        sa.Column("period_kind", sa.String(length=16), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"],
                                name=op.f("fk_report_snapshots_created_by_users")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"],
                                name=op.f("fk_report_snapshots_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_snapshots")),
        sa.UniqueConstraint("scope_key", "period_kind", "first_day", "last_day", "version",
                            name="uq_report_snapshots_version"),
    )


def downgrade() -> None:
    """Back to 0002: the snapshots and the notice references are dropped."""
    op.drop_table("report_snapshots")
    with op.batch_alter_table("stays", schema=None) as batch_op:
        batch_op.drop_column("notice_ref")

"""Accommodation notices' portal reference, frozen report snapshots, alarm acknowledgement.

* stays: ``notice_ref`` (the police portal's reference of the notice; with ``notified_at`` and
  ``deadline_at`` it tells an on-time notice from a late one, docs/cccd.md §9).
* report_snapshots: submitted reports, frozen (JSON of the tables + the XLSX rendered from it),
  versioned per scope, period and dates.
* alarms: ``acked_at``, ``acked_by``, ``ack_note`` (staff acknowledge an alarm with a note).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 01:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """stays.notice_ref; the report_snapshots table; alarm acknowledgement."""
    with op.batch_alter_table("stays", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notice_ref", sa.String(length=64), nullable=True))
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acked_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("ack_note", sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(op.f("fk_alarms_acked_by_users"), "users", ["acked_by"],
                                    ["id"])
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
    """Back to 0002: the snapshots, the notice references and acknowledgements are dropped."""
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_alarms_acked_by_users"), type_="foreignkey")
        batch_op.drop_column("ack_note")
        batch_op.drop_column("acked_by")
        batch_op.drop_column("acked_at")
    op.drop_table("report_snapshots")
    with op.batch_alter_table("stays", schema=None) as batch_op:
        batch_op.drop_column("notice_ref")

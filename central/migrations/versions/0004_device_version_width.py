"""devices.version widened to the 40 characters status.v1 allows.

The schema allows a ``version`` of 1 to 40 characters (``0.1.0+build.20261205.g0123456789abcd``
is 36); the column held 32, so on PostgreSQL such a status failed its batch
(``StringDataRightTruncation``). The downgrade cuts longer values to 32 characters first.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 00:30:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """devices.version: String(32) → String(40)."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.String(length=32),
                              type_=sa.String(length=40), existing_nullable=True)


def downgrade() -> None:
    """Back to String(32); longer versions are cut (they are informational)."""
    op.execute("UPDATE devices SET version = SUBSTR(version, 1, 32) "
               "WHERE LENGTH(version) > 32")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.alter_column("version", existing_type=sa.String(length=40),
                              type_=sa.String(length=32), existing_nullable=True)

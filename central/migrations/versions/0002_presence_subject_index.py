"""Index presences by subject alone (the ingest's pairing lookup).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 09:15:00

"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ix_presences_subject."""
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.create_index("ix_presences_subject", ["subject"], unique=False)


def downgrade() -> None:
    """Drop ix_presences_subject."""
    with op.batch_alter_table("presences", schema=None) as batch_op:
        batch_op.drop_index("ix_presences_subject")

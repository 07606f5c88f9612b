"""Device generations (re-enrolment under the same id), retirement with a drain period, refused
seqs that settle a seq gap.

* devices: ``revoked_at``, ``drain_until`` (a retired device's backlog is still accepted until
  then, docs/operations.md §3), ``generation`` and ``seq_base`` (``events.seq`` = ``seq_base`` +
  the device's own seq, so a replacement numbering from 1 never collides with the old keys).
* device_generations: the earlier keys of an id (kept on the CRL).
* refused_seqs: seqs the device signed and the ingest refused, settled for gap detection.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 01:15:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """The device columns and the two tables."""
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("drain_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False,
                                      server_default="1"))
        batch_op.add_column(sa.Column("seq_base", sa.BigInteger(), nullable=False,
                                      server_default="0"))
    op.create_table(
        "device_generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("signing_public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("cert_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq_base", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"],
                                name=op.f("fk_device_generations_device_id_devices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_generations")),
        sa.UniqueConstraint("device_id", "generation",
                            name="uq_device_generations_device_generation"),
    )
    op.create_table(
        "refused_seqs",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "seq", name=op.f("pk_refused_seqs")),
    )


def downgrade() -> None:
    """Back to 0005: generations, refused seqs and the drain period are dropped."""
    op.drop_table("refused_seqs")
    op.drop_table("device_generations")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("seq_base")
        batch_op.drop_column("generation")
        batch_op.drop_column("drain_until")
        batch_op.drop_column("revoked_at")

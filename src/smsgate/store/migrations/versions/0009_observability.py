"""callback attempts and worker heartbeats: what an operator is shown

Revision ID: 0009
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "callback_attempts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("callback_id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=True),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["callback_outbox.id"],
            name=op.f("fk_callback_attempts_callback_id_callback_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
    )
    op.create_index("ix_callback_attempts_callback", "callback_attempts", ["callback_id"])
    op.create_index("ix_callback_attempts_message", "callback_attempts", ["message_id"])
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.Column("last_claim_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    op.drop_index("ix_callback_attempts_message", table_name="callback_attempts")
    op.drop_index("ix_callback_attempts_callback", table_name="callback_attempts")
    op.drop_table("callback_attempts")

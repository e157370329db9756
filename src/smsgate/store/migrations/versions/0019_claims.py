"""claims: every lease a dispatcher took on a message, for its history

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_claims"),
    )
    op.create_index("ix_claims_message", "claims", ["message_id"])


def downgrade() -> None:
    op.drop_table("claims")

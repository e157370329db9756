"""auth failures: failed authentications per address and identifier

Revision ID: 0011
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_failures",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.BigInteger(), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_failures")),
    )
    op.create_index("ix_auth_failures_last_failure", "auth_failures", ["last_failure_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_last_failure", table_name="auth_failures")
    op.drop_table("auth_failures")

"""sealed credential secrets and request nonces (HMAC-signed requests)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_nonces",
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("seen_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("identifier", "nonce", name=op.f("pk_request_nonces")),
    )
    op.create_index("ix_request_nonces_seen", "request_nonces", ["seen_at"], unique=False)
    op.add_column("credentials", sa.Column("sealed_secret", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.drop_column("sealed_secret")
    op.drop_index("ix_request_nonces_seen", table_name="request_nonces")
    op.drop_table("request_nonces")

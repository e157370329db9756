"""reply conversations: each (reply number, handset) pair is held until a time

Revision ID: 0012
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

# Conversations opened before this revision are held for the default window
# (SMSGATE_REPLY_WINDOW_HOURS) from their latest message.
_DEFAULT_WINDOW_MS = 24 * 3_600_000


def upgrade() -> None:
    op.add_column("reply_routes", sa.Column("expires_at", sa.BigInteger(), nullable=True))
    op.execute(f"UPDATE reply_routes SET expires_at = created_at + {_DEFAULT_WINDOW_MS}")
    with op.batch_alter_table("reply_routes") as batch:
        batch.alter_column("expires_at", existing_type=sa.BigInteger(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("reply_routes") as batch:
        batch.drop_column("expires_at")

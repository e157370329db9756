"""message expiry: the instant after which a message is not sent (SMPP validity_period)

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+), as 0018 does: a batch copy would rebuild messages.
    op.drop_column("messages", "expires_at")

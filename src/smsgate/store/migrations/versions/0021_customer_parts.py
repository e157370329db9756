"""customer parts: a text part an SMPP customer cut itself keeps its concatenation

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("part_of", sa.String(length=24), nullable=True))


def downgrade() -> None:
    # In place (SQLite 3.35+), as 0020 does: a batch copy would rebuild messages.
    op.drop_column("messages", "part_of")

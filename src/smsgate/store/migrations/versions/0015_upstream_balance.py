"""upstream balance: the credit an upstream HTTP provider last said it holds for us

Revision ID: 0015
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("connector_health", sa.Column("balance", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connector_health") as batch:
        batch.drop_column("balance")

"""messages without foreign keys

The accepting transaction writes a batch and its messages together, so the
per-row key checks guarded nothing, and on PostgreSQL each took a lock on the
parent row: dropping them halves the COPY of a 30,000-message batch.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KEYS = (
    ("fk_messages_account_id_accounts", "accounts", "account_id"),
    ("fk_messages_batch_id_batches", "batches", "batch_id"),
)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        for name, _parent, _column in _KEYS:
            batch_op.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        for name, parent, column in _KEYS:
            batch_op.create_foreign_key(name, parent, [column], ["id"])

"""submitted parts and unmatched receipts: receipts matched by declared id, per part, durably

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submitted_parts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.Column("parts", sa.SmallInteger(), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("carrier_key", sa.String(length=64), nullable=False),
        sa.Column("carrier_ref", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("carrier_status", sa.String(length=32), nullable=True),
        sa.Column("receipt_text", sa.Text(), nullable=True),
        sa.Column("receipt_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submitted_parts")),
    )
    op.create_index(
        "ix_submitted_parts_key",
        "submitted_parts",
        ["connector", "carrier_key", "submitted_at"],
    )
    op.create_index("ix_submitted_parts_message", "submitted_parts", ["message_id"])
    op.create_table(
        "unmatched_receipts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("carrier_key", sa.String(length=64), nullable=False),
        sa.Column("carrier_ref", sa.String(length=64), nullable=False),
        sa.Column("handset", sa.String(length=20), server_default="", nullable=False),
        sa.Column("message_id", _ID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), server_default="", nullable=False),
        sa.Column("carrier_status", sa.String(length=32), server_default="", nullable=False),
        sa.Column("receipt_text", sa.Text(), nullable=True),
        sa.Column("occurred_at", sa.BigInteger(), nullable=False),
        sa.Column("match_since", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_receipts")),
    )
    op.create_index("ix_unmatched_receipts_key", "unmatched_receipts", ["connector", "carrier_key"])
    op.create_index("ix_unmatched_receipts_received", "unmatched_receipts", ["received_at"])
    # Receipts no longer look messages up by carrier_ref; a receipt timeout
    # looks for the oldest messages still waiting for one.
    op.drop_index("ix_messages_carrier", table_name="messages")
    op.create_index(
        "ix_messages_awaiting_receipt",
        "messages",
        ["connector", "submitted_at"],
        sqlite_where=sa.text("state = 'submitted'"),
        postgresql_where=sa.text("state = 'submitted'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_awaiting_receipt", table_name="messages")
    op.create_index("ix_messages_carrier", "messages", ["connector", "carrier_ref"])
    op.drop_table("unmatched_receipts")
    op.drop_table("submitted_parts")

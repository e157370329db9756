"""message options, inbox, daily quota index and upstream conditions

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connector_conditions",
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.String(length=32), nullable=False),
        sa.Column("until_at", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("connector", name=op.f("pk_connector_conditions")),
    )
    op.create_table(
        "inbound_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_inbound_messages_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_inbound_messages_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_inbound_messages_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
    )
    op.create_index(
        "ix_inbound_messages_account", "inbound_messages", ["account_id", "id"], unique=False
    )
    op.create_table(
        "reply_routes",
        sa.Column("address", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=20), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_reply_routes_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_reply_routes_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_reply_routes_message_id_messages")
        ),
        sa.PrimaryKeyConstraint("address", "recipient", name=op.f("pk_reply_routes")),
    )
    op.add_column("batches", sa.Column("description", sa.Text(), nullable=True))
    op.add_column(
        "batches",
        sa.Column("test_mode", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_index("ix_batches_account", "batches", ["account_id", "created_at"], unique=False)
    op.add_column(
        "messages", sa.Column("flags", sa.SmallInteger(), server_default="0", nullable=False)
    )
    op.add_column("messages", sa.Column("routing_group", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("routing_group")
        batch_op.drop_column("flags")
    with op.batch_alter_table("batches") as batch_op:
        batch_op.drop_index("ix_batches_account")
        batch_op.drop_column("test_mode")
        batch_op.drop_column("description")
    op.drop_table("reply_routes")
    op.drop_index("ix_inbound_messages_account", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_table("connector_conditions")

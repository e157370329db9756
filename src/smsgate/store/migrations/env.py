"""Alembic environment: runs on the connection the store hands over.

The store opens the engine (SQLite or PostgreSQL, async driver) and passes a
synchronous connection through ``config.attributes["connection"]``, so
migrations use exactly the connection settings the gateway runs with.
"""

from __future__ import annotations

from alembic import context

from smsgate.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

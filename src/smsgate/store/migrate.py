"""Versioned schema migrations (Alembic), run programmatically.

``smsgate migrate`` and every process start call ``upgrade``; it is idempotent
and, on PostgreSQL, serialised by an advisory lock so that N processes started
together do not race each other through the same revision.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from smsgate.store.engine import Engines

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_ADVISORY_LOCK_KEY = 0x736D7367  # "smsg"


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


async def upgrade(engines: Engines) -> None:
    async with engines.writer.begin() as conn:
        if engines.is_postgres:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))


async def current_revision(engines: Engines) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engines.reader.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


@functools.cache
def head_revision() -> str:
    """The newest revision this code knows: what a current database is at."""
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head

"""Opening the database: one URL in, the right async engines out.

SQLite gets two engines: a single-connection writer whose transactions start
with ``BEGIN IMMEDIATE`` (so concurrent writers queue on the pool instead of
failing with "database is locked" half-way through a transaction), and a
reader pool that WAL mode lets run beside it. PostgreSQL uses one pool for
both; its row locks and ``SKIP LOCKED`` do the coordination.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import in_greenlet

from smsgate.private_files import private_file


@dataclass(frozen=True)
class Engines:
    writer: AsyncEngine
    reader: AsyncEngine

    @property
    def is_postgres(self) -> bool:
        return self.writer.dialect.name == "postgresql"

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


def async_url(url: str) -> str:
    """Accept the URLs people write (``postgresql://``, ``sqlite:///``) and pick async drivers."""
    parsed = make_url(url)
    driver = {
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }.get(parsed.drivername, parsed.drivername)
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def open_engines(url: str, *, sqlite_synchronous: str = "FULL", pool_size: int = 10) -> Engines:
    full_url = async_url(url)
    if full_url.startswith("sqlite"):
        database = make_url(full_url).database
        if database and database != ":memory:":
            private_file(Path(database))
        writer = _sqlite_engine(full_url, sqlite_synchronous, immediate=True, pool_size=1)
        reader = _sqlite_engine(full_url, sqlite_synchronous, immediate=False, pool_size=pool_size)
        return Engines(writer, reader)
    parsed = make_url(full_url)
    connect_args: dict[str, Any] = {}
    schema = parsed.query.get("search_path")
    if schema:
        # Lets several deployments (or test runs) share one database, one schema each.
        connect_args["server_settings"] = {"search_path": str(schema)}
        parsed = parsed.difference_update_query(["search_path"])
    engine = create_async_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    return Engines(engine, engine)


def _sqlite_engine(url: str, synchronous: str, *, immediate: bool, pool_size: int) -> AsyncEngine:
    """An engine whose statements each cost one hop to the driver's thread.

    A hop (queue to aiosqlite's thread, wake the event loop back) costs more
    than most statements here (about 0.3 ms on a busy 2-core machine), and a
    write transaction is only a few statements, so BEGIN and the reset on
    return skip SQLAlchemy's cursor round trips: BEGIN goes to the driver in
    one hop instead of three (cursor, execute, close), and a connection that
    comes back with no transaction open (committed, or rolled back already)
    is not rolled back again. Skipping that rollback is only safe because a
    task cancelled mid-hop is made good later: a BEGIN still queued when its
    connection came back is rolled back by the next BEGIN, and a connection
    given up with a statement open is rolled back before it is closed.
    """
    engine = create_async_engine(
        url, pool_size=pool_size, max_overflow=0, pool_timeout=60, pool_reset_on_return=None
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            f"synchronous={synchronous}",
            "busy_timeout=30000",
            "foreign_keys=ON",
            "temp_store=MEMORY",
            "cache_size=-65536",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    async def _begin_on(raw: Any) -> None:
        try:
            await raw.execute_fetchall(begin)
        except sqlite3.OperationalError:
            if not raw.in_transaction:
                raise
            # A task cancelled while its BEGIN was still queued for the driver
            # returned the connection before that BEGIN ran, so the reset saw
            # no transaction to roll back. Nothing was done in it: end it here.
            await raw.rollback()
            await raw.execute_fetchall(begin)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.connection.dbapi_connection.run_async(_begin_on)

    @event.listens_for(engine.sync_engine, "close")
    def _close(dbapi_connection: Any, _record: Any) -> None:
        # A connection SQLAlchemy gives up on (a task cancelled half-way
        # through a statement) still has that statement's cursor open, and
        # SQLite keeps a connection with an open statement, and its locks,
        # after it is closed. Rolling back first releases the locks.
        if in_greenlet():
            with contextlib.suppress(Exception):
                dbapi_connection.run_async(lambda raw: raw.rollback())

    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()

    return engine

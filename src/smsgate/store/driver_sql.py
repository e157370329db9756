"""Statements sent straight to the database driver, for the dispatch hot path.

Claiming a batch, recording its submissions and matching its receipts run
for every message the gateway delivers. Through SQLAlchemy's compiled
statements each row of an ``executemany`` costs several microseconds of
parameter processing, more than SQLite or PostgreSQL spend executing it, so
these few statements are written once in SQL with ``?`` placeholders and
handed to the driver: SQLite's ``sqlite3`` takes them as they are, asyncpg
gets them renumbered ``$1, $2, …`` and runs them on the same connection (so
inside the caller's transaction). A list parameter (``member_of``) is a JSON
array read by ``json_each`` on SQLite and a typed array on PostgreSQL.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

_PLACEHOLDER = re.compile(r"\?")
_PG_ARRAY_TYPE = {"id": "bigint[]", "text": "text[]"}


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    counter = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class DriverSql:
    """One engine's spelling of the hot-path statements, and the calls that run them."""

    def __init__(self, *, postgres: bool) -> None:
        self.postgres = postgres
        self.lock_rows = " FOR UPDATE" if postgres else ""
        self.lock_rows_skip_locked = " FOR UPDATE SKIP LOCKED" if postgres else ""

    def member_of(self, column: str, kind: str = "id") -> str:
        """``column`` is one of the values of a list parameter (see ``members``)."""
        if self.postgres:
            return f"{column} = ANY(?::{_PG_ARRAY_TYPE[kind]})"
        return f"{column} IN (SELECT value FROM json_each(?))"

    def members(self, values: Sequence[Any]) -> Any:
        """The parameter a ``member_of`` condition takes."""
        return list(values) if self.postgres else orjson.dumps(list(values)).decode()

    async def fetch(
        self, conn: AsyncConnection, sql: str, params: Sequence[Any] = ()
    ) -> list[Sequence[Any]]:
        if self.postgres:
            raw = await _driver(conn)
            return list(await raw.fetch(_numbered(sql), *params))
        result = await conn.exec_driver_sql(sql, tuple(params))
        return list(result.all())

    async def execute_many(
        self, conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        if self.postgres:
            raw = await _driver(conn)
            await raw.executemany(_numbered(sql), rows)
            return
        await conn.exec_driver_sql(sql, [tuple(row) for row in rows])


async def _driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    return raw.driver_connection
